//! Differentiable single-cell losses and an AUROC surrogate for [Candle](https://github.com/huggingface/candle).
//!
//! Every loss takes `candle_core::Tensor`s and returns a scalar tensor (shape `[]`) that
//! `backward()` differentiates with respect to every float input. The two quadratic losses,
//! [`BatchMixingLoss`] and [`DifferentiableAuroc`], are fused custom ops that never build an
//! n×n (or n_pos×n_neg) buffer; the others are compositions of Candle ops. Bad input is a
//! typed [`Error`], never a panic or a NaN. The formulas are those of the project's SPEC.md,
//! repeated on each type.
#![warn(missing_docs)]

mod auroc;
mod batch_mixing;
mod clustering;
#[cfg(feature = "cuda")]
mod cuda_kernels;
pub mod dist;
mod diversity;
#[cfg(feature = "cuda-emu")]
pub mod emulator;
mod error;
mod host_reads;
#[cfg(any(test, feature = "cuda", feature = "cuda-emu"))]
mod kernel_interface;
#[cfg(any(feature = "cuda", feature = "cuda-emu"))]
mod launch;
pub mod loss;
mod storage;
mod validate;
mod velocity;

pub use auroc::{DifferentiableAuroc, DEFAULT_TEMPERATURE};
pub use batch_mixing::{BatchMixingConfig, BatchMixingLoss};
pub use clustering::{ClusteringCompactnessConfig, ClusteringCompactnessLoss};
#[cfg(feature = "cuda")]
pub use cuda_kernels::poison_kernel_outputs;
pub use diversity::{ShannonDiversityLoss, SimpsonDiversityLoss};
pub use error::{Error, Result};
pub use velocity::{VelocityConsistencyConfig, VelocityConsistencyLoss};
