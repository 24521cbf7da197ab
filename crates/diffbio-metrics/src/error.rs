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

    /// A score is NaN (±inf are allowed: they sort).
    #[error("`{input}` holds NaN at index {index}")]
    NaN { input: &'static str, index: usize },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
