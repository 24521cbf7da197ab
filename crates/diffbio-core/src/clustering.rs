//! `ClusteringCompactnessLoss` (SPEC.md §2): within-cluster spread plus a soft penalty on
//! centroids closer than `min_separation`, composed from Candle ops.

use candle_core::{Tensor, D};

use crate::error::{Error, Result};
use crate::validate;

/// Parameters of [`ClusteringCompactnessLoss`]; `Default` gives SPEC.md's (1.0, 1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusteringCompactnessConfig {
    /// `w`: weight of the separation term (≥ 0).
    pub separation_weight: f64,
    /// `s`: centroid distance below which the separation penalty grows (≥ 0).
    pub min_separation: f64,
}

impl Default for ClusteringCompactnessConfig {
    fn default() -> Self {
        Self {
            separation_weight: 1.0,
            min_separation: 1.0,
        }
    }
}

/// Softplus sharpness of the separation penalty: `0.1 · softplus((s − δ)/0.1)`.
const SOFTPLUS_SCALE: f64 = 0.1;
const EPS: f64 = 1e-8;
/// Elements of the `[rows, K, d]` difference tensor built per chunk of cells.
const CHUNK_ELEMENTS: usize = 1 << 22;

/// Soft k-means objective: compactness around (given or soft-mean) centroids plus separation.
///
/// ```text
/// C_k     = Σ_i A_ik x_i / (Σ_i A_ik + 1e-8)          (when no centroids are given)
/// compact = Σ_{i,k} A_ik |x_i − C_k|² / n
/// δ_kl    = sqrt(|C_k − C_l|² + 1e-8)
/// sep     = Σ_{k≠l} 0.1 · softplus((s − δ_kl)/0.1) / (K(K−1) + 1e-8)
/// loss    = compact + w · sep
/// ```
///
/// Distances are formed as differences (not the norm expansion), cells in chunks, so memory
/// stays O(chunk·K·d); the arithmetic is f64 whatever the input dtype.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use diffbio_core::{ClusteringCompactnessConfig, ClusteringCompactnessLoss};
/// # fn main() -> diffbio_core::Result<()> {
/// let dev = Device::Cpu;
/// let x = Tensor::new(&[[0f32, 0.], [0.2, 0.], [3., 3.], [3., 3.4]], &dev)?;
/// let a = Tensor::new(&[[1f32, 0.], [1., 0.], [0., 1.], [0., 1.]], &dev)?;
/// let loss = ClusteringCompactnessLoss::new(ClusteringCompactnessConfig::default())?;
/// let l = loss.forward(&x, &a, None)?.to_scalar::<f32>()?;
/// assert!((l - 0.025).abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ClusteringCompactnessLoss {
    config: ClusteringCompactnessConfig,
}

impl ClusteringCompactnessLoss {
    /// Validates the configuration: both parameters finite and ≥ 0.
    pub fn new(config: ClusteringCompactnessConfig) -> Result<Self> {
        validate::non_negative("separation_weight", config.separation_weight)?;
        validate::non_negative("min_separation", config.min_separation)?;
        Ok(Self { config })
    }

    /// The validated configuration.
    pub fn config(&self) -> &ClusteringCompactnessConfig {
        &self.config
    }

    /// `embeddings` `[n, d]`, `assignments` `[n, K]` (soft; rows normally sum to 1),
    /// `centroids` `[K, d]` or `None` to use the assignment-weighted means.
    pub fn forward(
        &self,
        embeddings: &Tensor,
        assignments: &Tensor,
        centroids: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (n, d) = validate::float_matrix(embeddings, "embeddings")?;
        let (n_assigned, k) = validate::float_matrix(assignments, "assignments")?;
        if n_assigned != n {
            return Err(Error::Shape {
                input: "assignments",
                expected: format!("[{n}, K] (one row per cell)"),
                got: assignments.dims().to_vec(),
            });
        }
        validate::same_device(assignments, "assignments", embeddings, "embeddings")?;
        validate::finite(embeddings, "embeddings")?;
        validate::finite(assignments, "assignments")?;
        if let Some(c) = centroids {
            validate::float_matrix(c, "centroids")?;
            validate::shape_is(c, "centroids", &[k, d])?;
            validate::same_device(c, "centroids", embeddings, "embeddings")?;
            validate::finite(c, "centroids")?;
        }

        let dtype = embeddings.dtype();
        let compute = validate::COMPOSED_DTYPE;
        let x = embeddings.to_dtype(compute)?;
        let a = assignments.to_dtype(compute)?;
        let c = match centroids {
            Some(c) => c.to_dtype(compute)?,
            None => {
                let weights = (a.sum(0)? + EPS)?.unsqueeze(1)?;
                a.t()?.matmul(&x)?.broadcast_div(&weights)?
            }
        };
        let compact = (compactness(&x, &a, &c)? / n as f64)?;
        let loss = if self.config.separation_weight == 0.0 {
            compact
        } else {
            (compact
                + (separation(&c, self.config.min_separation)? * self.config.separation_weight)?)?
        };
        Ok(loss.to_dtype(dtype)?)
    }
}

/// `Σ_{i,k} A_ik |x_i − C_k|²`, over chunks of cells.
fn compactness(x: &Tensor, a: &Tensor, c: &Tensor) -> Result<Tensor> {
    let (n, d) = x.dims2()?;
    let k = c.dim(0)?;
    let chunk = (CHUNK_ELEMENTS / (k * d)).max(1);
    let mut total: Option<Tensor> = None;
    for start in (0..n).step_by(chunk) {
        let rows = chunk.min(n - start);
        let diff = x
            .narrow(0, start, rows)?
            .unsqueeze(1)?
            .broadcast_sub(&c.unsqueeze(0)?)?;
        let sq = diff.sqr()?.sum(D::Minus1)?;
        let part = (sq * a.narrow(0, start, rows)?)?.sum_all()?;
        total = Some(match total {
            Some(t) => (t + part)?,
            None => part,
        });
    }
    Ok(total.expect("n >= 1"))
}

/// `Σ_{k≠l} 0.1 · softplus((s − δ_kl)/0.1) / (K(K−1) + 1e-8)`.
fn separation(c: &Tensor, min_separation: f64) -> Result<Tensor> {
    let k = c.dim(0)?;
    let diff = c.unsqueeze(1)?.broadcast_sub(&c.unsqueeze(0)?)?;
    let delta = (diff.sqr()?.sum(D::Minus1)? + EPS)?.sqrt()?;
    let z = ((delta.neg()? + min_separation)? / SOFTPLUS_SCALE)?;
    // softplus(z) = max(z, 0) + log(1 + e^{−|z|}), stable for any z.
    let softplus = (z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let off_diagonal =
        (Tensor::ones((k, k), c.dtype(), c.device())? - Tensor::eye(k, c.dtype(), c.device())?)?;
    let pairs = (k * k.saturating_sub(1)) as f64 + EPS;
    Ok(((softplus * off_diagonal)?.sum_all()? * (SOFTPLUS_SCALE / pairs))?)
}
