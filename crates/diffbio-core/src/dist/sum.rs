//! [`sum_over_ranks`]: a differentiable all-reduce.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Storage, Tensor};

use super::Communicator;
use crate::error::Result;

/// The element-wise sum over the ranks of `t`, differentiable: the backward pass sums
/// the ranks' upstream gradients (one collective, at the same point of every rank's
/// backward pass, so every rank must call `backward`).
///
/// With each rank's objective `L_r` a function of `y = Σ_q t_q`, rank `r`'s backward pass
/// then gives `∂(Σ_q L_q)/∂t_r`: what a statistic over the whole sharded batch (a mean, a
/// variance) needs for the summed parameter gradients to be exact.
///
/// Every rank's result must reach its loss through ops that keep the graph. Candle's
/// binary ops on an empty result return their left operand (candle-core 0.11), so on a
/// rank holding no cells `z.broadcast_sub(&mean)` drops `mean` and that rank skips the
/// backward collective: give every rank cells (a [`ThreadComm`](super::ThreadComm) group
/// then reports the mismatch as [`Error::Communication`](crate::Error::Communication);
/// NCCL would wait).
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use diffbio_core::dist::{sum_over_ranks, Communicator, ThreadComm};
/// # fn main() -> diffbio_core::Result<()> {
/// let grads = std::thread::scope(|s| {
///     let handles: Vec<_> = ThreadComm::group(2)
///         .into_iter()
///         .map(|comm| s.spawn(move || -> diffbio_core::Result<f32> {
///             let t = Var::new(&[1.0f32 + comm.rank() as f32], &Device::Cpu)?;
///             let total = sum_over_ranks(&comm, t.as_tensor())?; // 3 on both ranks
///             let own = (total.sqr()? * (comm.rank() as f64 + 1.0))?.sum_all()?; // 9, 18
///             Ok(own.backward()?.get(&t).unwrap().to_vec1::<f32>()?[0])
///         }))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect::<diffbio_core::Result<Vec<_>>>()
/// })?;
/// assert_eq!(grads, vec![18.0, 18.0]); // ∂(9 + 18)/∂t_r = (2 + 4)·3
/// # Ok(()) }
/// ```
pub fn sum_over_ranks<C>(comm: &C, t: &Tensor) -> Result<Tensor>
where
    C: Communicator + Clone + Send + Sync + 'static,
{
    let summed = comm.all_reduce_sum(t)?.contiguous()?;
    Ok(t.apply_op1(SumOverRanks {
        comm: comm.clone(),
        summed,
    })?)
}

/// The op: its value was summed by `sum_over_ranks`, its backward sums the gradients.
struct SumOverRanks<C> {
    comm: C,
    summed: Tensor,
}

impl<C: Communicator + Send + Sync> SumOverRanks<C> {
    fn summed_storage<S>(
        &self,
        pick: impl Fn(&Storage) -> Option<&S>,
    ) -> candle_core::Result<(S, Shape)>
    where
        S: BackendStorage,
    {
        let (storage, layout) = self.summed.storage_and_layout();
        match pick(&storage) {
            Some(s) => Ok((s.try_clone(layout)?, layout.shape().clone())),
            None => candle_core::bail!("sum-over-ranks: the sum is on another device"),
        }
    }
}

impl<C: Communicator + Send + Sync> CustomOp1 for SumOverRanks<C> {
    fn name(&self) -> &'static str {
        "sum-over-ranks"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        self.summed_storage(|s| match s {
            Storage::Cpu(s) => Some(s),
            _ => None,
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        self.summed_storage(|s| match s {
            Storage::Cuda(s) => Some(s),
            _ => None,
        })
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.comm.all_reduce_sum(grad_res)?))
    }
}
