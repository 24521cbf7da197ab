//! The kernels' launches, written once for every device that runs them: a CUDA GPU through
//! cudarc (`cuda` feature) or the CPU emulator of `kernels/emu` (`cuda-emu` feature).
//!
//! A [`Launch`] — kernel name, [`LaunchShape`] (grid, block, dynamic shared memory) and the
//! arguments in the kernel's parameter order, checked against the kernel's declaration
//! ([`crate::kernel_interface`]) — is built by one pure function per kernel (`plan` in each
//! op's `launch` module), and the launch sequences (allocations, kernels, reads back) are
//! generic over [`KernelDevice`]. So the emulated tests run the very plans and sequences a
//! GPU runs; only [`KernelDevice::launch`] differs.

use candle_core::{DType, Layout, WithDType};

use crate::error::{Error, Result};

pub(crate) use crate::kernel_interface::Module;
use crate::kernel_interface::{Elem, Instances, Kernel, Param, Scalar};

/// Dynamic shared memory a block may use without an opt-in (bytes).
pub(crate) const SHARED_MEMORY_LIMIT: usize = 48 * 1024;

/// Grid, block (threads) and dynamic shared memory (bytes) of a 1-D launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaunchShape {
    pub grid: u32,
    pub block: u32,
    pub shared_bytes: u32,
}

impl LaunchShape {
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

/// Whether the fused ops on `device` run their kernels: on a CUDA device, and on the CPU
/// inside `emulator::with_emulated_kernels` (`cuda-emu`).
pub(crate) fn runs_kernels(device: &candle_core::Device) -> bool {
    #[cfg(feature = "cuda-emu")]
    if crate::emulator::active() && device.is_cpu() {
        return true;
    }
    device.is_cuda()
}

/// Warps per block (one row each) that fit `per_warp` bytes of shared memory, at most 8;
/// [`Error::DeviceLimit`] when not one fits.
pub(crate) fn warps_per_block(per_warp: usize, what: &str) -> Result<usize> {
    let warps = (SHARED_MEMORY_LIMIT / per_warp.max(1)).min(8);
    if warps == 0 {
        return Err(Error::DeviceLimit {
            what: format!("the shared memory per row (bytes) of {what}"),
            value: per_warp,
            limit: SHARED_MEMORY_LIMIT,
        });
    }
    Ok(warps)
}

/// `v` as a kernel's `int` parameter; [`Error::DeviceLimit`] past `i32::MAX`.
pub(crate) fn as_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::DeviceLimit {
        what: format!("`{what}` (a kernel's 32-bit argument)"),
        value: v,
        limit: i32::MAX as usize,
    })
}

/// `v` as a kernel's `int64_t` parameter; [`Error::DeviceLimit`] past `i64::MAX`.
fn as_i64(v: usize, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::DeviceLimit {
        what: format!("`{what}` (a kernel's 64-bit argument)"),
        value: v,
        limit: i64::MAX as usize,
    })
}

/// One kernel argument: a scalar by value, or a device buffer `B` of `dtype` that the kernel
/// reads, or also writes.
#[derive(Debug)]
pub(crate) enum Arg<B> {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Buffer {
        buffer: B,
        dtype: DType,
        write: bool,
    },
}

impl<B> Arg<B> {
    /// A buffer of `T` the kernel only reads.
    pub(crate) fn read<T: Element>(buffer: B) -> Self {
        Arg::Buffer {
            buffer,
            dtype: T::DTYPE,
            write: false,
        }
    }

    /// A buffer of `T` the kernel writes.
    pub(crate) fn write<T: Element>(buffer: B) -> Self {
        Arg::Buffer {
            buffer,
            dtype: T::DTYPE,
            write: true,
        }
    }

    /// The emulator's code of the argument's type (`type_code` in `kernels/emu/launch.cpp`):
    /// 1 int, 2 int64_t, 3 float, 4 double; a buffer 16 + 2·(its element's code: 3 float,
    /// 4 double, 5 half, 6 bfloat16, 7 uint32_t, 2 int64_t) + 1 when written.
    #[cfg_attr(not(feature = "cuda-emu"), allow(dead_code))]
    pub(crate) fn type_code(&self) -> i32 {
        match self {
            Arg::I32(_) => 1,
            Arg::I64(_) => 2,
            Arg::F32(_) => 3,
            Arg::F64(_) => 4,
            Arg::Buffer { dtype, write, .. } => {
                let elem = match dtype {
                    DType::F32 => 3,
                    DType::F64 => 4,
                    DType::F16 => 5,
                    DType::BF16 => 6,
                    DType::U32 => 7,
                    DType::I64 => 2,
                    _ => 0,
                };
                16 + 2 * elem + i32::from(*write)
            }
        }
    }

    /// Whether it may be passed as `param` of the instantiation whose input type is `X`.
    fn fits<X: KernelInput>(&self, param: Param) -> bool {
        let real = <X::Real as WithDType>::DTYPE;
        let elem_dtype = elem_dtype::<X>;
        match (param, self) {
            (Param::Value(Scalar::I32), Arg::I32(_)) | (Param::Value(Scalar::I64), Arg::I64(_)) => {
                true
            }
            (Param::Value(Scalar::F64), Arg::F64(_)) => true,
            (Param::Value(Scalar::Real), Arg::F32(_)) => real == DType::F32,
            (Param::Value(Scalar::Real), Arg::F64(_)) => real == DType::F64,
            (Param::Read(elem), Arg::Buffer { dtype, write, .. }) => {
                !write && *dtype == elem_dtype(elem)
            }
            (Param::Write(elem), Arg::Buffer { dtype, write, .. }) => {
                *write && *dtype == elem_dtype(elem)
            }
            _ => false,
        }
    }

    /// What it is, for an error.
    fn describe(&self) -> String {
        match self {
            Arg::I32(_) => "an i32".into(),
            Arg::I64(_) => "an i64".into(),
            Arg::F32(_) => "an f32".into(),
            Arg::F64(_) => "an f64".into(),
            Arg::Buffer { dtype, write, .. } => {
                let access = if *write { "written" } else { "read-only" };
                format!("a {access} {dtype:?} buffer")
            }
        }
    }

    /// A scalar of the kernel's float type `T`.
    pub(crate) fn real<T: KernelReal>(v: f64) -> Self {
        match T::DTYPE {
            DType::F32 => Arg::F32(v as f32),
            _ => Arg::F64(v),
        }
    }
}

/// A kernel, its shape and its arguments in the kernel's parameter order.
#[derive(Debug)]
pub(crate) struct Launch<B> {
    /// Which PTX module holds the kernel (the emulator links every kernel into one library).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub module: Module,
    pub kernel: String,
    pub shape: LaunchShape,
    pub args: Vec<Arg<B>>,
}

/// Buffer arguments by their parameters' names, for [`Launch::build`].
pub(crate) type Buffers<B> = Vec<(&'static str, Arg<B>)>;

/// A scalar argument, given by its parameter's name to [`Launch::build`]: a size for an
/// `int` or `int64_t` parameter, a value for a `T` or `double` one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ScalarArg {
    Size(usize),
    Value(f64),
}

/// The dtype of a buffer element `elem` in the instantiation whose input type is `X`.
fn elem_dtype<X: KernelInput>(elem: Elem) -> DType {
    match elem {
        Elem::Input => X::DTYPE,
        Elem::Real => <X::Real as WithDType>::DTYPE,
        Elem::F64 => DType::F64,
        Elem::U32 => DType::U32,
        Elem::I64 => DType::I64,
    }
}

/// Placeholder buffers `()` for `kernel`'s buffer parameters, typed as its instantiation
/// for `X` takes them: what a plan's tests pass.
#[cfg(test)]
pub(crate) fn placeholder_buffers<X: KernelInput>(kernel: &Kernel) -> Buffers<()> {
    (kernel.params.iter())
        .filter_map(|&(name, param)| match param {
            Param::Read(elem) => Some((name, elem, false)),
            Param::Write(elem) => Some((name, elem, true)),
            Param::Value(_) => None,
        })
        .map(|(name, elem, write)| {
            let buffer = Arg::Buffer {
                buffer: (),
                dtype: elem_dtype::<X>(elem),
                write,
            };
            (name, buffer)
        })
        .collect()
}

impl<B> Launch<B> {
    /// `kernel`'s instantiation for input type `X` at `shape`, its arguments in the order
    /// the kernel declares them: each buffer parameter takes the buffer of its name in
    /// `buffers` (every one must be taken), each scalar parameter the value its name has in
    /// `scalars` (converted to its declared type; names no parameter has are ignored, so
    /// plans may share one list). So no plan writes a kernel's argument order; what they
    /// give is checked as [`Self::new`] checks.
    pub(crate) fn build<X: KernelInput>(
        kernel: &Kernel,
        shape: LaunchShape,
        mut buffers: Buffers<B>,
        scalars: &[(&str, ScalarArg)],
    ) -> candle_core::Result<Self> {
        let refuse = |reason: String| plan_bug(kernel.name, &reason);
        let mut args = Vec::with_capacity(kernel.params.len());
        for &(name, param) in kernel.params {
            let arg = match param {
                Param::Read(_) | Param::Write(_) => {
                    let at = (buffers.iter())
                        .position(|(given, _)| *given == name)
                        .ok_or_else(|| refuse(format!("no buffer for `{name}`")))?;
                    buffers.swap_remove(at).1
                }
                Param::Value(scalar) => {
                    let given = (scalars.iter())
                        .find(|(given, _)| *given == name)
                        .map(|&(_, value)| value)
                        .ok_or_else(|| refuse(format!("no value for `{name}`")))?;
                    match (scalar, given) {
                        (Scalar::I32, ScalarArg::Size(v)) => Arg::I32(as_i32(v, name)?),
                        (Scalar::I64, ScalarArg::Size(v)) => Arg::I64(as_i64(v, name)?),
                        (Scalar::Real, ScalarArg::Value(v)) => Arg::real::<X::Real>(v),
                        (Scalar::F64, ScalarArg::Value(v)) => Arg::F64(v),
                        _ => {
                            return Err(refuse(format!("`{name}` is {scalar:?}, given {given:?}")))
                        }
                    }
                }
            };
            args.push(arg);
        }
        if !buffers.is_empty() {
            let names: Vec<&str> = buffers.iter().map(|(name, _)| *name).collect();
            return Err(refuse(format!("no parameter takes the buffers {names:?}")));
        }
        Self::new::<X>(kernel, shape, args)
    }

    /// `kernel`'s instantiation for input type `X` (for kernels instantiated per float,
    /// `X` is that float) at `shape`, its `args` checked against the kernel's declared
    /// parameters: a plan that passes another type or number of arguments (a bug in
    /// diffbio) gets an error instead of a launch that would read the wrong bytes.
    pub(crate) fn new<X: KernelInput>(
        kernel: &Kernel,
        shape: LaunchShape,
        args: Vec<Arg<B>>,
    ) -> candle_core::Result<Self> {
        let name = kernel_name::<X>(kernel.name);
        let is_real = X::DTYPE == <X::Real as WithDType>::DTYPE;
        let instantiated = match kernel.instances {
            Instances::EachInput => true,
            Instances::EachReal => is_real,
            Instances::F64 => X::DTYPE == DType::F64,
        };
        let refuse = |reason: String| plan_bug(&name, &reason);
        if !instantiated {
            return Err(refuse("no such instantiation".into()));
        }
        if args.len() != kernel.params.len() {
            return Err(refuse(format!(
                "{} arguments for {} parameters",
                args.len(),
                kernel.params.len()
            )));
        }
        for (arg, &(param_name, param)) in args.iter().zip(kernel.params) {
            if !arg.fits::<X>(param) {
                return Err(refuse(format!(
                    "parameter `{param_name}` is {param:?}, the plan passes {}",
                    arg.describe()
                )));
            }
        }
        Ok(Self {
            module: kernel.module,
            kernel: name,
            shape,
            args,
        })
    }
}

/// A launch plan that does not fit its kernel's declaration: a bug in diffbio, reported
/// instead of launched.
fn plan_bug(kernel: &str, reason: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "diffbio: kernel {kernel}: {reason} (a bug in diffbio's launch plans)"
    ))
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
pub(crate) trait KernelDevice: 'static {
    /// An op input or output as the backend stores it.
    type Storage;
    /// An owned buffer of `T` (kept between an op's forward and backward).
    type Buffer<T: Element>: Send + Sync + 'static;
    /// A borrowed op input of `T`.
    type Input<'a, T: Element>;
    /// A buffer argument borrowed for `'a`.
    type Arg<'a>;

    /// A buffer every element of which a kernel is about to write. It may start as NaN
    /// (poisoned), so an element a kernel forgets to write is caught.
    fn alloc_output<T: Element>(&self, len: usize) -> candle_core::Result<Self::Buffer<T>>;
    /// A zeroed buffer.
    fn alloc_zeros<T: Element>(&self, len: usize) -> candle_core::Result<Self::Buffer<T>>;
    /// A copy of `buffer` on the host (a read noted in [`crate::host_reads`]).
    fn to_host<T: Element>(&self, buffer: &Self::Buffer<T>) -> candle_core::Result<Vec<T>>;
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

/// A fused op whose forward runs through the kernels on any [`KernelDevice`], from its
/// `N` inputs: its `cuda_fwd` (through `cuda_kernels::on_gpu`) and its `cpu_fwd` inside
/// `with_emulated_kernels` (through `emulator::when_active`) both call it.
pub(crate) trait KernelOp<const N: usize> {
    /// The op's output and its shape, computed by the kernels on `dev`.
    fn on_kernels<D: KernelDevice>(
        &self,
        dev: &D,
        inputs: [(&D::Storage, &Layout); N],
    ) -> candle_core::Result<(D::Storage, candle_core::Shape)>;
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
        other => Err(candle_core::Error::UnsupportedDTypeForOp(other, K::OP)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn row_launches_cover_every_row_with_whole_warps() {
        for (rows, warps) in [(1, 8), (31, 3), (257, 8), (1024, 8)] {
            let s = LaunchShape::rows(rows, warps, 100);
            assert!(s.grid as usize * warps >= rows && (s.grid as usize - 1) * warps < rows);
            assert_eq!(s.block as usize, 32 * warps);
            assert_eq!(s.shared_bytes as usize, 100 * warps);
        }
        let t = LaunchShape::threads(257, 256);
        assert_eq!((t.grid, t.block), (2, 256));
    }

    #[test]
    fn shared_memory_per_row_is_bounded() {
        assert_eq!(warps_per_block(100, "x").unwrap(), 8);
        assert_eq!(warps_per_block(SHARED_MEMORY_LIMIT / 3, "x").unwrap(), 3);
        assert!(warps_per_block(SHARED_MEMORY_LIMIT + 1, "x").is_err());
        assert!(as_i32(1 << 31, "n").is_err());
    }

    /// A plan that passes another type than the kernel declares is refused, whichever the
    /// device: here an i64 where `knn_entropy_mean` takes an `int`, a read-only buffer where
    /// it writes, f64 data where it reads f32, and an instantiation it does not have.
    #[test]
    fn arguments_of_another_type_are_refused_before_a_launch() {
        use crate::batch_mixing::kernels::{LOSS, MEAN};
        let shape = LaunchShape::single_block();
        let args = |n: Arg<()>, mean: Arg<()>| vec![Arg::read::<f32>(()), n, Arg::I32(3), mean];
        let good = Launch::new::<f32>(&MEAN, shape, args(Arg::I32(7), Arg::write::<f64>(())));
        assert_eq!(good.unwrap().kernel, "knn_entropy_mean_f32");
        for (n, mean, says) in [
            (
                Arg::I64(7),
                Arg::write::<f64>(()),
                "parameter `n` is Value(I32), the plan passes an i64",
            ),
            (
                Arg::I32(7),
                Arg::read::<f64>(()),
                "parameter `mean` is Write(F64), the plan passes a read-only F64 buffer",
            ),
            (
                Arg::I32(7),
                Arg::write::<f32>(()),
                "parameter `mean` is Write(F64), the plan passes a written F32 buffer",
            ),
        ] {
            let err = Launch::new::<f32>(&MEAN, shape, args(n, mean))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
        }
        let err = Launch::new::<f16>(&MEAN, shape, args(Arg::I32(7), Arg::write::<f64>(())))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("parameter `x` is Read(Input), the plan passes a read-only F32 buffer"),
            "{err}"
        );
        let short = vec![Arg::<()>::read::<f64>(())];
        let err = Launch::new::<f64>(&LOSS, shape, short)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 arguments for 5 parameters"), "{err}");
        let err = Launch::<()>::new::<f32>(&LOSS, shape, vec![])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("knn_entropy_loss_f32: no such instantiation"),
            "{err}"
        );
    }

    /// `build` puts named buffers and scalars in the declared order, converted to the
    /// declared types, and refuses a missing scalar or buffer, a scalar of another kind and
    /// a buffer no parameter takes.
    #[test]
    fn build_orders_the_arguments_as_the_kernel_declares_them() {
        use crate::batch_mixing::kernels::LOSS;
        use ScalarArg::{Size, Value};
        let shape = LaunchShape::single_block();
        let buffers = || -> Buffers<()> {
            vec![
                ("out", Arg::write::<f64>(())),
                ("entropy", Arg::read::<f64>(())),
            ]
        };
        let scalars = [
            ("n", Size(40)),
            ("unused", Value(1.5)),
            ("n_batches", Size(3)),
            ("n_rows", Size(10)),
        ];
        let launch = Launch::build::<f64>(&LOSS, shape, buffers(), &scalars).unwrap();
        assert!(matches!(
            launch.args[..],
            [
                Arg::Buffer { write: false, .. },
                Arg::I32(10),
                Arg::I32(40),
                Arg::I32(3),
                Arg::Buffer { write: true, .. },
            ]
        ));
        let refused = |buffers: Buffers<()>, scalars: &[(&str, ScalarArg)]| {
            let result = Launch::build::<f64>(&LOSS, shape, buffers, scalars);
            result.unwrap_err().to_string()
        };
        let err = refused(buffers(), &scalars[..3]);
        assert!(err.contains("no value for `n_rows`"), "{err}");
        let wrong = [
            ("n_rows", Value(10.0)),
            ("n", Size(40)),
            ("n_batches", Size(3)),
        ];
        let err = refused(buffers(), &wrong);
        assert!(err.contains("`n_rows` is I32, given Value(10.0)"), "{err}");
        let err = refused(vec![("entropy", Arg::read::<f64>(()))], &scalars);
        assert!(err.contains("no buffer for `out`"), "{err}");
        let mut three = buffers();
        three.push(("stats", Arg::read::<f64>(())));
        let err = refused(three, &scalars);
        assert!(
            err.contains("no parameter takes the buffers [\"stats\"]"),
            "{err}"
        );
        let err = refused(
            buffers(),
            &[
                ("n_rows", Size(1 << 31)),
                ("n", Size(4)),
                ("n_batches", Size(3)),
            ],
        );
        assert!(
            err.contains("`n_rows` (a kernel's 32-bit argument) is 2147483648"),
            "{err}"
        );
    }

    #[test]
    fn real_scalars_take_the_kernel_float_type() {
        assert!(matches!(Arg::<()>::real::<f32>(0.5), Arg::F32(v) if v == 0.5));
        assert!(matches!(Arg::<()>::real::<f64>(0.5), Arg::F64(v) if v == 0.5));
        assert_eq!(kernel_name::<f32>("k"), "k_f32");
        assert_eq!(kernel_name::<half::bf16>("k"), "k_bf16");
    }
}
