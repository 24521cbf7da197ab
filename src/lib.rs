//! # diffbio
//!
//! Differentiable single-cell losses and an AUROC training surrogate for
//! [Candle](https://github.com/huggingface/candle), plus exact evaluation metrics.
//!
//! This facade re-exports [`diffbio_core`] (the losses) at the top level and
//! [`diffbio_metrics`] as [`metrics`].
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

pub use diffbio_core::*;
pub use diffbio_metrics as metrics;

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
