//! Data-parallel losses: the pairwise losses over shards of one minibatch held by several
//! ranks (GPUs, or threads), exactly equal to the single-device loss on the whole batch.
//!
//! # The contract
//!
//! Ranks `0..W` hold shards `x_r` (`n_r × d`, `n_r ≥ 0`) with their labels.
//! [`BatchMixingLoss::forward_sharded`](crate::BatchMixingLoss::forward_sharded) and
//! [`DifferentiableAuroc::forward_sharded`](crate::DifferentiableAuroc::forward_sharded)
//! return, **on every rank**, the single-device loss `L` of the concatenation of all shards
//! in rank order (`n = Σ n_r`). Its backward on rank `r` gives exactly the rows of `∂L/∂x`
//! for that rank's cells, including the terms that flow through other ranks' cells (a cell
//! that is another cell's neighbour, a negative paired with another rank's positive). A
//! learnable AUROC temperature gets the rank's share of `∂L/∂T`: the shares sum to `∂L/∂T`.
//!
//! So a **sum** all-reduce of the parameter gradients over the ranks reproduces the
//! single-device parameter gradient of `L`. A trainer that *averages* gradients over the
//! ranks (as PyTorch's DDP does) must multiply these losses by `W` first. Terms that are
//! means over the cells (a reconstruction error) must be divided by the total `n`, not by
//! `n_r`, and statistics over the batch (a centring mean) taken with [`sum_over_ranks`],
//! for the whole objective to match the single-device one (`examples/data_parallel.rs`).
//!
//! # What each rank computes
//!
//! Each rank gathers the other shards (`n·d` values: the loss is exact, so every rank
//! needs every cell as a column) and the labels, computes **its own rows** against all the
//! columns, then exchanges O(n·B) per-row statistics (batch mixing) or one value (AUROC), so
//! the backward pass needs no communication. The quadratic work is split `W` ways. Inputs
//! are validated on the gathered data, so a NaN, a label out of range or `k ≥ n` on one
//! rank is the same typed error on every rank (an input that cannot be gathered — wrong
//! rank, dtype or device — is an error on its own rank and [`Error::PeerInput`] on the
//! others): never a hang. Everything stays on the shards' device: on a GPU the fused
//! ops' kernels compute the rank's row range.
//!
//! Every rank must call the same sequence of collectives, as with NCCL: a rank that never
//! calls hangs the others (a [`ThreadComm`] whose thread ends or panics does not: the
//! others get [`Error::Communication`]).

mod sum;
mod thread;

#[cfg(feature = "nccl")]
mod nccl;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

#[cfg(feature = "nccl")]
pub use nccl::{NcclComm, NcclId};
pub use sum::sum_over_ranks;
pub use thread::ThreadComm;

/// The collectives the sharded losses need, over `world_size` ranks.
///
/// Tensors keep their device; the results carry no gradient (see [`sum_over_ranks`] for a
/// differentiable sum). Every rank must make the same calls in the same order.
pub trait Communicator {
    /// This rank, in `0..world_size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world_size(&self) -> usize;
    /// Every rank's `t` concatenated along dimension 0 in rank order. The first dimensions
    /// may differ (0 included); the other dimensions and the dtype must agree.
    fn all_gather(&self, t: &Tensor) -> Result<Tensor>;
    /// The element-wise sum of every rank's `t` (same shape and dtype on every rank).
    fn all_reduce_sum(&self, t: &Tensor) -> Result<Tensor>;
}

/// What one rank's shard looks like, exchanged before any data so that every rank takes
/// the same decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ShardInfo {
    /// Whether the rank refused its own inputs (wrong rank, dtype, device, lengths).
    pub refused: bool,
    /// Its number of cells.
    pub rows: usize,
    /// Its embedding width (1 for scores).
    pub cols: usize,
    /// Its float dtype.
    pub dtype: DType,
    /// A parameter every rank must share (the AUROC temperature), or 0.
    pub param: f64,
}

const DTYPES: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];

impl ShardInfo {
    fn encode(&self) -> [f64; 5] {
        let dtype = DTYPES.iter().position(|d| *d == self.dtype).unwrap_or(0);
        [
            self.refused as u8 as f64,
            self.rows as f64,
            self.cols as f64,
            dtype as f64,
            self.param,
        ]
    }

    fn decode(v: &[f64]) -> Self {
        Self {
            refused: v[0] != 0.0,
            rows: v[1] as usize,
            cols: v[2] as usize,
            dtype: DTYPES[v[3] as usize],
            param: v[4],
        }
    }
}

/// Exchanges every rank's [`ShardInfo`] (one small gather on `device`), then returns this
/// rank's own error, or [`Error::PeerInput`] when another rank refused its inputs, or the
/// infos of all ranks in rank order.
pub(crate) fn exchange<S>(
    comm: &dyn Communicator,
    device: &Device,
    local: Result<S>,
    info: impl Fn(&S) -> ShardInfo,
) -> Result<(S, Vec<ShardInfo>)> {
    let mine = match &local {
        Ok(shard) => info(shard),
        Err(_) => ShardInfo {
            refused: true,
            rows: 0,
            cols: 0,
            dtype: DType::F32,
            param: 0.0,
        },
    };
    let sent = Tensor::new(&mine.encode(), device)?.unsqueeze(0)?;
    let all = comm
        .all_gather(&sent)?
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
    let infos: Vec<ShardInfo> = all.iter().map(|v| ShardInfo::decode(v)).collect();
    let shard = local?;
    if let Some(rank) = infos.iter().position(|i| i.refused) {
        return Err(Error::PeerInput { rank });
    }
    Ok((shard, infos))
}

/// The same checks on every rank: all shards have `infos[0]`'s width and dtype.
pub(crate) fn same_layout(infos: &[ShardInfo], input: &'static str) -> Result<()> {
    let first = &infos[0];
    if let Some(other) = infos.iter().find(|i| i.cols != first.cols) {
        return Err(Error::Shape {
            input,
            expected: format!("[n_r, {}] on every rank (rank 0's width)", first.cols),
            got: vec![other.rows, other.cols],
        });
    }
    if let Some(other) = infos.iter().find(|i| i.dtype != first.dtype) {
        return Err(Error::DType {
            input,
            expected: "the same dtype on every rank (rank 0's)",
            got: other.dtype,
        });
    }
    Ok(())
}

/// This rank's rows in the concatenation: `start..start + n_rank`.
pub(crate) fn own_rows(infos: &[ShardInfo], rank: usize) -> std::ops::Range<usize> {
    let start: usize = infos[..rank].iter().map(|i| i.rows).sum();
    start..start + infos[rank].rows
}

/// Every rank's `t` in rank order, without gradient (the columns of the sharded ops).
pub(crate) fn gather(comm: &dyn Communicator, t: &Tensor) -> Result<Tensor> {
    comm.all_gather(&t.detach())
}

/// The output of a sharded loss's op: its value (computed by `forward_sharded`) as a
/// scalar of the op input's dtype; the op's `bwd` gives the gradient.
pub(crate) fn value_on_cpu(
    like: &candle_core::CpuStorage,
    value: f64,
) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
    use candle_core::backend::BackendStorage;
    Ok((scalar(like.dtype(), value)?, candle_core::Shape::from(())))
}

/// [`value_on_cpu`] on the op input's CUDA device.
#[cfg(feature = "cuda")]
pub(crate) fn value_on_cuda(
    like: &candle_core::CudaStorage,
    value: f64,
) -> candle_core::Result<(candle_core::CudaStorage, candle_core::Shape)> {
    use candle_core::backend::{BackendDevice, BackendStorage};
    let value = like
        .device()
        .storage_from_cpu_storage(&scalar(like.dtype(), value)?)?;
    Ok((value, candle_core::Shape::from(())))
}

fn scalar(dtype: DType, value: f64) -> candle_core::Result<candle_core::CpuStorage> {
    use candle_core::CpuStorage;
    Ok(match dtype {
        DType::F32 => CpuStorage::F32(vec![value as f32]),
        DType::F64 => CpuStorage::F64(vec![value]),
        DType::F16 => CpuStorage::F16(vec![half::f16::from_f64(value)]),
        DType::BF16 => CpuStorage::BF16(vec![half::bf16::from_f64(value)]),
        other => candle_core::bail!("sharded loss: unsupported dtype {other:?}"),
    })
}
