//! `BatchMixingLoss`: entropy of batch labels among soft k-nearest neighbours (SPEC.md §1),
//! as one fused Candle op with an analytic backward.

mod contract;
mod cpu;
#[cfg(any(feature = "cuda", feature = "cuda-emu"))]
mod launch;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use diffbio_pairwise::Real;

use crate::error::{Error, Result};
use crate::storage::{contiguous_slice, on_real, RealKernel};
use crate::validate;
use contract::{Params, RowStats};

/// Parameters of [`BatchMixingLoss`]; `Default` gives SPEC.md's defaults (15, 3, 1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchMixingConfig {
    /// `k`: the soft neighbourhood is the `k` nearest cells (1 ≤ k ≤ n − 1).
    pub n_neighbors: usize,
    /// `B`: number of batches; labels lie in `0..B` (B ≥ 2).
    pub n_batches: usize,
    /// `T`: softmax and soft-threshold temperature (> 0).
    pub temperature: f64,
}

impl Default for BatchMixingConfig {
    fn default() -> Self {
        Self {
            n_neighbors: 15,
            n_batches: 3,
            temperature: 1.0,
        }
    }
}

/// Negative normalised entropy of batch labels among each cell's soft k nearest neighbours.
///
/// With `D_ij = |x_i − x_j|²` (self excluded), `κ_i` the exact k-th smallest `D_i·`,
/// `a_ij = softmax_j(−D_ij/T)`, `m_ij = σ((κ_i − D_ij − 10⁻¹⁰)/T)`,
/// `w_ij = a_ij m_ij / (Σ_l a_il m_il + 10⁻⁸)` and `p_ic = Σ_{j: b_j = c} w_ij`:
///
/// ```text
/// H_i  = −Σ_c p_ic log(p_ic + 1e-8)
/// loss = −mean_i H_i / (log B + 1e-8)        ∈ [−1, 0], lower = better mixed
/// ```
///
/// Computed by a fused, streaming op: no n×n buffer in the forward or the backward pass
/// (memory O(n·(k + B)) beyond the inputs); the gradient is analytic and flows through
/// `κ_i` to the k-th neighbour. Distances and exponentials are computed in the input's
/// precision (f16/bf16 are widened to f32), row sums totalled in f64.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use diffbio_core::{BatchMixingConfig, BatchMixingLoss};
/// # fn main() -> diffbio_core::Result<()> {
/// let dev = Device::Cpu;
/// let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 8), &dev)?)?;
/// let batches = Tensor::from_vec((0..64u32).map(|i| i % 3).collect(), 64, &dev)?;
/// let loss = BatchMixingLoss::new(BatchMixingConfig { n_neighbors: 10, n_batches: 3, temperature: 1.0 })?;
/// let l = loss.forward(x.as_tensor(), &batches)?;
/// assert!(l.dims().is_empty());
/// let v = l.to_scalar::<f32>()?;
/// assert!((-1.0..=0.0).contains(&v));
/// let grads = l.backward()?;
/// assert_eq!(grads.get(&x).unwrap().dims(), &[64, 8]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BatchMixingLoss {
    config: BatchMixingConfig,
}

impl BatchMixingLoss {
    /// Validates the configuration: `n_neighbors ≥ 1`, `n_batches ≥ 2`, `temperature` finite and > 0.
    pub fn new(config: BatchMixingConfig) -> Result<Self> {
        if config.n_neighbors == 0 {
            return Err(Error::InvalidParameter {
                name: "n_neighbors",
                value: 0.0,
                reason: "must be >= 1",
            });
        }
        if config.n_batches < 2 {
            return Err(Error::InvalidParameter {
                name: "n_batches",
                value: config.n_batches as f64,
                reason: "must be >= 2",
            });
        }
        validate::positive("temperature", config.temperature)?;
        Ok(Self { config })
    }

    /// The validated configuration.
    pub fn config(&self) -> &BatchMixingConfig {
        &self.config
    }

    /// `embeddings`: float `[n, d]`; `batch_labels`: U8, U32 or I64 `[n]` in `0..n_batches`.
    /// Returns the scalar loss (shape `[]`) in the dtype of `embeddings`.
    pub fn forward(&self, embeddings: &Tensor, batch_labels: &Tensor) -> Result<Tensor> {
        let (n, _) = validate::float_matrix(embeddings, "embeddings")?;
        let n_labels = validate::vector_len(batch_labels, "batch_labels")?;
        validate::shape_is(batch_labels, "batch_labels", &[n])
            .map_err(|_| shape_error(n_labels, n))?;
        validate::same_device(batch_labels, "batch_labels", embeddings, "embeddings")?;
        if n < 2 {
            return Err(Error::Empty {
                input: "embeddings",
                reason: "batch mixing needs at least 2 cells".into(),
            });
        }
        let k = self.config.n_neighbors;
        if k > n - 1 {
            return Err(Error::InvalidParameter {
                name: "n_neighbors",
                value: k as f64,
                reason: "must be <= n - 1 (the number of other cells)",
            });
        }
        let dtype = embeddings.dtype();
        let compute = validate::fused_dtype(dtype);
        validate::class_labels(batch_labels, "batch_labels", self.config.n_batches)?;
        validate::finite(embeddings, "embeddings")?;

        let x = embeddings.to_dtype(compute)?.contiguous()?;
        let labels = batch_labels.to_dtype(DType::U32)?.contiguous()?;
        let out = x.apply_op2(&labels, KnnEntropy::from(&self.config))?;
        Ok(out.narrow(0, 0, 1)?.reshape(())?.to_dtype(dtype)?)
    }
}

fn shape_error(got: usize, n: usize) -> Error {
    Error::Shape {
        input: "batch_labels",
        expected: format!("[{n}] (one label per row of embeddings)"),
        got: vec![got],
    }
}

/// The fused forward op. Output (f64 whatever the input dtype): `[loss, per-row
/// statistics...]` (see `contract`), so that `bwd` finds what it needs without an n×n
/// buffer; `forward` narrows the scalar out.
#[derive(Debug, Clone, Copy)]
struct KnnEntropy {
    params: Params,
}

impl From<&BatchMixingConfig> for KnnEntropy {
    fn from(c: &BatchMixingConfig) -> Self {
        Self {
            params: Params {
                k: c.n_neighbors,
                n_batches: c.n_batches,
                temperature: c.temperature,
            },
        }
    }
}

impl KnnEntropy {
    /// `[1 + n·width]`: the loss, then the statistics of each row.
    fn output_shape(&self, n: usize) -> Shape {
        Shape::from(1 + n * RowStats::width(self.params.n_batches))
    }

    /// The forward through the kernels on `dev` (a GPU, or the emulator).
    #[cfg(any(feature = "cuda", feature = "cuda-emu"))]
    fn on_kernels<D: crate::launch::KernelDevice>(
        &self,
        dev: &D,
        (x, x_layout): (&D::Storage, &Layout),
        (labels, labels_layout): (&D::Storage, &Layout),
    ) -> candle_core::Result<(D::Storage, Shape)> {
        let dims = x_layout.shape().dims2()?;
        let forward = launch::Forward {
            dev,
            labels: D::input::<u32>(labels, labels_layout)?,
            dims,
            params: &self.params,
        };
        let out = crate::launch::on_real_device(forward, x, x_layout)?;
        Ok((out, self.output_shape(dims.0)))
    }
}

/// The forward CPU kernel on `x` (`[n, d]`) and its labels.
struct CpuForward<'a> {
    params: &'a Params,
    dims: (usize, usize),
    labels: &'a [u32],
}

impl RealKernel for CpuForward<'_> {
    const OP: &'static str = "knn-entropy";
    type Output = Vec<f64>;

    fn run<T: Real + WithDType>(self, x: &[T]) -> candle_core::Result<Vec<f64>> {
        let (n, d) = self.dims;
        Ok(cpu::forward(x, n, d, self.labels, self.params))
    }
}

impl CustomOp2 for KnnEntropy {
    fn name(&self) -> &'static str {
        "knn-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        #[cfg(feature = "cuda-emu")]
        if crate::emulator::active() {
            return self.on_kernels(&crate::emulator::Emulator, (s1, l1), (s2, l2));
        }
        let dims = l1.shape().dims2()?;
        let forward = CpuForward {
            params: &self.params,
            dims,
            labels: contiguous_slice(s2.as_slice::<u32>()?, l2)?,
        };
        let out = on_real(forward, s1, l1)?;
        Ok((CpuStorage::F64(out), self.output_shape(dims.0)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        self.on_kernels(s1.device(), (s1, l1), (s2, l2))
    }

    fn bwd(
        &self,
        x: &Tensor,
        labels: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_x = x.apply_op3_no_bwd(
            labels,
            &res.contiguous()?,
            &KnnEntropyGrad {
                params: self.params,
            },
        )?;
        let upstream = grad_res.narrow(0, 0, 1)?.to_dtype(x.dtype())?;
        Ok((Some(grad_x.broadcast_mul(&upstream)?), None))
    }
}

/// The backward op: `∂loss/∂x` from `(x, labels, forward output)`, row-owned, no atomics.
#[derive(Debug, Clone, Copy)]
struct KnnEntropyGrad {
    params: Params,
}

impl KnnEntropyGrad {
    /// The backward through the kernels on `dev` (a GPU, or the emulator).
    #[cfg(any(feature = "cuda", feature = "cuda-emu"))]
    fn on_kernels<D: crate::launch::KernelDevice>(
        &self,
        dev: &D,
        (x, x_layout): (&D::Storage, &Layout),
        (labels, labels_layout): (&D::Storage, &Layout),
        (forward_out, out_layout): (&D::Storage, &Layout),
    ) -> candle_core::Result<(D::Storage, Shape)> {
        let backward = launch::Backward {
            dev,
            labels: D::input::<u32>(labels, labels_layout)?,
            forward_out: D::input::<f64>(forward_out, out_layout)?,
            dims: x_layout.shape().dims2()?,
            params: &self.params,
        };
        let grad = crate::launch::on_real_device(backward, x, x_layout)?;
        Ok((grad, x_layout.shape().clone()))
    }
}

/// The backward CPU kernel on `x` (`[n, d]`), its labels and the forward output.
struct CpuBackward<'a> {
    params: &'a Params,
    dims: (usize, usize),
    labels: &'a [u32],
    forward_out: &'a [f64],
}

impl RealKernel for CpuBackward<'_> {
    const OP: &'static str = "knn-entropy-grad";
    type Output = CpuStorage;

    fn run<T: Real + WithDType>(self, x: &[T]) -> candle_core::Result<CpuStorage> {
        let (n, d) = self.dims;
        let grad = cpu::backward(x, n, d, self.labels, self.forward_out, self.params);
        Ok(T::to_cpu_storage_owned(grad))
    }
}

impl CustomOp3 for KnnEntropyGrad {
    fn name(&self) -> &'static str {
        "knn-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        #[cfg(feature = "cuda-emu")]
        if crate::emulator::active() {
            return self.on_kernels(&crate::emulator::Emulator, (s1, l1), (s2, l2), (s3, l3));
        }
        let backward = CpuBackward {
            params: &self.params,
            dims: l1.shape().dims2()?,
            labels: contiguous_slice(s2.as_slice::<u32>()?, l2)?,
            forward_out: contiguous_slice(s3.as_slice::<f64>()?, l3)?,
        };
        Ok((on_real(backward, s1, l1)?, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        self.on_kernels(s1.device(), (s1, l1), (s2, l2), (s3, l3))
    }
}
