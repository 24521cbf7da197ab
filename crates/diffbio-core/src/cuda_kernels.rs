//! The project's CUDA kernels (`kernels/*.cu`, compiled to PTX by the build script) on a
//! Candle CUDA device: [`KernelDevice`] for [`CudaDevice`], launching through cudarc on
//! Candle's own stream.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::sys::CUfunction_attribute;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, CudaViewMut, LaunchArgs, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaDevice, CudaStorage, DType, Layout};

use crate::launch::{Arg, Element, KernelDevice, KernelOp, Launch, Module, SHARED_MEMORY_LIMIT};

/// Whether CUDA kernel outputs start as NaN ([`poison_kernel_outputs`]).
static POISON_OUTPUTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every output buffer of the fused ops' CUDA kernels start as NaN instead of zero
/// (one upload per buffer), so that an element a kernel forgets to write fails a
/// comparison; the parity tests turn it on. The emulator always does.
pub fn poison_kernel_outputs(on: bool) {
    POISON_OUTPUTS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `KNN_ENTROPY` and `PAIRWISE_SIGMOID_AUROC`: the PTX of each kernel file.
mod ptx {
    include!(concat!(env!("OUT_DIR"), "/ptx.rs"));
}

/// The CUDA module name and PTX of a kernel file.
fn module(m: Module) -> (&'static str, &'static str) {
    match m {
        Module::KnnEntropy => ("diffbio_knn_entropy", ptx::KNN_ENTROPY),
        Module::PairwiseSigmoidAuroc => (
            "diffbio_pairwise_sigmoid_auroc",
            ptx::PAIRWISE_SIGMOID_AUROC,
        ),
    }
}

/// A buffer argument: cudarc's own argument pushing, which records the buffer's use on the
/// stream.
pub(crate) enum CudaArg<'a> {
    Read(Box<dyn PushRead + 'a>),
    Write(Box<dyn PushWrite + 'a>),
}

/// A read-only buffer that pushes itself as a kernel argument.
pub(crate) trait PushRead {
    fn push<'b>(&'b self, args: &mut LaunchArgs<'b>);
}

/// A written buffer that pushes itself as a kernel argument.
pub(crate) trait PushWrite {
    fn push<'b>(&'b mut self, args: &mut LaunchArgs<'b>);
}

impl<T> PushRead for CudaView<'_, T> {
    fn push<'b>(&'b self, args: &mut LaunchArgs<'b>) {
        args.arg(self);
    }
}

impl<T> PushWrite for CudaViewMut<'_, T> {
    fn push<'b>(&'b mut self, args: &mut LaunchArgs<'b>) {
        args.arg(self);
    }
}

impl KernelDevice for CudaDevice {
    type Storage = CudaStorage;
    type Buffer<T: Element> = CudaSlice<T>;
    type Input<'a, T: Element> = CudaView<'a, T>;
    type Arg<'a> = CudaArg<'a>;

    /// Zeroed, or NaN after [`poison_kernel_outputs`]`(true)`.
    fn alloc_output<T: Element>(&self, len: usize) -> candle_core::Result<CudaSlice<T>> {
        let mut out = self.alloc_zeros::<T>(len)?;
        if POISON_OUTPUTS.load(std::sync::atomic::Ordering::Relaxed) && len > 0 {
            self.memcpy_htod(&vec![T::from_f64(f64::NAN); len], &mut out)?;
        }
        Ok(out)
    }

    fn alloc_zeros<T: Element>(&self, len: usize) -> candle_core::Result<CudaSlice<T>> {
        CudaDevice::alloc_zeros::<T>(self, len)
    }

    fn to_host<T: Element>(&self, buffer: &CudaSlice<T>) -> candle_core::Result<Vec<T>> {
        crate::host_reads::note();
        self.clone_dtoh(buffer)
    }

    fn upload<T: Element>(&self, data: &[T]) -> candle_core::Result<CudaSlice<T>> {
        self.clone_htod(data)
    }

    fn storage<T: Element>(&self, buffer: CudaSlice<T>) -> CudaStorage {
        CudaStorage::wrap_cuda_slice(buffer, self.clone())
    }

    fn dtype(storage: &CudaStorage) -> DType {
        storage.dtype()
    }

    fn input<'a, T: Element>(
        storage: &'a CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<CudaView<'a, T>> {
        match layout.contiguous_offsets() {
            Some((start, end)) => Ok(storage.as_cuda_slice::<T>()?.slice(start..end)),
            None => candle_core::bail!("diffbio: CUDA op input is not contiguous ({layout:?})"),
        }
    }

    fn input_len<T: Element>(input: &CudaView<'_, T>) -> usize {
        input.len()
    }

    fn read_input_from<'a, T: Element>(
        input: &'a CudaView<'_, T>,
        start: usize,
    ) -> Arg<CudaArg<'a>> {
        Arg::read::<T>(CudaArg::Read(Box::new(input.slice(start..))))
    }

    fn read_from<'a, T: Element>(buffer: &'a CudaSlice<T>, start: usize) -> Arg<CudaArg<'a>> {
        Arg::read::<T>(CudaArg::Read(Box::new(buffer.slice(start..))))
    }

    fn write_from<'a, T: Element>(buffer: &'a mut CudaSlice<T>, start: usize) -> Arg<CudaArg<'a>> {
        Arg::write::<T>(CudaArg::Write(Box::new(buffer.slice_mut(start..))))
    }

    unsafe fn launch(&self, launch: Launch<CudaArg<'_>>) -> candle_core::Result<()> {
        let Launch {
            module: m,
            kernel,
            shape,
            mut args,
        } = launch;
        let (name, ptx) = module(m);
        let func = self.get_or_load_custom_func(&kernel, name, ptx)?;
        if shape.shared_bytes as usize > SHARED_MEMORY_LIMIT {
            // Past the default 48 KiB a kernel must opt in (sm_80 and newer allow 99-227 KiB).
            func.set_attribute(
                CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                shape.shared_bytes as i32,
            )
            .w()?;
        }
        let mut builder = func.builder();
        for arg in args.iter_mut() {
            match arg {
                Arg::I32(v) => builder.arg(&*v),
                Arg::I64(v) => builder.arg(&*v),
                Arg::F32(v) => builder.arg(&*v),
                Arg::F64(v) => builder.arg(&*v),
                Arg::Buffer {
                    buffer: CudaArg::Read(b),
                    ..
                } => {
                    b.push(&mut builder);
                    &mut builder
                }
                Arg::Buffer {
                    buffer: CudaArg::Write(b),
                    ..
                } => {
                    b.push(&mut builder);
                    &mut builder
                }
            };
        }
        let cfg = LaunchConfig {
            grid_dim: (shape.grid, 1, 1),
            block_dim: (shape.block, 1, 1),
            shared_mem_bytes: shape.shared_bytes,
        };
        // SAFETY: the caller's contract (arguments and buffers match the kernel).
        unsafe { builder.launch(cfg) }.w()?;
        Ok(())
    }
}

/// `op` through its kernels on the GPU of its first input (every fused op's `cuda_fwd`).
pub(crate) fn on_gpu<const N: usize>(
    op: &impl KernelOp<N>,
    inputs: [(&CudaStorage, &Layout); N],
) -> candle_core::Result<(CudaStorage, candle_core::Shape)> {
    let (first, _) = inputs[0];
    op.on_kernels(first.device(), inputs)
}
