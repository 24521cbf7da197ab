//! The losses as free functions, as candle-nn's `loss::nll` beside its layers: each builds
//! the loss (checking its parameters, as `new` does) and applies it once. For a loss used
//! at every step, build the struct once instead.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffbio_core::{loss, BatchMixingConfig, BatchMixingLoss};
//! # fn main() -> diffbio_core::Result<()> {
//! let x = Tensor::randn(0f32, 1.0, (50, 4), &Device::Cpu)?;
//! let batches = Tensor::from_vec((0..50u32).map(|i| i % 2).collect(), 50, &Device::Cpu)?;
//! let config = BatchMixingConfig { n_neighbors: 5, n_batches: 2, temperature: 1.0 };
//! let once = loss::batch_mixing(&x, &batches, config)?.to_scalar::<f32>()?;
//! let built = BatchMixingLoss::new(config)?.forward(&x, &batches)?.to_scalar::<f32>()?;
//! assert_eq!(once, built);
//! # Ok(()) }
//! ```

use candle_core::Tensor;

use crate::error::Result;
use crate::{
    BatchMixingConfig, BatchMixingLoss, ClusteringCompactnessConfig, ClusteringCompactnessLoss,
    DifferentiableAuroc, ShannonDiversityLoss, SimpsonDiversityLoss, VelocityConsistencyConfig,
    VelocityConsistencyLoss,
};

/// [`BatchMixingLoss`] with `config`, of `embeddings` `[n, d]` and `batch_labels` `[n]`.
pub fn batch_mixing(
    embeddings: &Tensor,
    batch_labels: &Tensor,
    config: BatchMixingConfig,
) -> Result<Tensor> {
    BatchMixingLoss::new(config)?.forward(embeddings, batch_labels)
}

/// [`DifferentiableAuroc`] at a fixed `temperature`, of `predictions` `[n]` and 0/1 `labels`.
pub fn differentiable_auroc(
    predictions: &Tensor,
    labels: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    DifferentiableAuroc::new(temperature)?.forward(predictions, labels)
}

/// [`ClusteringCompactnessLoss`] with `config`.
pub fn clustering_compactness(
    embeddings: &Tensor,
    assignments: &Tensor,
    centroids: Option<&Tensor>,
    config: ClusteringCompactnessConfig,
) -> Result<Tensor> {
    ClusteringCompactnessLoss::new(config)?.forward(embeddings, assignments, centroids)
}

/// [`VelocityConsistencyLoss`] with `config`.
pub fn velocity_consistency(
    expression: &Tensor,
    velocity: &Tensor,
    future_expression: &Tensor,
    config: VelocityConsistencyConfig,
) -> Result<Tensor> {
    VelocityConsistencyLoss::new(config)?.forward(expression, velocity, future_expression)
}

/// [`ShannonDiversityLoss`] of `assignments` `[n, K]`.
pub fn shannon_diversity(assignments: &Tensor) -> Result<Tensor> {
    ShannonDiversityLoss.forward(assignments)
}

/// [`SimpsonDiversityLoss`] of `assignments` `[n, K]`.
pub fn simpson_diversity(assignments: &Tensor) -> Result<Tensor> {
    SimpsonDiversityLoss.forward(assignments)
}
