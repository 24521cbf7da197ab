//! The CUDA kernels on the CPU: `kernels/*.cu` compiled as host C++ against the emulation
//! layer of `kernels/emu` (each CUDA thread a fiber of the launching thread, block
//! barriers, warp shuffles, shared memory), launched through the same plans and sequences
//! as on a GPU.
//!
//! For testing the kernels where no GPU is: inside [`with_emulated_kernels`], the fused ops
//! ([`crate::BatchMixingLoss`], [`crate::DifferentiableAuroc`]) on CPU tensors run their
//! CUDA kernels in the emulator instead of their CPU kernels, forward and backward. The
//! emulator is slow (a fiber switch at every barrier and shuffle of thousands of CUDA
//! threads per launch): keep the sizes small. Every
//! output buffer starts as NaN, so an element a kernel forgets to write shows.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use diffbio_core::{emulator::with_emulated_kernels, DifferentiableAuroc};
//!
//! # fn main() -> diffbio_core::Result<()> {
//! let scores = Tensor::new(&[0.9f32, 0.2, 0.6, 0.4], &Device::Cpu)?;
//! let labels = Tensor::new(&[1u8, 0, 1, 0], &Device::Cpu)?;
//! let auroc = DifferentiableAuroc::new(0.1)?;
//! let on_cpu = auroc.forward(&scores, &labels)?.to_scalar::<f32>()?;
//! let emulated = with_emulated_kernels(|| auroc.forward(&scores, &labels))?.to_scalar::<f32>()?;
//! assert!((on_cpu - emulated).abs() < 1e-6);
//! # Ok(())
//! # }
//! ```

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::marker::PhantomData;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Shape};

use crate::launch::{Arg, Element, KernelDevice, KernelOp, Launch};
use crate::storage::contiguous_slice;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the fused ops' CPU kernels replaced by their CUDA kernels in the emulator,
/// on this thread (see the module docs).
pub fn with_emulated_kernels<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.replace(true)));
    f()
}

/// Whether the fused ops on this thread run in the emulator.
pub(crate) fn active() -> bool {
    ACTIVE.with(Cell::get)
}

/// `op` on the emulator when [`with_emulated_kernels`] is active on this thread; `None`
/// otherwise (the op runs its CPU kernels).
pub(crate) fn when_active<const N: usize>(
    op: &impl KernelOp<N>,
    inputs: [(&CpuStorage, &Layout); N],
) -> Option<candle_core::Result<(CpuStorage, Shape)>> {
    active().then(|| op.on_kernels(&Emulator, inputs))
}

extern "C" {
    /// `kernels/emu/launch.cpp`: runs kernel `name` on `grid` blocks of `block` threads;
    /// `params[i]` points at its i-th argument, `types[i]` is its [`Arg::type_code`] (null:
    /// unchecked). 0 on success, 1 for an unknown kernel, 2 for a wrong argument count,
    /// 3 + i when argument i is not of the kernel's parameter type.
    fn diffbio_emu_launch(
        name: *const c_char,
        grid: u32,
        block: u32,
        shared_bytes: usize,
        params: *mut *mut c_void,
        types: *const c_int,
        n_params: usize,
    ) -> c_int;
}

/// The emulator as a [`KernelDevice`]: buffers are host vectors.
pub(crate) struct Emulator;

/// A host buffer's address, borrowed for `'a`.
pub(crate) struct HostPtr<'a>(*mut c_void, PhantomData<&'a mut ()>);

impl KernelDevice for Emulator {
    type Storage = CpuStorage;
    type Buffer<T: Element> = Vec<T>;
    type Input<'a, T: Element> = &'a [T];
    type Arg<'a> = HostPtr<'a>;

    /// Always poisoned with NaN.
    fn alloc_output<T: Element>(&self, len: usize) -> candle_core::Result<Vec<T>> {
        Ok(vec![T::from_f64(f64::NAN); len])
    }

    fn alloc_zeros<T: Element>(&self, len: usize) -> candle_core::Result<Vec<T>> {
        Ok(vec![T::from_f64(0.0); len])
    }

    fn to_host<T: Element>(&self, buffer: &Vec<T>) -> candle_core::Result<Vec<T>> {
        crate::host_reads::note();
        Ok(buffer.clone())
    }

    fn upload<T: Element>(&self, data: &[T]) -> candle_core::Result<Vec<T>> {
        Ok(data.to_vec())
    }

    fn storage<T: Element>(&self, buffer: Vec<T>) -> CpuStorage {
        T::to_cpu_storage_owned(buffer)
    }

    fn dtype(storage: &CpuStorage) -> DType {
        storage.dtype()
    }

    fn input<'a, T: Element>(
        storage: &'a CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<&'a [T]> {
        contiguous_slice(storage.as_slice::<T>()?, layout)
    }

    fn input_len<T: Element>(input: &&[T]) -> usize {
        input.len()
    }

    fn read_input_from<'a, T: Element>(input: &'a &[T], start: usize) -> Arg<HostPtr<'a>> {
        Arg::read::<T>(HostPtr(input[start..].as_ptr() as *mut c_void, PhantomData))
    }

    fn read_from<'a, T: Element>(buffer: &'a Vec<T>, start: usize) -> Arg<HostPtr<'a>> {
        Arg::read::<T>(HostPtr(
            buffer[start..].as_ptr() as *mut c_void,
            PhantomData,
        ))
    }

    fn write_from<'a, T: Element>(buffer: &'a mut Vec<T>, start: usize) -> Arg<HostPtr<'a>> {
        Arg::write::<T>(HostPtr(
            buffer[start..].as_mut_ptr() as *mut c_void,
            PhantomData,
        ))
    }

    unsafe fn launch(&self, mut launch: Launch<HostPtr<'_>>) -> candle_core::Result<()> {
        let mut params: Vec<*mut c_void> = launch
            .args
            .iter_mut()
            .map(|arg| match arg {
                Arg::I32(v) => v as *mut i32 as *mut c_void,
                Arg::I64(v) => v as *mut i64 as *mut c_void,
                Arg::F32(v) => v as *mut f32 as *mut c_void,
                Arg::F64(v) => v as *mut f64 as *mut c_void,
                Arg::Buffer {
                    buffer: HostPtr(p, _),
                    ..
                } => p as *mut *mut c_void as *mut c_void,
            })
            .collect();
        let types: Vec<c_int> = launch.args.iter().map(Arg::type_code).collect();
        let name = CString::new(launch.kernel.as_str()).expect("kernel names have no NUL");
        let s = launch.shape;
        // SAFETY: `params` points at the arguments, which live until the call returns; the
        // caller's contract says they match the kernel. The emulator runs the launch to its
        // end (it aborts the process on a deadlock or a divergent shuffle).
        let rc = unsafe {
            diffbio_emu_launch(
                name.as_ptr(),
                s.grid,
                s.block,
                s.shared_bytes as usize,
                params.as_mut_ptr(),
                types.as_ptr(),
                params.len(),
            )
        };
        match rc {
            0 => Ok(()),
            1 => candle_core::bail!("cuda-emu: no kernel named {}", launch.kernel),
            2 => candle_core::bail!(
                "cuda-emu: {} takes another number of arguments than {}",
                launch.kernel,
                params.len()
            ),
            rc => candle_core::bail!(
                "cuda-emu: argument {} of {} is not of the kernel's parameter type (type code {})",
                rc - 3,
                launch.kernel,
                types[(rc - 3) as usize]
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_mixing::kernels::MEAN;
    use crate::launch::LaunchShape;

    /// `knn_entropy_mean_f32` on x = [[1, 2], [3, 4], [5, 6]] with `n` passed as `n_arg`,
    /// built by hand as a stale header or a hand-edited kernel would leave a plan (past
    /// `Launch::new`'s check), and the means it wrote.
    fn mean_with(n_arg: Arg<HostPtr<'_>>) -> (candle_core::Result<()>, Vec<f64>) {
        let x: &[f32] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut mean = vec![f64::NAN; 2];
        let args = vec![
            Emulator::read_input_from(&x, 0),
            n_arg,
            Arg::I32(2),
            Emulator::write_from(&mut mean, 0),
        ];
        let launch = Launch {
            module: MEAN.module,
            kernel: "knn_entropy_mean_f32".into(),
            shape: LaunchShape {
                grid: 2,
                block: 256,
                shared_bytes: 0,
            },
            args,
        };
        // SAFETY: x holds n·d = 6 elements, mean d = 2; an argument of another type than
        // the kernel's is refused before the kernel runs.
        let result = unsafe { Emulator.launch(launch) };
        (result, mean)
    }

    /// The emulator checks each argument against the C++ kernel's own parameter type: an
    /// i64 where the kernel takes an `int` is refused, naming the argument; the right type
    /// runs.
    #[test]
    fn an_argument_of_another_type_than_the_kernels_is_refused() {
        let (result, mean) = mean_with(Arg::I32(3));
        result.unwrap();
        assert_eq!(mean, [3.0, 4.0]);
        let (result, mean) = mean_with(Arg::I64(3));
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains(
                "argument 1 of knn_entropy_mean_f32 is not of the kernel's parameter type"
            ),
            "{err}"
        );
        assert!(mean.iter().all(|m| m.is_nan()), "nothing ran");
    }
}
