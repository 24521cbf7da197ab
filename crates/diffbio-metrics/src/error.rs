//! The error type of the metrics.

/// Why a metric refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two inputs that must have one entry per sample differ in length.
    #[error("`{input}` has {got} entries, expected {expected} (one per sample)")]
    LengthMismatch {
        input: &'static str,
        expected: usize,
        got: usize,
    },

    /// No samples at all.
    #[error("`{input}` is empty")]
    Empty { input: &'static str },

    /// The metric needs both classes, but only one is present.
    #[error("only one class is present ({positives} positives, {negatives} negatives): the metric is undefined")]
    SingleClass { positives: usize, negatives: usize },

    /// A value is NaN (or, in an embedding, not finite).
    #[error("`{input}` holds a NaN or non-finite value at index {index}")]
    NaN { input: &'static str, index: usize },

    /// A flat `[n × d]` buffer whose length is not a multiple of `d`, or `d = 0`.
    #[error("`{input}` has {len} values, not a positive multiple of {dims} dimensions")]
    Shape {
        input: &'static str,
        len: usize,
        dims: usize,
    },

    /// The neighbourhood size must satisfy 1 ≤ k ≤ n − 1.
    #[error("k = {k} is invalid for {n} cells: need 1 <= k <= n - 1")]
    InvalidK { k: usize, n: usize },

    /// A metric needs more distinct labels (e.g. batches) than the input has.
    #[error("`{input}` has {found} distinct labels; this metric needs at least {needed}")]
    TooFewLabels {
        input: &'static str,
        found: usize,
        needed: usize,
    },

    /// A ratio's denominator is a variance that is zero.
    #[error("`{input}` has no variance: the metric is undefined")]
    ZeroVariance { input: &'static str },

    /// An iterative solver (e.g. the eigensolver of kBET's diffusion map) did not converge.
    #[error("{what} did not converge")]
    NoConvergence { what: &'static str },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
