//! # diffbio
//!
//! Differentiable single-cell losses and an AUROC training surrogate for
//! [Candle](https://github.com/huggingface/candle), plus exact evaluation metrics.
//!
//! This facade re-exports [`diffbio_core`] (the losses) at the top level and
//! [`diffbio_metrics`] as [`metrics`]; its [`Error`] holds an error of either (or of
//! Candle), so `?` works on losses, metrics and tensor code in one function.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use diffbio::{BatchMixingConfig, BatchMixingLoss, DifferentiableAuroc};
//! use diffbio::metrics::roc_auc;
//! # fn main() -> diffbio::Result<()> {
//! let dev = Device::Cpu;
//! let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (100, 16), &dev)?)?;
//! let batch = Tensor::from_vec((0..100u8).map(|i| i % 3).collect(), 100, &dev)?;
//! let mixing = BatchMixingLoss::new(BatchMixingConfig::default())?;
//! let loss = mixing.forward(x.as_tensor(), &batch)?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&x).unwrap().dims(), &[100, 16]);
//!
//! let scores = [0.9f32, 0.8, 0.1, 0.2];
//! let labels = [true, true, false, false];
//! assert_eq!(roc_auc(&scores, &labels).unwrap(), 1.0);
//! let surrogate = DifferentiableAuroc::new(0.01)?
//!     .forward(&Tensor::new(&scores, &dev)?, &Tensor::new(&[1u8, 1, 0, 0], &dev)?)?;
//! assert!(surrogate.to_scalar::<f32>()? > 0.99);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub use diffbio_core::*;
pub use diffbio_metrics as metrics;

/// The error of a loss ([`diffbio_core::Error`]), under a name that does not clash with
/// the facade's combined [`Error`].
pub use diffbio_core::Error as LossError;

/// Any diffbio error: a loss's (including Candle's own) or a metric's.
///
/// Converts into [`candle_core::Error`], so `?` also works inside Candle code.
///
/// ```
/// fn score() -> diffbio::Result<f64> {
///     let _loss = diffbio::DifferentiableAuroc::new(0.5)?; // a loss error would convert
///     Ok(diffbio::metrics::roc_auc(&[0.2f32, 0.9], &[false, true])?) // so does a metric's
/// }
/// assert_eq!(score().unwrap(), 1.0);
/// let err: diffbio::Error = diffbio::metrics::roc_auc(&[0.5f32], &[true]).unwrap_err().into();
/// assert!(matches!(err, diffbio::Error::Metric(_)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A loss refused its configuration or inputs, or Candle failed inside one.
    #[error(transparent)]
    Loss(#[from] diffbio_core::Error),

    /// An exact metric refused its input.
    #[error(transparent)]
    Metric(#[from] diffbio_metrics::Error),
}

impl From<candle_core::Error> for Error {
    fn from(err: candle_core::Error) -> Self {
        Self::Loss(diffbio_core::Error::Candle(err))
    }
}

impl From<Error> for candle_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Loss(loss) => loss.into(),
            Error::Metric(metric) => candle_core::Error::wrap(metric),
        }
    }
}

/// `Result` with the facade's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
