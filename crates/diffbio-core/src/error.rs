//! The error type of every loss: what was wrong with the input, never a panic or a NaN.

use candle_core::DType;

/// Why a loss refused its configuration or its inputs.
///
/// Converts into [`candle_core::Error`], so `?` works inside Candle code
/// (a `Module::forward`, a training step returning `candle_core::Result`).
///
/// ```
/// use diffbio_core::{DifferentiableAuroc, Error};
/// let err = DifferentiableAuroc::new(-1.0).unwrap_err();
/// assert!(matches!(err, Error::InvalidParameter { name: "temperature", .. }));
/// let as_candle: candle_core::Error = err.into();
/// assert!(as_candle.to_string().contains("temperature"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor has the wrong rank or a dimension that does not match another input.
    #[error("`{input}` has shape {got:?}, expected {expected}")]
    Shape {
        /// The argument's name.
        input: &'static str,
        /// The shape it must have.
        expected: String,
        /// The shape it has.
        got: Vec<usize>,
    },

    /// A tensor has an element type the loss cannot take.
    #[error("`{input}` has dtype {got:?}, expected {expected}")]
    DType {
        /// The argument's name.
        input: &'static str,
        /// The dtypes it may have.
        expected: &'static str,
        /// The dtype it has.
        got: DType,
    },

    /// A tensor has no elements (or too few to define the loss).
    #[error("`{input}` is empty or too small: {reason}")]
    Empty {
        /// The argument's name.
        input: &'static str,
        /// What is missing.
        reason: String,
    },

    /// A label lies outside its allowed set.
    #[error("`{input}` holds the label {value}, allowed: {allowed}")]
    LabelOutOfRange {
        /// The argument's name.
        input: &'static str,
        /// The offending label.
        value: f64,
        /// The labels allowed.
        allowed: String,
    },

    /// A configuration parameter is outside its valid range.
    #[error("parameter `{name}` = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The condition it breaks.
        reason: &'static str,
    },

    /// A float input holds NaN or ±inf.
    #[error("`{input}` holds NaN or infinite values")]
    NonFinite {
        /// The argument's name.
        input: &'static str,
    },

    /// Two inputs live on different devices.
    #[error("`{input}` is on {got}, but `{reference}` is on {expected}")]
    DeviceMismatch {
        /// The argument's name.
        input: &'static str,
        /// The argument whose device it must share.
        reference: &'static str,
        /// Its device.
        got: String,
        /// The reference's device.
        expected: String,
    },

    /// Another rank refused its shard of a sharded loss (its own error says why), so
    /// this rank stops too instead of waiting for it.
    #[error("rank {rank} refused its inputs to the sharded loss (its own error says why)")]
    PeerInput {
        /// The first rank that refused.
        rank: usize,
    },

    /// A collective between ranks failed: a rank left, the ranks called different
    /// collectives or passed tensors that do not fit together, or NCCL reported an error.
    #[error("communication between ranks failed: {reason}")]
    Communication {
        /// What happened.
        reason: String,
    },

    /// The sizes need more of a GPU than one kernel launch takes: more shared memory per
    /// block than a block has, or a size past the kernels' 32-bit arguments. The CPU path
    /// takes them.
    #[error("{what} is {value}, more than the {limit} a CUDA kernel launch allows; use the CPU path for these sizes")]
    DeviceLimit {
        /// What is too large, in words.
        what: String,
        /// Its value.
        value: usize,
        /// The most a launch allows.
        limit: usize,
    },
    /// An error raised by Candle itself (allocation, kernel launch, ...).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for candle_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Candle(inner) => inner,
            other => candle_core::Error::wrap(other),
        }
    }
}
