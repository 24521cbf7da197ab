//! `VelocityConsistencyLoss` (SPEC.md §3): agreement of RNA velocity with the observed
//! displacement, in direction and magnitude, composed from Candle ops.

use candle_core::{Tensor, D};

use crate::error::{Error, Result};
use crate::validate;

/// Parameters of [`VelocityConsistencyLoss`]; `Default` gives SPEC.md's (0.1, 1.0, 1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VelocityConsistencyConfig {
    /// Time step that turns a velocity into a displacement (> 0).
    pub dt: f64,
    /// Weight of the direction term `mean(1 − cos)` (≥ 0).
    pub cosine_weight: f64,
    /// Weight of the magnitude term `mean((|P| − |Q|)²)` (≥ 0).
    pub magnitude_weight: f64,
}

impl Default for VelocityConsistencyConfig {
    fn default() -> Self {
        Self {
            dt: 0.1,
            cosine_weight: 1.0,
            magnitude_weight: 1.0,
        }
    }
}

const EPS: f64 = 1e-8;

/// Direction and magnitude mismatch between predicted and observed displacement.
///
/// ```text
/// P = V·dt,  Q = F − E
/// |P|_i = sqrt(Σ_g P_ig² + 1e-8)   (|Q|_i likewise)
/// cos_i = Σ_g P_ig Q_ig / (|P|_i |Q|_i)
/// loss  = cosine_weight · mean_i(1 − cos_i) + magnitude_weight · mean_i((|P|_i − |Q|_i)²)
/// ```
///
/// ```
/// use candle_core::{Device, Tensor};
/// use diffbio_core::{VelocityConsistencyConfig, VelocityConsistencyLoss};
/// # fn main() -> diffbio_core::Result<()> {
/// let dev = Device::Cpu;
/// let e = Tensor::new(&[[1f32, 2., 3.]], &dev)?;
/// let v = Tensor::new(&[[1f32, 0., -1.]], &dev)?;
/// let f = (&e + (&v * 0.1)?)?; // exactly where the velocity points
/// let loss = VelocityConsistencyLoss::new(VelocityConsistencyConfig::default())?;
/// assert!(loss.forward(&e, &v, &f)?.to_scalar::<f32>()? < 1e-4);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct VelocityConsistencyLoss {
    config: VelocityConsistencyConfig,
}

impl VelocityConsistencyLoss {
    /// Validates the configuration: `dt` finite and > 0, weights finite and ≥ 0.
    pub fn new(config: VelocityConsistencyConfig) -> Result<Self> {
        validate::positive("dt", config.dt)?;
        validate::non_negative("cosine_weight", config.cosine_weight)?;
        validate::non_negative("magnitude_weight", config.magnitude_weight)?;
        Ok(Self { config })
    }

    /// The validated configuration.
    pub fn config(&self) -> &VelocityConsistencyConfig {
        &self.config
    }

    /// `expression`, `velocity`, `future_expression`: float `[n, g]`, all the same shape.
    pub fn forward(
        &self,
        expression: &Tensor,
        velocity: &Tensor,
        future_expression: &Tensor,
    ) -> Result<Tensor> {
        validate::float_matrix(expression, "expression")?;
        let inputs = [
            (velocity, "velocity"),
            (future_expression, "future_expression"),
        ];
        for (t, name) in inputs {
            validate::float_matrix(t, name)?;
            validate::shape_is(t, name, expression.dims()).map_err(|_| Error::Shape {
                input: name,
                expected: format!("{:?} (the shape of expression)", expression.dims()),
                got: t.dims().to_vec(),
            })?;
            validate::same_device(t, name, expression, "expression")?;
        }
        validate::finite(expression, "expression")?;
        for (t, name) in inputs {
            validate::finite(t, name)?;
        }

        let dtype = expression.dtype();
        let compute = validate::COMPOSED_DTYPE;
        let p = (velocity.to_dtype(compute)? * self.config.dt)?;
        let q = (future_expression.to_dtype(compute)? - expression.to_dtype(compute)?)?;
        let norm = |t: &Tensor| -> candle_core::Result<Tensor> {
            (t.sqr()?.sum(D::Minus1)? + EPS)?.sqrt()
        };
        let (p_norm, q_norm) = (norm(&p)?, norm(&q)?);
        let cos = ((&p * &q)?.sum(D::Minus1)? / (&p_norm * &q_norm)?)?;
        let direction = (cos.neg()? + 1.0)?.mean_all()?;
        let magnitude = (p_norm - q_norm)?.sqr()?.mean_all()?;
        let loss = ((direction * self.config.cosine_weight)?
            + (magnitude * self.config.magnitude_weight)?)?;
        Ok(loss.to_dtype(dtype)?)
    }
}
