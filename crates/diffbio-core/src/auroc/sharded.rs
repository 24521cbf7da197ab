//! `DifferentiableAuroc::forward_sharded`: the surrogate over cells sharded over ranks
//! (the contract is in `crate::dist`).
//!
//! Each rank gathers every score (O(n)) and sweeps its own cells as centres: its
//! positives against all negatives (the value and ∂/∂T shares, their ∂/∂s) and its
//! negatives against all positives (their ∂/∂s). The value shares are summed; the
//! gradients need no further communication.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

use super::{contract, scaled_gradients, AurocOp, DifferentiableAuroc};
use crate::dist::{self, Communicator, ShardInfo};
use crate::error::{Error, Result};
use crate::validate;

pub(super) fn forward(
    auroc: &DifferentiableAuroc,
    comm: &dyn Communicator,
    predictions: &Tensor,
    labels: &Tensor,
) -> Result<Tensor> {
    let device = predictions.device();
    let dtype = predictions.dtype();
    let local = check_shard(auroc, predictions, labels);
    let ((temperature, value), infos) =
        dist::exchange(comm, device, local, |(_, value)| ShardInfo {
            refused: false,
            rows: predictions.dim(0).unwrap_or(0),
            cols: 1,
            dtype,
            param: *value,
        })?;
    dist::same_layout(&infos, "predictions")?;
    if let Some(other) = infos.iter().find(|i| i.param != infos[0].param) {
        return Err(Error::InvalidParameter {
            name: "temperature",
            value: other.param,
            reason: "must be the same on every rank (rank 0's differs)",
        });
    }

    let compute = validate::compute_dtype(dtype);
    let scores_shard = predictions.to_dtype(compute)?.contiguous()?;
    let scores = dist::gather(comm, &scores_shard)?;
    let labels = dist::gather(comm, &labels.to_dtype(DType::F64)?)?;
    // On the gathered cells, so every rank reaches the same verdict.
    if scores.dim(0)? == 0 {
        return Err(Error::Empty {
            input: "predictions",
            reason: "no elements on any rank".into(),
        });
    }
    let labels = validate::binary_labels(&labels, "labels", compute)?.contiguous()?;
    validate::finite(&scores, "predictions")?;

    let rows = dist::own_rows(&infos, comm.rank());
    // [this rank's share of the value, of ∂/∂T, ∂/∂s of its cells]
    let own = if rows.is_empty() {
        Tensor::zeros(contract::GRAD_SCORES, compute, device)?
    } else {
        let op = AurocOp {
            temperature: value,
            rows,
        };
        scores.apply_op3_no_bwd(&labels, &temperature.detach(), &op)?
    };
    let share = own.narrow(0, contract::VALUE, 1)?.to_dtype(DType::F64)?;
    let total = comm.all_reduce_sum(&share)?;
    let op = ShardedAurocOp {
        value: total.to_vec1::<f64>()?[0],
        out: own,
    };
    Ok(scores_shard.apply_op2(&temperature, op)?.to_dtype(dtype)?)
}

/// What a rank can check alone: float `[n_r]` scores (`n_r ≥ 0`), `[n_r]` labels on their
/// device, a valid temperature. Returns the temperature tensor and its value.
fn check_shard(
    auroc: &DifferentiableAuroc,
    predictions: &Tensor,
    labels: &Tensor,
) -> Result<(Tensor, f64)> {
    validate::float_dtype(predictions, "predictions")?;
    let n = predictions.dims1().map_err(|_| Error::Shape {
        input: "predictions",
        expected: "a 1-D tensor [n_r]".into(),
        got: predictions.dims().to_vec(),
    })?;
    validate::shape_is(labels, "labels", &[n])?;
    validate::same_device(labels, "labels", predictions, "predictions")?;
    auroc.temperature_for(predictions)
}

/// The sharded surrogate as an op on `(this rank's scores, temperature)`: its value was
/// summed over the ranks by `forward`; `out` holds `[share, ∂/∂T share, ∂/∂s of this
/// rank's cells]` for the backward pass.
struct ShardedAurocOp {
    value: f64,
    out: Tensor,
}

impl CustomOp2 for ShardedAurocOp {
    fn name(&self) -> &'static str {
        "differentiable-auroc-sharded"
    }

    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        dist::value_on_cpu(s, self.value)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        dist::value_on_cuda(s, self.value)
    }

    fn bwd(
        &self,
        scores: &Tensor,
        temperature: &Tensor,
        _: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (grad_scores, grad_t) = scaled_gradients(&self.out, grad_res, scores, temperature)?;
        Ok((Some(grad_scores), Some(grad_t)))
    }
}
