//! The project's CUDA kernels (`kernels/*.cu`, compiled to PTX by the build script) and
//! helpers shared by the ops' `cuda_fwd`.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, ValidAsZeroBits,
};
use candle_core::cuda_backend::CudaDType;
use candle_core::{CudaDevice, CudaStorage, DType, Layout, WithDType};

/// `KNN_ENTROPY` and `PAIRWISE_SIGMOID_AUROC`: the PTX of each kernel file.
pub(crate) mod ptx {
    include!(concat!(env!("OUT_DIR"), "/ptx.rs"));
}

/// Static shared memory a block may use without an opt-in (bytes).
pub(crate) const SHARED_MEMORY_LIMIT: usize = 48 * 1024;

/// The elements of a contiguous CUDA storage as a view, or an error.
pub(crate) fn contiguous_view<'a, T: CudaDType + DeviceRepr>(
    storage: &'a CudaStorage,
    layout: &Layout,
) -> candle_core::Result<CudaView<'a, T>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(storage.as_cuda_slice::<T>()?.slice(start..end)),
        None => candle_core::bail!("diffbio: CUDA op input is not contiguous ({layout:?})"),
    }
}

/// Warps per block (one row each) that fit `per_warp` bytes of shared memory, at most 8.
pub(crate) fn warps_per_block(per_warp: usize, what: &str) -> candle_core::Result<usize> {
    let warps = (SHARED_MEMORY_LIMIT / per_warp.max(1)).min(8);
    if warps == 0 {
        candle_core::bail!(
            "diffbio: {what} needs {per_warp} bytes of shared memory per row, more than the {SHARED_MEMORY_LIMIT} a block has; use the CPU path for these sizes"
        );
    }
    Ok(warps)
}

/// `rows` rows, one warp each, `warps` warps per block.
pub(crate) fn row_launch(rows: usize, warps: usize, per_warp: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.div_ceil(warps) as u32, 1, 1),
        block_dim: (32 * warps as u32, 1, 1),
        shared_mem_bytes: (per_warp * warps) as u32,
    }
}

/// One block of 1024 threads (the fixed-order reductions).
pub(crate) fn single_block() -> LaunchConfig {
    LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (1024, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The floats the kernels are instantiated for (f32, f64).
pub(crate) trait CudaReal: CudaDType + DeviceRepr + WithDType + ValidAsZeroBits {}

impl CudaReal for f32 {}
impl CudaReal for f64 {}

/// A CUDA launcher generic over the float type of its main input (the CUDA twin of
/// [`crate::storage::RealKernel`]).
pub(crate) trait RealCudaKernel {
    /// The op's name, for the error on an unsupported dtype.
    const OP: &'static str;
    /// What the launcher returns.
    type Output;
    /// Runs on the contiguous elements of the main input.
    fn run<T: CudaReal>(self, x: CudaView<'_, T>) -> candle_core::Result<Self::Output>;
}

/// Runs `kernel` on an f32 or f64 CUDA storage.
pub(crate) fn on_real_cuda<K: RealCudaKernel>(
    kernel: K,
    storage: &CudaStorage,
    layout: &Layout,
) -> candle_core::Result<K::Output> {
    match storage.dtype() {
        DType::F32 => kernel.run(contiguous_view::<f32>(storage, layout)?),
        DType::F64 => kernel.run(contiguous_view::<f64>(storage, layout)?),
        other => candle_core::bail!("{}: unsupported dtype {other:?}", K::OP),
    }
}

/// Wraps a result slice into a storage on `dev`.
pub(crate) fn storage<T: CudaDType + DeviceRepr>(
    slice: CudaSlice<T>,
    dev: &CudaDevice,
) -> CudaStorage {
    CudaStorage::wrap_cuda_slice(slice, dev.clone())
}

/// A buffer every element of which a kernel is about to write. With
/// `DIFFBIO_POISON_OUTPUTS` set (the parity tests set it) it starts as NaN, so an element a
/// kernel forgets to write is caught; otherwise it starts zeroed.
pub(crate) fn alloc_output<T>(dev: &CudaDevice, len: usize) -> candle_core::Result<CudaSlice<T>>
where
    T: DeviceRepr + ValidAsZeroBits + WithDType,
{
    let mut out = dev.alloc_zeros::<T>(len)?;
    if std::env::var_os("DIFFBIO_POISON_OUTPUTS").is_some() && len > 0 {
        dev.memcpy_htod(&vec![T::from_f64(f64::NAN); len], &mut out)?;
    }
    Ok(out)
}
