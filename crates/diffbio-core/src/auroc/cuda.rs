//! CUDA launchers of the pairwise-sigmoid AUROC surrogate (`kernels/pairwise_sigmoid_auroc.cu`).
//! Output layout as on the CPU: `[value, ∂/∂T, ∂/∂s_0, ..., ∂/∂s_{n−1}]`.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{kernel_name, WrapErr};
use candle_core::{CudaDevice, CudaStorage, Layout};

use super::contract::GRAD_SCORES;
use crate::cuda_kernels::{
    alloc_output, contiguous_view, ptx, single_block, storage, CudaReal, RealCudaKernel,
};

const MODULE: &str = "diffbio_pairwise_sigmoid_auroc";
/// Centres (threads) per block in the pair sweep.
const CENTRES_PER_BLOCK: u32 = 256;

/// The launches on the scores, with their labels as 0/1 in the same dtype.
pub(crate) struct Forward<'a> {
    pub dev: &'a CudaDevice,
    pub labels: (&'a CudaStorage, &'a Layout),
    pub temperature: f64,
}

impl RealCudaKernel for Forward<'_> {
    const OP: &'static str = "pairwise-sigmoid-auroc";
    type Output = CudaStorage;

    fn run<T: CudaReal>(self, scores: CudaView<'_, T>) -> candle_core::Result<CudaStorage> {
        let labels = contiguous_view::<T>(self.labels.0, self.labels.1)?;
        let out = forward(self.dev, &scores, &labels, self.temperature)?;
        Ok(storage(out, self.dev))
    }
}

fn forward<T: CudaReal>(
    dev: &CudaDevice,
    scores: &CudaView<'_, T>,
    labels: &CudaView<'_, T>,
    temperature: f64,
) -> candle_core::Result<CudaSlice<T>> {
    let n = scores.len();
    let load = |name: &str| {
        dev.get_or_load_custom_func(&kernel_name::<T>(name), MODULE, ptx::PAIRWISE_SIGMOID_AUROC)
    };
    let n_i64 = n as i64;
    let mut pos_scores = dev.alloc_zeros::<T>(n)?;
    let mut neg_scores = dev.alloc_zeros::<T>(n)?;
    let mut pos_index = dev.alloc_zeros::<i64>(n)?;
    let mut neg_index = dev.alloc_zeros::<i64>(n)?;
    let mut counts = dev.alloc_zeros::<i64>(2)?;
    {
        let func = load("auroc_compact")?;
        let mut b = func.builder();
        b.arg(scores).arg(labels).arg(&n_i64);
        b.arg(&mut pos_scores)
            .arg(&mut pos_index)
            .arg(&mut neg_scores)
            .arg(&mut neg_index)
            .arg(&mut counts);
        // SAFETY: matches `auroc_compact_*`; every buffer holds n elements, counts 2.
        unsafe { b.launch(single_block()) }.w()?;
    }
    let host_counts = dev.clone_dtoh(&counts)?;
    let (n_pos, n_neg) = (host_counts[0] as usize, host_counts[1] as usize);
    if n_pos == 0 || n_neg == 0 {
        return dev.alloc_zeros::<T>(GRAD_SCORES + n); // value 0, zero gradients (SPEC.md §6)
    }
    let mut out = alloc_output::<T>(dev, GRAD_SCORES + n)?;
    let inv_t = 1.0 / temperature;
    let mut pos_sums = alloc_output::<T>(dev, 3 * n_pos)?;
    let mut neg_sums = alloc_output::<T>(dev, 3 * n_neg)?;
    let sweep = |centres: &CudaSlice<T>,
                 n_centres: usize,
                 others: &CudaSlice<T>,
                 n_others: usize,
                 scale: f64,
                 sums: &mut CudaSlice<T>|
     -> candle_core::Result<()> {
        let func = load("auroc_pairs")?;
        let (nc, no, scale) = (n_centres as i64, n_others as i64, T::from_f64(scale));
        let mut b = func.builder();
        b.arg(centres)
            .arg(&nc)
            .arg(others)
            .arg(&no)
            .arg(&scale)
            .arg(sums);
        let cfg = LaunchConfig {
            grid_dim: ((n_centres as u32).div_ceil(CENTRES_PER_BLOCK), 1, 1),
            block_dim: (CENTRES_PER_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: matches `auroc_pairs_*`; `sums` holds 3·n_centres elements.
        unsafe { b.launch(cfg) }.w()?;
        Ok(())
    };
    sweep(&pos_scores, n_pos, &neg_scores, n_neg, inv_t, &mut pos_sums)?;
    sweep(
        &neg_scores,
        n_neg,
        &pos_scores,
        n_pos,
        -inv_t,
        &mut neg_sums,
    )?;
    let func = load("auroc_finish")?;
    let norm = 1.0 / (n_pos as f64 * n_neg as f64);
    let inv_t_t = T::from_f64(inv_t);
    let mut b = func.builder();
    b.arg(&pos_sums)
        .arg(&pos_index)
        .arg(&neg_sums)
        .arg(&neg_index)
        .arg(&counts)
        .arg(&norm)
        .arg(&inv_t_t)
        .arg(&mut out);
    // SAFETY: matches `auroc_finish_*`; `out` holds 2 + n elements, indices are < n.
    unsafe { b.launch(single_block()) }.w()?;
    Ok(out)
}
