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
        input: &'static str,
        expected: String,
        got: Vec<usize>,
    },

    /// A tensor has an element type the loss cannot take.
    #[error("`{input}` has dtype {got:?}, expected {expected}")]
    DType {
        input: &'static str,
        expected: &'static str,
        got: DType,
    },

    /// A tensor has no elements (or too few to define the loss).
    #[error("`{input}` is empty or too small: {reason}")]
    Empty { input: &'static str, reason: String },

    /// A label lies outside its allowed set.
    #[error("`{input}` holds the label {value}, allowed: {allowed}")]
    LabelOutOfRange {
        input: &'static str,
        value: f64,
        allowed: String,
    },

    /// A configuration parameter is outside its valid range.
    #[error("parameter `{name}` = {value} is invalid: {reason}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },

    /// A float input holds NaN or ±inf.
    #[error("`{input}` holds NaN or infinite values")]
    NonFinite { input: &'static str },

    /// Two inputs live on different devices.
    #[error("`{input}` is on {got}, but `{reference}` is on {expected}")]
    DeviceMismatch {
        input: &'static str,
        reference: &'static str,
        got: String,
        expected: String,
    },

    /// An error of an exact metric (`diffbio::metrics`), so `?` works on both in one function.
    #[error(transparent)]
    Metric(#[from] diffbio_metrics::Error),

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
