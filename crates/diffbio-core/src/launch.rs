//! The kernels' launches, written once for every device that runs them: a CUDA GPU through
//! cudarc (`cuda` feature) or the CPU emulator of `kernels/emu` (`cuda-emu` feature).
//!
//! A [`Launch`] — kernel name, [`Shape`] (grid, block, dynamic shared memory) and the
//! arguments in the kernel's parameter order — is built by one pure function per kernel
//! (`plan` in each op's `launch` module), and the launch sequences (allocations, kernels,
//! reads back) are generic over [`KernelDevice`]. So the emulated tests run the very plans
//! and sequences a GPU runs; only [`KernelDevice::launch`] differs.

use candle_core::{DType, Layout, WithDType};

/// Dynamic shared memory a block may use without an opt-in (bytes).
pub(crate) const SHARED_MEMORY_LIMIT: usize = 48 * 1024;

/// Grid, block (threads) and dynamic shared memory (bytes) of a 1-D launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub grid: u32,
    pub block: u32,
    pub shared_bytes: u32,
}

impl Shape {
    /// `rows` rows, one warp each, `warps` warps per block, `per_warp` bytes of shared
    /// memory each.
    pub(crate) fn rows(rows: usize, warps: usize, per_warp: usize) -> Self {
        Self {
            grid: rows.div_ceil(warps) as u32,
            block: 32 * warps as u32,
            shared_bytes: (per_warp * warps) as u32,
        }
    }

    /// One block of 1024 threads (the fixed-order reductions).
    pub(crate) fn single_block() -> Self {
        Self {
            grid: 1,
            block: 1024,
            shared_bytes: 0,
        }
    }

    /// `items` items, one thread each, `per_block` threads per block.
    pub(crate) fn threads(items: usize, per_block: u32) -> Self {
        Self {
            grid: (items as u32).div_ceil(per_block),
            block: per_block,
            shared_bytes: 0,
        }
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

/// `v` as a kernel's `int` parameter, or an error.
pub(crate) fn as_i32(v: usize, what: &str) -> candle_core::Result<i32> {
    i32::try_from(v).map_err(|_| {
        candle_core::Error::Msg(format!(
            "diffbio: {what} = {v} exceeds the CUDA kernel's i32 range"
        ))
    })
}

/// The kernel files (each one CUDA module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Module {
    /// `kernels/knn_entropy.cu`
    KnnEntropy,
    /// `kernels/pairwise_sigmoid_auroc.cu`
    PairwiseSigmoidAuroc,
}

/// One kernel argument: a scalar by value or a device buffer `B`.
pub(crate) enum Arg<B> {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Buffer(B),
}

impl<B> Arg<B> {
    /// A scalar of the kernel's float type `T`.
    pub(crate) fn real<T: KernelReal>(v: f64) -> Self {
        match T::DTYPE {
            DType::F32 => Arg::F32(v as f32),
            _ => Arg::F64(v),
        }
    }
}

/// A kernel, its shape and its arguments in the kernel's parameter order.
pub(crate) struct Launch<B> {
    /// Which PTX module holds the kernel (the emulator links every kernel into one library).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub module: Module,
    pub kernel: String,
    pub shape: Shape,
    pub args: Vec<Arg<B>>,
}

/// The name of a kernel's instantiation for `T` (`name_f32`, `name_f64`, `name_f16`,
/// `name_bf16`), as candle's `kernel_name` spells it.
pub(crate) fn kernel_name<T: WithDType>(name: &str) -> String {
    format!("{name}_{}", T::DTYPE.as_str())
}

/// What a device needs of a buffer element: with `cuda`, cudarc's `DeviceRepr +
/// ValidAsZeroBits`; nothing more otherwise.
#[cfg(feature = "cuda")]
pub(crate) trait DeviceElement:
    candle_core::cuda_backend::cudarc::driver::DeviceRepr
    + candle_core::cuda_backend::cudarc::driver::ValidAsZeroBits
    + candle_core::cuda_backend::CudaDType
{
}
#[cfg(feature = "cuda")]
impl<T> DeviceElement for T where
    T: candle_core::cuda_backend::cudarc::driver::DeviceRepr
        + candle_core::cuda_backend::cudarc::driver::ValidAsZeroBits
        + candle_core::cuda_backend::CudaDType
{
}
/// What a device needs of a buffer element (nothing without `cuda`).
#[cfg(not(feature = "cuda"))]
pub(crate) trait DeviceElement {}
#[cfg(not(feature = "cuda"))]
impl<T> DeviceElement for T {}

/// The element types of kernel buffers (f32, f64, f16, bf16, u32, i64).
pub(crate) trait Element: WithDType + DeviceElement {}

impl Element for f32 {}
impl Element for f64 {}
impl Element for half::f16 {}
impl Element for half::bf16 {}
impl Element for u32 {}
impl Element for i64 {}

/// The floats the kernels compute in (f32, f64).
pub(crate) trait KernelReal: KernelInput<Real = Self> {}

impl KernelReal for f32 {}
impl KernelReal for f64 {}

/// The dtypes of the inputs the kernels read directly, each with the float they compute in
/// (`Real`): f32 and f64 themselves, f16 and bf16 read as f32 (no widened copy).
pub(crate) trait KernelInput: Element {
    type Real: KernelReal;
}

impl KernelInput for f32 {
    type Real = f32;
}
impl KernelInput for f64 {
    type Real = f64;
}
impl KernelInput for half::f16 {
    type Real = f32;
}
impl KernelInput for half::bf16 {
    type Real = f32;
}

/// A device that runs the kernels: its buffers, and a launch.
pub(crate) trait KernelDevice {
    /// An op input or output as the backend stores it.
    type Storage;
    /// An owned buffer of `T`.
    type Buffer<T: Element>;
    /// A borrowed op input of `T`.
    type Input<'a, T: Element>;
    /// A buffer argument borrowed for `'a`.
    type Arg<'a>;

    /// A buffer every element of which a kernel is about to write. It may start as NaN
    /// (poisoned), so an element a kernel forgets to write is caught.
    fn alloc_output<T: Element>(&self, len: usize) -> candle_core::Result<Self::Buffer<T>>;
    /// A zeroed buffer.
    fn alloc_zeros<T: Element>(&self, len: usize) -> candle_core::Result<Self::Buffer<T>>;
    /// A copy of `buffer` on the host.
    fn to_host<T: Element>(&self, buffer: &Self::Buffer<T>) -> candle_core::Result<Vec<T>>;
    /// A copy of an op input on the host.
    fn input_to_host<T: Element>(&self, input: &Self::Input<'_, T>) -> candle_core::Result<Vec<T>>;
    /// A buffer holding `data`.
    fn upload<T: Element>(&self, data: &[T]) -> candle_core::Result<Self::Buffer<T>>;
    /// A result buffer as a storage of this backend.
    fn storage<T: Element>(&self, buffer: Self::Buffer<T>) -> Self::Storage;

    /// The dtype of a storage.
    fn dtype(storage: &Self::Storage) -> DType;
    /// The contiguous elements of `storage` as an input, or an error.
    fn input<'a, T: Element>(
        storage: &'a Self::Storage,
        layout: &Layout,
    ) -> candle_core::Result<Self::Input<'a, T>>;

    /// The number of elements of an input.
    fn input_len<T: Element>(input: &Self::Input<'_, T>) -> usize;
    /// `input[start..]` as a read-only kernel argument.
    fn read_input_from<'a, T: Element>(
        input: &'a Self::Input<'_, T>,
        start: usize,
    ) -> Arg<Self::Arg<'a>>;
    /// `buffer[start..]` as a read-only kernel argument.
    fn read_from<'a, T: Element>(buffer: &'a Self::Buffer<T>, start: usize) -> Arg<Self::Arg<'a>>;
    /// `buffer[start..]` as a kernel argument the kernel writes.
    fn write_from<'a, T: Element>(
        buffer: &'a mut Self::Buffer<T>,
        start: usize,
    ) -> Arg<Self::Arg<'a>>;

    /// Runs `launch` and waits for nothing more than the backend's own ordering.
    ///
    /// # Safety
    /// The arguments match the kernel's parameters in type and order, every buffer holds
    /// what the kernel reads and writes at that shape, and the shared memory is what the
    /// kernel lays out.
    unsafe fn launch(&self, launch: Launch<Self::Arg<'_>>) -> candle_core::Result<()>;
}

/// A launch sequence generic over the device and the float type of its main input (the
/// device-generic twin of [`crate::storage::RealKernel`]).
pub(crate) trait DeviceKernel<D: KernelDevice> {
    /// The op's name, for the error on an unsupported dtype.
    const OP: &'static str;
    /// Runs on the contiguous elements of the main input.
    fn run<X: KernelInput>(self, x: D::Input<'_, X>) -> candle_core::Result<D::Storage>;
}

/// Runs `kernel` on a float storage (f32, f64, f16, bf16) of device `D`.
pub(crate) fn on_float_device<D: KernelDevice, K: DeviceKernel<D>>(
    kernel: K,
    storage: &D::Storage,
    layout: &Layout,
) -> candle_core::Result<D::Storage> {
    match D::dtype(storage) {
        DType::F32 => kernel.run(D::input::<f32>(storage, layout)?),
        DType::F64 => kernel.run(D::input::<f64>(storage, layout)?),
        DType::F16 => kernel.run(D::input::<half::f16>(storage, layout)?),
        DType::BF16 => kernel.run(D::input::<half::bf16>(storage, layout)?),
        other => candle_core::bail!("{}: unsupported dtype {other:?}", K::OP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_launches_cover_every_row_with_whole_warps() {
        for (rows, warps) in [(1, 8), (31, 3), (257, 8), (1024, 8)] {
            let s = Shape::rows(rows, warps, 100);
            assert!(s.grid as usize * warps >= rows && (s.grid as usize - 1) * warps < rows);
            assert_eq!(s.block as usize, 32 * warps);
            assert_eq!(s.shared_bytes as usize, 100 * warps);
        }
        let t = Shape::threads(257, 256);
        assert_eq!((t.grid, t.block), (2, 256));
    }

    #[test]
    fn shared_memory_per_row_is_bounded() {
        assert_eq!(warps_per_block(100, "x").unwrap(), 8);
        assert_eq!(warps_per_block(SHARED_MEMORY_LIMIT / 3, "x").unwrap(), 3);
        assert!(warps_per_block(SHARED_MEMORY_LIMIT + 1, "x").is_err());
        assert!(as_i32(1 << 31, "n").is_err());
    }

    #[test]
    fn real_scalars_take_the_kernel_float_type() {
        assert!(matches!(Arg::<()>::real::<f32>(0.5), Arg::F32(v) if v == 0.5));
        assert!(matches!(Arg::<()>::real::<f64>(0.5), Arg::F64(v) if v == 0.5));
        assert_eq!(kernel_name::<f32>("k"), "k_f32");
        assert_eq!(kernel_name::<half::bf16>("k"), "k_bf16");
    }
}
