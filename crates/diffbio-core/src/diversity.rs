//! `ShannonDiversityLoss` and `SimpsonDiversityLoss` (SPEC.md §4–5): diversity of soft
//! assignments, composed from Candle ops.

use candle_core::{Tensor, D};

use crate::error::Result;
use crate::validate;

/// Floor inside the logarithm of the Shannon entropy.
const LOG_FLOOR: f64 = 1e-8;

/// Checks soft assignments `[n, K]` and returns them in the compute dtype.
fn assignments_in_compute_dtype(assignments: &Tensor) -> Result<Tensor> {
    validate::float_matrix(assignments, "assignments")?;
    validate::finite(assignments, "assignments")?;
    Ok(assignments.to_dtype(validate::COMPOSED_DTYPE)?)
}

/// Mean Shannon entropy of each row of soft assignments (higher = more diverse).
///
/// ```text
/// loss = mean_i( −Σ_k A_ik · log(max(A_ik, 1e-8)) )      ∈ [0, log K] for rows on the simplex
/// ```
///
/// The gradient follows the formula literally: where `A_ik < 1e-8` the log is a constant.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use diffbio_core::ShannonDiversityLoss;
/// # fn main() -> diffbio_core::Result<()> {
/// let uniform = Tensor::full(0.25f32, (10, 4), &Device::Cpu)?;
/// let h = ShannonDiversityLoss::default().forward(&uniform)?.to_scalar::<f32>()?;
/// assert!((h - 4f32.ln()).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ShannonDiversityLoss;

impl ShannonDiversityLoss {
    /// `assignments`: float `[n, K]`; returns the scalar loss in their dtype.
    pub fn forward(&self, assignments: &Tensor) -> Result<Tensor> {
        let a = assignments_in_compute_dtype(assignments)?;
        let plogp = (&a * a.maximum(LOG_FLOOR)?.log()?)?;
        Ok(plogp
            .sum(D::Minus1)?
            .neg()?
            .mean_all()?
            .to_dtype(assignments.dtype())?)
    }
}

/// As a Candle [`Module`](candle_nn::Module), so it composes with `candle_nn` layers
/// (`xs.apply(&ShannonDiversityLoss)`).
impl candle_nn::Module for ShannonDiversityLoss {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Ok(ShannonDiversityLoss::forward(self, xs)?)
    }
}

/// Mean Simpson index of each row of soft assignments (lower = more diverse).
///
/// ```text
/// loss = mean_i( Σ_k A_ik² )      ∈ [1/K, 1] for rows on the simplex
/// ```
///
/// ```
/// use candle_core::{Device, Tensor};
/// use diffbio_core::SimpsonDiversityLoss;
/// # fn main() -> diffbio_core::Result<()> {
/// let uniform = Tensor::full(0.2f64, (3, 5), &Device::Cpu)?;
/// let s = SimpsonDiversityLoss::default().forward(&uniform)?.to_scalar::<f64>()?;
/// assert!((s - 0.2).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SimpsonDiversityLoss;

impl SimpsonDiversityLoss {
    /// `assignments`: float `[n, K]`; returns the scalar loss in their dtype.
    pub fn forward(&self, assignments: &Tensor) -> Result<Tensor> {
        let a = assignments_in_compute_dtype(assignments)?;
        Ok(a.sqr()?
            .sum(D::Minus1)?
            .mean_all()?
            .to_dtype(assignments.dtype())?)
    }
}

/// As a Candle [`Module`](candle_nn::Module): `xs.apply(&SimpsonDiversityLoss)`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use diffbio_core::{ShannonDiversityLoss, SimpsonDiversityLoss};
/// # fn main() -> candle_core::Result<()> {
/// let a = Tensor::new(&[[0.5f32, 0.5], [0.9, 0.1]], &Device::Cpu)?;
/// let simpson = a.apply(&SimpsonDiversityLoss)?.to_scalar::<f32>()?;
/// assert!((simpson - (0.5 + 0.82) / 2.0).abs() < 1e-6);
/// let shannon = a.apply(&ShannonDiversityLoss)?; // errors convert into candle_core::Error
/// assert!(shannon.to_scalar::<f32>()? > 0.0);
/// # Ok(()) }
/// ```
impl candle_nn::Module for SimpsonDiversityLoss {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Ok(SimpsonDiversityLoss::forward(self, xs)?)
    }
}
