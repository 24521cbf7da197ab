//! `BatchMixingLoss::forward_sharded`: the loss of a minibatch sharded over ranks
//! (the contract is in `crate::dist`).
//!
//! Each rank gathers every cell (the columns) and computes its own rows' statistics and
//! their share of the loss; the shares are summed and the statistics of all rows gathered,
//! so the backward pass (rows i of `Σ_j C_ij (x_i − x_j)` with `C_ij = 2 (G_ij + G_ji)`,
//! which needs row j's statistics) runs without communication.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

use super::contract::RowStats;
use super::{BatchMixingGradOp, BatchMixingLoss, BatchMixingOp, KernelShared};
use crate::dist::{self, Communicator, ShardInfo};
use crate::error::{Error, Result};
use crate::validate;

pub(super) fn forward(
    loss: &BatchMixingLoss,
    comm: &dyn Communicator,
    embeddings: &Tensor,
    batch_labels: &Tensor,
) -> Result<Tensor> {
    let device = embeddings.device();
    let dtype = embeddings.dtype();
    let local = check_shard(embeddings, batch_labels);
    let (_, infos) = dist::exchange(comm, device, local, |&(rows, cols)| ShardInfo {
        refused: false,
        rows,
        cols,
        dtype,
        param: 0.0,
    })?;
    dist::same_layout(&infos, "embeddings")?;

    // In its own dtype (f16/bf16 too): half the bytes gathered, read as they are.
    let x_shard = embeddings.contiguous()?;
    let x = dist::gather(comm, &x_shard)?;
    let labels = dist::gather(comm, &batch_labels.to_dtype(DType::I64)?)?;
    // On the gathered batch, so every rank reaches the same verdict.
    let shared = KernelShared::new(loss.check_batch(&x, &labels)?);
    let labels = labels.to_dtype(DType::U32)?.contiguous()?;

    let params = loss.params();
    let rows = dist::own_rows(&infos, comm.rank());
    let width = RowStats::width(params.n_batches);
    // [this rank's share of the loss, the statistics of its rows]
    let own = if rows.is_empty() {
        Tensor::zeros(1, DType::F64, device)?
    } else {
        let op = BatchMixingOp {
            params,
            rows: rows.clone(),
            shared: shared.clone(),
        };
        x.apply_op2_no_bwd(&labels, &op)?
    };
    let total = comm.all_reduce_sum(&own.narrow(0, 0, 1)?)?;
    let own_stats = own
        .narrow(0, 1, rows.len() * width)?
        .reshape((rows.len(), width))?;
    let stats = dist::gather(comm, &own_stats)?.flatten_all()?;
    let value = total.to_vec1::<f64>()?[0];
    let op = ShardedBatchMixingOp {
        value,
        grad: BatchMixingGradOp {
            params,
            rows,
            shared,
        },
        x,
        labels,
        forward_out: Tensor::cat(&[total, stats], 0)?,
    };
    Ok(x_shard.apply_op1(op)?.to_dtype(dtype)?)
}

/// What a rank can check alone: a float `[n_r, d]` shard (`n_r ≥ 0`, `d ≥ 1`) and `[n_r]`
/// labels on its device. Returns `(n_r, d)`.
fn check_shard(embeddings: &Tensor, batch_labels: &Tensor) -> Result<(usize, usize)> {
    validate::float_dtype(embeddings, "embeddings")?;
    let (rows, cols) = embeddings.dims2().map_err(|_| Error::Shape {
        input: "embeddings",
        expected: "a 2-D tensor [n_r, d]".into(),
        got: embeddings.dims().to_vec(),
    })?;
    if cols == 0 {
        return Err(Error::Empty {
            input: "embeddings",
            reason: format!("shape {:?}", embeddings.dims()),
        });
    }
    validate::shape_is(batch_labels, "batch_labels", &[rows])?;
    validate::class_label_dtype(batch_labels, "batch_labels")?;
    validate::same_device(batch_labels, "batch_labels", embeddings, "embeddings")?;
    Ok((rows, cols))
}

/// The sharded loss as an op on this rank's shard: its value was computed (and summed
/// over the ranks) by `forward`; its backward computes this rank's gradient rows from
/// the gathered batch and the statistics of every row.
struct ShardedBatchMixingOp {
    value: f64,
    grad: BatchMixingGradOp,
    /// Every cell, `[n, d]` on the shard's device, in the embeddings' dtype.
    x: Tensor,
    labels: Tensor,
    /// `[loss, statistics of every row]`, as `BatchMixingOp` lays them out.
    forward_out: Tensor,
}

impl CustomOp1 for ShardedBatchMixingOp {
    fn name(&self) -> &'static str {
        "batch-mixing-sharded"
    }

    fn cpu_fwd(&self, s: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        dist::value_on_cpu(s, self.value)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        dist::value_on_cuda(s, self.value)
    }

    fn bwd(
        &self,
        shard: &Tensor,
        _: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if self.grad.rows.is_empty() {
            return Ok(Some(shard.zeros_like()?));
        }
        let inputs = (&self.x, &self.labels, &self.forward_out);
        Ok(Some(self.grad.scaled(inputs, grad_res)?))
    }
}
