//! The error type of the metrics.

/// Why a metric refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two inputs that must have one entry per sample differ in length.
    #[error("`{input}` has {got} entries, expected {expected} (one per sample)")]
    LengthMismatch {
        /// The argument's name.
        input: &'static str,
        /// The number of samples.
        expected: usize,
        /// Its number of entries.
        got: usize,
    },

    /// No samples at all.
    #[error("`{input}` is empty")]
    Empty {
        /// The argument's name.
        input: &'static str,
    },

    /// The metric needs both classes, but only one is present.
    #[error("only one class is present ({positives} positives, {negatives} negatives): the metric is undefined")]
    SingleClass {
        /// Positive samples.
        positives: usize,
        /// Negative samples.
        negatives: usize,
    },

    /// A value is NaN (or, in an embedding, not finite).
    #[error("`{input}` holds a NaN or non-finite value at index {index}")]
    NaN {
        /// The argument's name.
        input: &'static str,
        /// The first offending value's index (in the flat buffer).
        index: usize,
    },

    /// A flat `[n × d]` buffer whose length is not a multiple of `d`, or `d = 0`.
    #[error("`{input}` has {len} values, not a positive multiple of {dims} dimensions")]
    Shape {
        /// The argument's name.
        input: &'static str,
        /// Its number of values.
        len: usize,
        /// The dimensions given.
        dims: usize,
    },

    /// More cells than neighbour graphs index: their indices are 32-bit.
    #[error("`{input}` has {n} cells; at most 2^32 are supported")]
    TooManyCells {
        /// The argument's name.
        input: &'static str,
        /// Its number of cells.
        n: usize,
    },

    /// The neighbourhood size must satisfy 1 ≤ k ≤ n − 1.
    #[error("k = {k} is invalid for {n} cells: need 1 <= k <= n - 1")]
    InvalidK {
        /// The neighbourhood size asked for.
        k: usize,
        /// The number of cells.
        n: usize,
    },

    /// A metric needs more distinct labels (e.g. batches) than the input has.
    #[error("`{input}` has {found} distinct labels; this metric needs at least {needed}")]
    TooFewLabels {
        /// The argument's name.
        input: &'static str,
        /// Distinct labels present.
        found: usize,
        /// Distinct labels needed.
        needed: usize,
    },

    /// A metric is undefined on this input, valid as it is: no group of cells has what the
    /// metric needs (e.g. no cell type with cells in two batches). [`crate::benchmark()`]
    /// skips such a metric and lists it with this reason.
    #[error("{metric} is undefined here: {reason}")]
    Undefined {
        /// The metric's snake_case name, as in [`crate::Scores::entries`].
        metric: &'static str,
        /// Why, with the counts that make it so.
        reason: String,
    },

    /// A ratio's denominator is a variance that is zero.
    #[error("`{input}` has no variance: the metric is undefined")]
    ZeroVariance {
        /// What has no variance.
        input: &'static str,
    },

    /// A neighbour graph given from elsewhere names a cell that does not exist, the cell
    /// itself, or no neighbour at all.
    #[error("the neighbour graph's row {cell} {reason}")]
    InvalidGraph {
        /// The row (cell) at fault.
        cell: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A metric was named that the benchmark does not compute (or an aggregate, which is
    /// not chosen on its own).
    #[error("no metric is named `{name}`; the metrics are {known}")]
    UnknownMetric {
        /// The name given.
        name: String,
        /// The metrics' names, comma-separated.
        known: String,
    },

    /// An iterative solver (e.g. the eigensolver of kBET's diffusion map) did not converge.
    #[error("{what} did not converge")]
    NoConvergence {
        /// The solver.
        what: &'static str,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
