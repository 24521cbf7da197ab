//! `BatchMixingLoss`: entropy of batch labels among soft k-nearest neighbours (SPEC.md §1),
//! as one fused Candle op with an analytic backward.

mod contract;
mod cpu;
// The kernels' interface: what launch.rs launches, and what the header test renders.
#[cfg(any(test, feature = "cuda", feature = "cuda-emu"))]
#[cfg_attr(not(any(feature = "cuda", feature = "cuda-emu")), allow(dead_code))]
pub(crate) mod kernels;
#[cfg(any(feature = "cuda", feature = "cuda-emu"))]
mod launch;
mod sharded;

use std::ops::Range;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use diffbio_pairwise::Real;

use crate::error::{Error, Result};
use crate::storage::{contiguous_slice, in_dtype, on_real, RealKernel};
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
/// precision (f16/bf16 in f32: the CUDA kernels read them as they are, with no widened
/// copy of the embeddings; the gradient comes back in their dtype), row sums totalled in
/// f64.
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
        let (n, host_labels) = self.check_inputs(embeddings, batch_labels)?;
        let dtype = embeddings.dtype();
        let x = embeddings.contiguous()?;
        let labels = batch_labels.to_dtype(DType::U32)?.contiguous()?;
        let op = BatchMixingOp {
            params: self.params(),
            rows: 0..n,
            shared: KernelShared::new(host_labels),
        };
        let out = x.apply_op2(&labels, op)?;
        Ok(out.narrow(0, 0, 1)?.reshape(())?.to_dtype(dtype)?)
    }

    /// The loss of the whole minibatch sharded over the ranks of `comm`, on every rank;
    /// its backward gives this rank's rows of the single-device gradient (the contract is
    /// in [`crate::dist`]). `embeddings`: this rank's cells, float `[n_r, d]` (`n_r` may be
    /// 0); `batch_labels`: their labels `[n_r]`. `k ≤ n − 1` and the labels are checked
    /// against the whole batch, with the same result on every rank.
    ///
    /// ```
    /// use candle_core::{Device, Tensor, Var};
    /// use diffbio_core::dist::{Communicator, ThreadComm};
    /// use diffbio_core::{BatchMixingConfig, BatchMixingLoss};
    /// # fn main() -> diffbio_core::Result<()> {
    /// let dev = Device::Cpu;
    /// let x = Tensor::randn(0f64, 1.0, (40, 4), &dev)?;
    /// let labels = Tensor::from_vec((0..40u32).map(|i| i % 2).collect(), 40, &dev)?;
    /// let loss = BatchMixingLoss::new(BatchMixingConfig { n_neighbors: 5, n_batches: 2, temperature: 1.0 })?;
    /// let whole = loss.forward(&x, &labels)?.to_scalar::<f64>()?;
    /// let shards = [(0, 25), (25, 15)]; // rank r holds rows start..start + len
    /// let values = std::thread::scope(|s| {
    ///     let handles: Vec<_> = ThreadComm::group(2)
    ///         .into_iter()
    ///         .map(|comm| {
    ///             let (x, labels) = (&x, &labels);
    ///             s.spawn(move || -> diffbio_core::Result<f64> {
    ///                 let (start, len) = shards[comm.rank()];
    ///                 let mine = Var::from_tensor(&x.narrow(0, start, len)?)?;
    ///                 let l = loss.forward_sharded(&comm, mine.as_tensor(), &labels.narrow(0, start, len)?)?;
    ///                 let grad = l.backward()?.get(&mine).unwrap().clone(); // rows start.. of ∂L/∂x
    ///                 assert_eq!(grad.dims(), &[len, 4]);
    ///                 Ok(l.to_scalar::<f64>()?)
    ///             })
    ///         })
    ///         .collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).collect::<diffbio_core::Result<Vec<_>>>()
    /// })?;
    /// assert!(values.iter().all(|v| (v - whole).abs() < 1e-12));
    /// # Ok(()) }
    /// ```
    pub fn forward_sharded(
        &self,
        comm: &dyn crate::dist::Communicator,
        embeddings: &Tensor,
        batch_labels: &Tensor,
    ) -> Result<Tensor> {
        sharded::forward(self, comm, embeddings, batch_labels)
    }

    /// The checks that need the whole batch: `n ≥ 2`, `k ≤ n − 1`, labels in `0..B`,
    /// finite embeddings.
    /// [`Self::forward`] written with dense Candle tensor ops, literally as its formula reads:
    /// the `[n, n]` squared distances `Σ_c (x_ic − x_jc)²` (from an `[n, n, d]` difference), the
    /// cell itself excluded by adding 10¹⁰, κ_i gathered from each sorted row, softmax,
    /// sigmoid gate, class sums by a one-hot product and the entropy, all differentiated by
    /// Candle's autograd (κ_i's gradient reaching the k-th neighbour through the gather). In
    /// the fused op's compute dtype (f32 for f16/bf16 inputs), returned in the input's.
    /// O(n²·d) memory: for checking the fused op's value and gradient on small inputs, as
    /// candle-nn's `rms_norm_slow` checks `rms_norm`. The inputs are checked as the fused op
    /// checks them.
    ///
    /// ```
    /// use candle_core::{Device, Tensor, Var};
    /// use diffbio_core::{BatchMixingConfig, BatchMixingLoss};
    /// # fn main() -> diffbio_core::Result<()> {
    /// let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (40, 3), &Device::Cpu)?)?;
    /// let labels = Tensor::from_vec((0..40u32).map(|i| i % 3).collect(), 40, &Device::Cpu)?;
    /// let config = BatchMixingConfig { n_neighbors: 7, n_batches: 3, temperature: 0.5 };
    /// let loss = BatchMixingLoss::new(config)?;
    /// let fused = loss.forward(x.as_tensor(), &labels)?;
    /// let slow = loss.forward_slow(x.as_tensor(), &labels)?;
    /// let (f, s) = (fused.to_scalar::<f64>()?, slow.to_scalar::<f64>()?);
    /// assert!((f - s).abs() < 1e-12);
    /// let (gf, gs) = (fused.backward()?, slow.backward()?);
    /// let diff = (gf.get(&x).unwrap() - gs.get(&x).unwrap())?.abs()?.max_all()?.to_scalar::<f64>()?;
    /// assert!(diff < 1e-10);
    /// # Ok(()) }
    /// ```
    pub fn forward_slow(&self, embeddings: &Tensor, batch_labels: &Tensor) -> Result<Tensor> {
        let (n, _) = self.check_inputs(embeddings, batch_labels)?;
        let BatchMixingConfig {
            n_neighbors: k,
            n_batches,
            temperature: t,
        } = self.config;
        let dev = embeddings.device();
        let x = embeddings.to_dtype(validate::compute_dtype(embeddings.dtype()))?;
        let difference = x.unsqueeze(1)?.broadcast_sub(&x.unsqueeze(0)?)?;
        let eye = Tensor::eye(n, x.dtype(), dev)?;
        let distances = (difference.sqr()?.sum(2)? + (eye * 1e10)?)?;
        let (sorted, _) = distances.sort_last_dim(true)?;
        let kappa = sorted.narrow(1, k - 1, 1)?;
        let a = candle_nn::ops::softmax(&(&distances / -t)?, 1)?;
        let gate = candle_nn::ops::sigmoid(&((kappa.broadcast_sub(&distances)? - 1e-10)? / t)?)?;
        let am = (a * gate)?;
        let w = am.broadcast_div(&(am.sum_keepdim(1)? + 1e-8)?)?;
        let labels = batch_labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let mut one_hot = vec![0f64; n * n_batches];
        labels
            .iter()
            .enumerate()
            .for_each(|(j, &b)| one_hot[j * n_batches + b as usize] = 1.0);
        let one_hot = Tensor::from_vec(one_hot, (n, n_batches), dev)?.to_dtype(x.dtype())?;
        let p = w.matmul(&one_hot)?;
        let entropy = (&p * (&p + 1e-8)?.log()?)?.sum(1)?.neg()?;
        let loss = (entropy.mean_all()? / -((n_batches as f64).ln() + 1e-8))?;
        Ok(loss.to_dtype(embeddings.dtype())?)
    }

    /// The checks of [`Self::forward`]; returns n and the labels as read to the host.
    fn check_inputs(
        &self,
        embeddings: &Tensor,
        batch_labels: &Tensor,
    ) -> Result<(usize, Vec<u32>)> {
        let (n, _) = validate::float_matrix(embeddings, "embeddings")?;
        let n_labels = validate::vector_len(batch_labels, "batch_labels")?;
        validate::shape_is(batch_labels, "batch_labels", &[n])
            .map_err(|_| shape_error(n_labels, n))?;
        validate::same_device(batch_labels, "batch_labels", embeddings, "embeddings")?;
        let host_labels = self.check_batch(embeddings, batch_labels)?;
        Ok((n, host_labels))
    }

    /// The checks of the whole batch: two reads to the host (the labels, which it returns,
    /// and the finiteness of the embeddings), and where the kernels run, the sizes they
    /// take.
    fn check_batch(&self, embeddings: &Tensor, batch_labels: &Tensor) -> Result<Vec<u32>> {
        let n = embeddings.dim(0)?;
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
        #[cfg(any(feature = "cuda", feature = "cuda-emu"))]
        if crate::launch::runs_kernels(embeddings.device()) {
            let compute = validate::compute_dtype(embeddings.dtype());
            launch::check_limits(&self.params(), embeddings.dims2()?, compute)?;
        }
        let host_labels =
            validate::class_labels(batch_labels, "batch_labels", self.config.n_batches)?;
        validate::finite(embeddings, "embeddings")?;
        Ok(host_labels)
    }

    fn params(&self) -> Params {
        Params {
            k: self.config.n_neighbors,
            n_batches: self.config.n_batches,
            temperature: self.config.temperature,
        }
    }
}

fn shape_error(got: usize, n: usize) -> Error {
    Error::Shape {
        input: "batch_labels",
        expected: format!("[{n}] (one label per row of embeddings)"),
        got: vec![got],
    }
}

/// What the kernels of one forward and its backward share: the labels as the checks read
/// them to the host (the tiled kernels order the columns by them: no second read), and the
/// tiled kernels' columns (`launch::TiledColumns`: the batch order, column means and
/// centred norms), which the forward builds and the backward reuses. Unused on the CPU.
#[derive(Debug)]
#[cfg_attr(not(any(feature = "cuda", feature = "cuda-emu")), allow(dead_code))]
struct KernelShared {
    labels: Vec<u32>,
    /// A `launch::TiledColumns` of the device and float type that built it.
    columns: Mutex<Option<Box<dyn std::any::Any + Send + Sync>>>,
}

impl KernelShared {
    fn new(labels: Vec<u32>) -> Arc<Self> {
        Arc::new(Self {
            labels,
            columns: Mutex::new(None),
        })
    }
}

/// The fused forward op on `(x [n, d], labels [n])` for the cells `rows` (all n on one
/// device; a rank's own cells when sharded) against all n. Output (f64 whatever the input
/// dtype): `[α Σ_{i ∈ rows} H_i, statistics of each row in rows...]` (see `contract`), so
/// that `bwd` finds what it needs without an n×n buffer; `forward` narrows the scalar out.
#[derive(Debug, Clone)]
struct BatchMixingOp {
    params: Params,
    rows: Range<usize>,
    #[cfg_attr(not(any(feature = "cuda", feature = "cuda-emu")), allow(dead_code))]
    shared: Arc<KernelShared>,
}

impl BatchMixingOp {
    /// The op's name (Candle's, and in errors).
    const NAME: &'static str = "batch-mixing";

    /// `[1 + rows·width]`: the loss (or its share), then the statistics of each row.
    fn output_shape(&self) -> Shape {
        Shape::from(1 + self.rows.len() * RowStats::width(self.params.n_batches))
    }
}

/// The forward through the kernels on a GPU or the emulator.
#[cfg(any(feature = "cuda", feature = "cuda-emu"))]
impl crate::launch::KernelOp<2> for BatchMixingOp {
    fn on_kernels<D: crate::launch::KernelDevice>(
        &self,
        dev: &D,
        [(x, x_layout), (labels, labels_layout)]: [(&D::Storage, &Layout); 2],
    ) -> candle_core::Result<(D::Storage, Shape)> {
        let dims = x_layout.shape().dims2()?;
        let forward = launch::Forward {
            dev,
            labels: D::input::<u32>(labels, labels_layout)?,
            shared: &self.shared,
            dims,
            rows: &self.rows,
            params: &self.params,
        };
        let out = crate::launch::on_float_device(forward, x, x_layout)?;
        Ok((out, self.output_shape()))
    }
}

/// The forward CPU kernel on `x` (`[n, d]`) and its labels.
struct CpuForward<'a> {
    op: &'a BatchMixingOp,
    dims: (usize, usize),
    labels: &'a [u32],
}

impl RealKernel for CpuForward<'_> {
    const OP: &'static str = BatchMixingOp::NAME;
    type Output = Vec<f64>;

    fn run<T: Real + WithDType>(self, x: &[T]) -> candle_core::Result<Vec<f64>> {
        let rows = self.op.rows.clone();
        Ok(cpu::forward(
            x,
            self.dims,
            self.labels,
            rows,
            &self.op.params,
        ))
    }
}

impl CustomOp2 for BatchMixingOp {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        #[cfg(feature = "cuda-emu")]
        if let Some(out) = crate::emulator::when_active(self, [(s1, l1), (s2, l2)]) {
            return out;
        }
        let dims = l1.shape().dims2()?;
        let forward = CpuForward {
            op: self,
            dims,
            labels: contiguous_slice(s2.as_slice::<u32>()?, l2)?,
        };
        let out = on_real(forward, s1, l1)?;
        Ok((CpuStorage::F64(out), self.output_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda_kernels::on_gpu(self, [(s1, l1), (s2, l2)])
    }

    fn bwd(
        &self,
        x: &Tensor,
        labels: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = BatchMixingGradOp {
            params: self.params,
            rows: self.rows.clone(),
            shared: self.shared.clone(),
        };
        let upstream = grad_res.narrow(0, 0, 1)?;
        Ok((Some(grad.scaled((x, labels, res), &upstream)?), None))
    }
}

/// The backward op: rows `rows` of `∂loss/∂x` from `(x, labels, [loss, statistics of
/// every row])`, row-owned, no atomics.
#[derive(Debug, Clone)]
struct BatchMixingGradOp {
    params: Params,
    rows: Range<usize>,
    #[cfg_attr(not(any(feature = "cuda", feature = "cuda-emu")), allow(dead_code))]
    shared: Arc<KernelShared>,
}

impl BatchMixingGradOp {
    /// The op's name (Candle's, and in errors).
    const NAME: &'static str = "batch-mixing-grad";

    /// `upstream · ∂loss/∂x` for the rows, from `(x, labels, forward output)`, on the
    /// device and in the dtype of `x`.
    fn scaled(
        &self,
        (x, labels, forward_out): (&Tensor, &Tensor, &Tensor),
        upstream: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let grad = x.apply_op3_no_bwd(labels, &forward_out.contiguous()?, self)?;
        grad.broadcast_mul(&upstream.to_dtype(x.dtype())?.reshape(1)?)
    }

    /// `[rows, d]`.
    fn output_shape(&self, x_layout: &Layout) -> candle_core::Result<Shape> {
        Ok(Shape::from((self.rows.len(), x_layout.shape().dims2()?.1)))
    }
}

/// The backward through the kernels on a GPU or the emulator.
#[cfg(any(feature = "cuda", feature = "cuda-emu"))]
impl crate::launch::KernelOp<3> for BatchMixingGradOp {
    fn on_kernels<D: crate::launch::KernelDevice>(
        &self,
        dev: &D,
        [(x, x_layout), (labels, labels_layout), (forward_out, out_layout)]: [(&D::Storage, &Layout);
            3],
    ) -> candle_core::Result<(D::Storage, Shape)> {
        let backward = launch::Backward {
            dev,
            labels: D::input::<u32>(labels, labels_layout)?,
            shared: &self.shared,
            forward_out: D::input::<f64>(forward_out, out_layout)?,
            dims: x_layout.shape().dims2()?,
            rows: &self.rows,
            params: &self.params,
        };
        let grad = crate::launch::on_float_device(backward, x, x_layout)?;
        Ok((grad, self.output_shape(x_layout)?))
    }
}

/// The backward CPU kernel on `x` (`[n, d]`), its labels and the forward output.
struct CpuBackward<'a> {
    op: &'a BatchMixingGradOp,
    d: usize,
    labels: &'a [u32],
    forward_out: &'a [f64],
}

impl RealKernel for CpuBackward<'_> {
    const OP: &'static str = BatchMixingGradOp::NAME;
    type Output = CpuStorage;

    fn run<T: Real + WithDType>(self, x: &[T]) -> candle_core::Result<CpuStorage> {
        let rows = self.op.rows.clone();
        let grad = cpu::backward(
            x,
            self.d,
            self.labels,
            self.forward_out,
            rows,
            &self.op.params,
        );
        Ok(T::to_cpu_storage_owned(grad))
    }
}

impl CustomOp3 for BatchMixingGradOp {
    fn name(&self) -> &'static str {
        Self::NAME
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
        if let Some(out) = crate::emulator::when_active(self, [(s1, l1), (s2, l2), (s3, l3)]) {
            return out;
        }
        let backward = CpuBackward {
            op: self,
            d: l1.shape().dims2()?.1,
            labels: contiguous_slice(s2.as_slice::<u32>()?, l2)?,
            forward_out: contiguous_slice(s3.as_slice::<f64>()?, l3)?,
        };
        let shape = self.output_shape(l1)?;
        let dtype = candle_core::backend::BackendStorage::dtype(s1);
        let grad = in_dtype(on_real(backward, s1, l1)?, &shape, dtype)?;
        Ok((grad, shape))
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
        crate::cuda_kernels::on_gpu(self, [(s1, l1), (s2, l2), (s3, l3)])
    }
}

#[cfg(all(test, feature = "cuda-emu"))]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use diffbio_testing::Rng;

    use super::{BatchMixingConfig, BatchMixingLoss};
    use crate::{emulator::with_emulated_kernels, host_reads, Error};

    /// The reads to the host of a forward and of its backward on the emulator device,
    /// which runs the launch sequences a GPU runs, for n cells of d dimensions and k
    /// neighbours (three batches).
    fn host_reads_of(n: usize, d: usize, k: usize) -> (usize, usize) {
        let mut rng = Rng::new(7);
        let x = Var::from_vec(rng.normals(n * d), (n, d), &Device::Cpu).unwrap();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let labels = Tensor::new(labels, &Device::Cpu).unwrap();
        let config = BatchMixingConfig {
            n_neighbors: k,
            n_batches: 3,
            temperature: 1.0,
        };
        let loss = BatchMixingLoss::new(config).unwrap();
        with_emulated_kernels(|| {
            let start = host_reads::count();
            let value = loss.forward(&x, &labels).unwrap();
            let forward = host_reads::count() - start;
            let grads = value.backward().unwrap();
            assert!(grads.get(&x).is_some());
            (forward, host_reads::count() - start - forward)
        })
    }

    /// Sizes past what a kernel launch takes are a typed error before anything runs (here
    /// B too large for the shared memory of the warp forward, which k > 135 takes), on the
    /// kernels' devices only.
    #[test]
    fn sizes_past_the_kernels_limits_are_a_device_limit_error() {
        let n = 150;
        let x = Tensor::from_vec(Rng::new(3).normals(n * 2), (n, 2), &Device::Cpu)
            .and_then(|x| x.to_dtype(candle_core::DType::F32))
            .unwrap();
        let labels = Tensor::new((0..n as u32).collect::<Vec<_>>(), &Device::Cpu).unwrap();
        let config = BatchMixingConfig {
            n_neighbors: 140,
            n_batches: 10_000,
            temperature: 1.0,
        };
        let loss = BatchMixingLoss::new(config).unwrap();
        let on_kernels = with_emulated_kernels(|| loss.forward(&x, &labels));
        assert!(
            matches!(&on_kernels, Err(Error::DeviceLimit { limit: 49152, .. })),
            "{on_kernels:?}"
        );
        assert!(loss.forward(&x, &labels).is_ok(), "the CPU path takes it");
    }

    /// The forward reads the labels once (their range check and the tiled kernels' column
    /// order share that copy) and the finiteness of x once; the backward reads nothing,
    /// reusing the tiled forward's columns, or (after the warp forward, k > 135) building
    /// them from the host labels.
    #[test]
    fn the_forward_reads_from_the_device_twice_and_the_backward_never() {
        assert_eq!(
            host_reads_of(40, 5, 4),
            (2, 0),
            "tiled forward and backward"
        );
        assert_eq!(
            host_reads_of(140, 3, 136),
            (2, 0),
            "warp forward, tiled backward"
        );
    }
}
