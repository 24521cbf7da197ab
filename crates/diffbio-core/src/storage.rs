//! Reading Candle CPU storages inside the fused ops, and the one float dispatch of their
//! CPU kernels.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Shape, WithDType};
use diffbio_pairwise::Real;

/// The elements of a contiguous layout, or an error: the public entry points make their
/// inputs contiguous before applying an op, so anything else is a bug worth reporting.
pub(crate) fn contiguous_slice<'a, T: WithDType>(
    data: &'a [T],
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("diffbio: custom op input is not contiguous ({layout:?})"),
    }
}

/// A CPU kernel generic over the float type of its main input (Candle's `Map1` pattern).
pub(crate) trait RealKernel {
    /// The op's name, for the error on an unsupported dtype.
    const OP: &'static str;
    /// What the kernel returns.
    type Output;
    /// Runs on the contiguous elements of the main input.
    fn run<T: Real + WithDType>(self, x: &[T]) -> candle_core::Result<Self::Output>;
}

/// Runs `kernel` on a float storage: f32 and f64 as they are, f16 and bf16 as an f32 copy
/// (the CPU kernels compute in f32 or f64; the GPU kernels read half types directly).
pub(crate) fn on_real<K: RealKernel>(
    kernel: K,
    storage: &CpuStorage,
    layout: &Layout,
) -> candle_core::Result<K::Output> {
    fn widened<H: WithDType>(x: &[H]) -> Vec<f32> {
        x.iter().map(|v| v.to_f64() as f32).collect()
    }
    match storage {
        CpuStorage::F32(x) => kernel.run(contiguous_slice(x, layout)?),
        CpuStorage::F64(x) => kernel.run(contiguous_slice(x, layout)?),
        CpuStorage::F16(x) => kernel.run(&widened(contiguous_slice(x, layout)?)),
        CpuStorage::BF16(x) => kernel.run(&widened(contiguous_slice(x, layout)?)),
        other => Err(candle_core::Error::UnsupportedDTypeForOp(
            other.dtype(),
            K::OP,
        )),
    }
}

/// A contiguous `out` of `shape` in `dtype`: a CPU kernel's f32 result for an f16 or bf16
/// input, rounded to nearest (unchanged when it is in `dtype` already).
pub(crate) fn in_dtype(
    out: CpuStorage,
    shape: &Shape,
    dtype: DType,
) -> candle_core::Result<CpuStorage> {
    if out.dtype() == dtype {
        return Ok(out);
    }
    out.to_dtype(&Layout::contiguous(shape), dtype)
}
