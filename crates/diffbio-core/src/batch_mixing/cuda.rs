//! CUDA launchers of the k-NN soft-neighbour entropy (`kernels/knn_entropy.cu`).
//!
//! The op output is the contract's (`super::contract`): `[loss, per-row statistics...]` in
//! f64, rows in input order, so `bwd` finds κ_i, j*(i), Dmin_i, γ_i, ∂L/∂κ_i and β_i· without an
//! n×n buffer. Memory: the statistics, one f64 entropy per row, and shared memory per warp.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, PushKernelArg};
use candle_core::cuda_backend::{kernel_name, WrapErr};
use candle_core::{CudaDevice, CudaStorage};

use super::contract::{Params, RowStats};
use crate::cuda_kernels::{
    alloc_output, ptx, row_launch, single_block, storage, warps_per_block, CudaReal, RealCudaKernel,
};

const MODULE: &str = "diffbio_knn_entropy";

fn as_i32(v: usize, what: &str) -> candle_core::Result<i32> {
    i32::try_from(v).map_err(|_| {
        candle_core::Error::Msg(format!(
            "diffbio: {what} = {v} exceeds the CUDA kernel's i32 range"
        ))
    })
}

/// The forward launch on `x` (`[n, d]`) and its labels.
pub(crate) struct Forward<'a> {
    pub dev: &'a CudaDevice,
    pub labels: CudaView<'a, u32>,
    pub dims: (usize, usize),
    pub params: &'a Params,
}

impl RealCudaKernel for Forward<'_> {
    const OP: &'static str = "knn-entropy";
    type Output = CudaSlice<f64>;

    fn run<T: CudaReal>(self, x: CudaView<'_, T>) -> candle_core::Result<CudaSlice<f64>> {
        forward(self.dev, &x, &self.labels, self.dims, self.params)
    }
}

/// The backward launch on `x` (`[n, d]`), its labels and the forward output.
pub(crate) struct Backward<'a> {
    pub dev: &'a CudaDevice,
    pub labels: CudaView<'a, u32>,
    pub forward_out: CudaView<'a, f64>,
    pub dims: (usize, usize),
    pub params: &'a Params,
}

impl RealCudaKernel for Backward<'_> {
    const OP: &'static str = "knn-entropy-grad";
    type Output = CudaStorage;

    fn run<T: CudaReal>(self, x: CudaView<'_, T>) -> candle_core::Result<CudaStorage> {
        let grad = backward(
            self.dev,
            &x,
            &self.labels,
            &self.forward_out,
            self.dims,
            self.params,
        )?;
        Ok(storage(grad, self.dev))
    }
}

/// Forward: returns `[loss, stats row 0, row 1, ...]` (f64).
fn forward<T: CudaReal>(
    dev: &CudaDevice,
    x: &CudaView<'_, T>,
    labels: &CudaView<'_, u32>,
    (n, d): (usize, usize),
    p: &Params,
) -> candle_core::Result<CudaSlice<f64>> {
    let width = RowStats::width(p.n_batches);
    let size = std::mem::size_of::<T>();
    let per_warp = d * size + 32 * p.k * (size + 4) + 2 * p.n_batches * 32 * size;
    let warps = warps_per_block(per_warp, "batch mixing (k-NN lists and class sums)")?;
    let mut out = alloc_output::<f64>(dev, 1 + n * width)?;
    let entropy = alloc_output::<f64>(dev, n)?;
    let (n_i, d_i, k_i, b_i) = (
        as_i32(n, "n")?,
        as_i32(d, "d")?,
        as_i32(p.k, "k")?,
        as_i32(p.n_batches, "B")?,
    );
    let inv_t = T::from_f64(1.0 / p.temperature);
    {
        let func = dev.get_or_load_custom_func(
            &kernel_name::<T>("knn_entropy_fwd"),
            MODULE,
            ptx::KNN_ENTROPY,
        )?;
        let mut stats = out.slice_mut(1..);
        let mut builder = func.builder();
        builder
            .arg(x)
            .arg(labels)
            .arg(&n_i)
            .arg(&d_i)
            .arg(&k_i)
            .arg(&b_i)
            .arg(&inv_t)
            .arg(&mut stats)
            .arg(&entropy);
        // SAFETY: argument types and order match `knn_entropy_fwd_*`; the buffers hold n·d,
        // n, n·(5 + B) and n elements; shared memory is sized as the kernel lays it out.
        unsafe { builder.launch(row_launch(n, warps, per_warp)) }.w()?;
    }
    let func = dev.get_or_load_custom_func("knn_entropy_loss_f64", MODULE, ptx::KNN_ENTROPY)?;
    let mut builder = func.builder();
    builder.arg(&entropy).arg(&n_i).arg(&b_i).arg(&mut out);
    // SAFETY: `entropy` holds n doubles; the kernel writes out[0] only.
    unsafe { builder.launch(single_block()) }.w()?;
    Ok(out)
}

/// Backward: `∂loss/∂x` for a unit upstream gradient, from the forward output.
fn backward<T: CudaReal>(
    dev: &CudaDevice,
    x: &CudaView<'_, T>,
    labels: &CudaView<'_, u32>,
    forward_out: &CudaView<'_, f64>,
    (n, d): (usize, usize),
    p: &Params,
) -> candle_core::Result<CudaSlice<T>> {
    let per_warp = 2 * d * std::mem::size_of::<T>();
    let warps = warps_per_block(per_warp, "batch mixing backward (row and gradient)")?;
    let mut grad = alloc_output::<T>(dev, n * d)?;
    let (n_i, d_i, b_i) = (as_i32(n, "n")?, as_i32(d, "d")?, as_i32(p.n_batches, "B")?);
    let inv_t = T::from_f64(1.0 / p.temperature);
    let stats = forward_out.slice(1..);
    let func = dev.get_or_load_custom_func(
        &kernel_name::<T>("knn_entropy_bwd"),
        MODULE,
        ptx::KNN_ENTROPY,
    )?;
    let mut builder = func.builder();
    builder
        .arg(x)
        .arg(labels)
        .arg(&stats)
        .arg(&n_i)
        .arg(&d_i)
        .arg(&b_i)
        .arg(&inv_t)
        .arg(&mut grad);
    // SAFETY: argument types and order match `knn_entropy_bwd_*`; `grad` holds n·d elements.
    unsafe { builder.launch(row_launch(n, warps, per_warp)) }.w()?;
    Ok(grad)
}
