//! `DifferentiableAuroc`: mean sigmoid over positive/negative pairs with a fixed or
//! learnable temperature (SPEC.md §6), as one fused Candle op with an analytic backward.

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

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use diffbio_pairwise::Real;

use crate::error::{Error, Result};
use crate::storage::{contiguous_slice, on_real, RealKernel};
use crate::validate;

/// Default temperature of SPEC.md §6.
pub const DEFAULT_TEMPERATURE: f64 = 1.0;

#[derive(Debug, Clone)]
enum Temperature {
    Fixed(f64),
    /// A scalar tensor, typically a [`candle_core::Var`]'s: it receives a gradient.
    Learned(Tensor),
}

/// Smooth AUROC surrogate: the mean sigmoid of score differences over positive/negative pairs.
///
/// With `P = {i : y_i = 1}` and `N = {j : y_j = 0}`:
///
/// ```text
/// auroc = Σ_{i∈P, j∈N} σ((s_i − s_j)/T) / max(|P|·|N|, 1)
/// ∂/∂T  = −Σ σ'(·)(s_i − s_j)/T² / (|P|·|N|)
/// ```
///
/// If either class is empty the value is 0 with zero gradient. Only P×N pairs are visited,
/// and only the window `|s_i − s_j| ≤ 30·T` needs a sigmoid (outside it each pair is 0 or 1
/// to within e^{−30}), so the op runs in O(n log n + window pairs) with O(n) memory. Higher
/// is better: train with `1 − auroc` (or its negative).
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use diffbio_core::DifferentiableAuroc;
/// # fn main() -> diffbio_core::Result<()> {
/// let dev = Device::Cpu;
/// let scores = Var::new(&[0.9f32, 0.8, 0.1, 0.2], &dev)?;
/// let labels = Tensor::new(&[1u32, 1, 0, 0], &dev)?;
/// let t = Var::new(1.0f32, &dev)?;
/// let auroc = DifferentiableAuroc::with_temperature(t.as_tensor().clone())?
///     .forward(scores.as_tensor(), &labels)?;
/// assert!((auroc.to_scalar::<f32>()? - 0.668).abs() < 1e-3);
/// let grads = auroc.backward()?;
/// assert!(grads.get(&t).unwrap().to_scalar::<f32>()? < 0.0); // sharper => higher
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DifferentiableAuroc {
    temperature: Temperature,
}

impl Default for DifferentiableAuroc {
    fn default() -> Self {
        Self {
            temperature: Temperature::Fixed(DEFAULT_TEMPERATURE),
        }
    }
}

impl DifferentiableAuroc {
    /// A fixed temperature (finite, > 0).
    pub fn new(temperature: f64) -> Result<Self> {
        validate::positive("temperature", temperature)?;
        Ok(Self {
            temperature: Temperature::Fixed(temperature),
        })
    }

    /// A learnable temperature: a scalar float tensor (shape `[]` or `[1]`), e.g. a `Var`'s,
    /// which receives `∂/∂T` through autograd. Its value is checked (> 0) on every forward.
    pub fn with_temperature(temperature: Tensor) -> Result<Self> {
        check_temperature_tensor(&temperature)?;
        Ok(Self {
            temperature: Temperature::Learned(temperature),
        })
    }

    /// A learnable temperature named `temperature` in a [`candle_nn::VarBuilder`], so that it
    /// lives in the training loop's `VarMap` (initialised to `initial` when created there).
    ///
    /// ```
    /// use candle_core::{DType, Device, Tensor};
    /// use candle_nn::{VarBuilder, VarMap};
    /// use diffbio_core::DifferentiableAuroc;
    /// # fn main() -> diffbio_core::Result<()> {
    /// let varmap = VarMap::new();
    /// let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    /// let auroc = DifferentiableAuroc::from_var_builder(vb.pp("auroc"), 0.5)?;
    /// assert!(varmap.data().lock().unwrap().contains_key("auroc.temperature"));
    /// # Ok(()) }
    /// ```
    pub fn from_var_builder(vb: candle_nn::VarBuilder, initial: f64) -> Result<Self> {
        validate::positive("temperature", initial)?;
        let t = vb.get_with_hints((), "temperature", candle_nn::Init::Const(initial))?;
        Self::with_temperature(t)
    }

    /// `predictions`: float `[n]`; `labels`: `[n]`, float or integer, each exactly 0 or 1.
    /// Returns the scalar surrogate (shape `[]`) in the dtype of `predictions`.
    pub fn forward(&self, predictions: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let (n, labels) = check_inputs(predictions, labels)?;
        let labels = labels.contiguous()?;
        let dtype = predictions.dtype();
        let (temperature, value) = self.temperature_for(predictions)?;
        // f16/bf16 scores as they are: the kernels read them as f32.
        let scores = predictions.contiguous()?;
        let op = AurocOp {
            temperature: value,
            rows: 0..n,
        };
        let out = scores.apply_op3(&labels, &temperature, op)?;
        Ok(out
            .narrow(0, contract::VALUE, 1)?
            .reshape(())?
            .to_dtype(dtype)?)
    }

    /// [`Self::forward`] written with dense Candle tensor ops, literally as its formula
    /// reads: the `[|P|, |N|]` matrix of `(s_p − s_n)/T` from the positives and negatives
    /// (picked on the host), its sigmoid and its mean, differentiated by Candle's autograd,
    /// the temperature's gradient included when it is learned. 0 when a class is empty, as
    /// the fused op. O(|P|·|N|) memory: for checking the fused op on small inputs, as
    /// candle-nn's `rms_norm_slow` checks `rms_norm`. The inputs are checked as the fused
    /// op checks them.
    ///
    /// ```
    /// use candle_core::{Device, Tensor, Var};
    /// use diffbio_core::DifferentiableAuroc;
    /// # fn main() -> diffbio_core::Result<()> {
    /// let s = Var::from_tensor(&Tensor::randn(0f64, 1.0, 50, &Device::Cpu)?)?;
    /// let y = Tensor::from_vec((0..50u8).map(|i| u8::from(i % 3 == 0)).collect(), 50, &Device::Cpu)?;
    /// let auroc = DifferentiableAuroc::new(0.7)?;
    /// let (fused, slow) = (auroc.forward(s.as_tensor(), &y)?, auroc.forward_slow(s.as_tensor(), &y)?);
    /// assert!((fused.to_scalar::<f64>()? - slow.to_scalar::<f64>()?).abs() < 1e-12);
    /// let (gf, gs) = (fused.backward()?, slow.backward()?);
    /// let diff = (gf.get(&s).unwrap() - gs.get(&s).unwrap())?.abs()?.max_all()?.to_scalar::<f64>()?;
    /// assert!(diff < 1e-12);
    /// # Ok(()) }
    /// ```
    pub fn forward_slow(&self, predictions: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let (n, labels) = check_inputs(predictions, labels)?;
        let dtype = predictions.dtype();
        let compute = validate::compute_dtype(dtype);
        let (temperature, _) = self.temperature_for(predictions)?;
        let is_positive: Vec<bool> = (labels.to_dtype(DType::F64)?.to_vec1::<f64>()?)
            .into_iter()
            .map(|y| y == 1.0)
            .collect();
        let of_class = |positive: bool| -> Result<Tensor> {
            let rows: Vec<u32> = (0..n as u32)
                .filter(|&i| is_positive[i as usize] == positive)
                .collect();
            let len = rows.len();
            Ok(Tensor::from_vec(rows, len, predictions.device())?)
        };
        let (positives, negatives) = (of_class(true)?, of_class(false)?);
        if positives.elem_count() == 0 || negatives.elem_count() == 0 {
            return Ok((predictions.to_dtype(compute)?.sum_all()? * 0.0)?.to_dtype(dtype)?);
        }
        let s = predictions.to_dtype(compute)?;
        let margins = s
            .index_select(&positives, 0)?
            .unsqueeze(1)?
            .broadcast_sub(&s.index_select(&negatives, 0)?.unsqueeze(0)?)?
            .broadcast_div(&temperature)?;
        let value = candle_nn::ops::sigmoid(&margins)?.mean_all()?;
        Ok(value.to_dtype(dtype)?)
    }

    /// The surrogate of the whole set of cells sharded over the ranks of `comm`, on every
    /// rank; its backward gives this rank's entries of the single-device `∂/∂s` and its
    /// share of `∂/∂T` (the shares sum to the single-device one; the contract is in
    /// [`crate::dist`]). `predictions`, `labels`: this rank's cells, `[n_r]` (`n_r` may be
    /// 0). The temperature must have the same value on every rank.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use diffbio_core::dist::{Communicator, ThreadComm};
    /// use diffbio_core::DifferentiableAuroc;
    /// # fn main() -> diffbio_core::Result<()> {
    /// let scores = [0.9f64, 0.8, 0.1, 0.2, 0.5];
    /// let labels = [1u32, 0, 0, 1, 1];
    /// let auroc = DifferentiableAuroc::new(0.5)?;
    /// let dev = Device::Cpu;
    /// let whole = auroc.forward(&Tensor::new(&scores, &dev)?, &Tensor::new(&labels, &dev)?)?;
    /// let values = std::thread::scope(|s| {
    ///     let handles: Vec<_> = ThreadComm::group(2)
    ///         .into_iter()
    ///         .map(|comm| {
    ///             let auroc = &auroc;
    ///             s.spawn(move || -> diffbio_core::Result<f64> {
    ///                 let mine = if comm.rank() == 0 { 0..2 } else { 2..5 };
    ///                 let s = Tensor::new(&scores[mine.clone()], &Device::Cpu)?;
    ///                 let y = Tensor::new(&labels[mine], &Device::Cpu)?;
    ///                 Ok(auroc.forward_sharded(&comm, &s, &y)?.to_scalar::<f64>()?)
    ///             })
    ///         })
    ///         .collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).collect::<diffbio_core::Result<Vec<_>>>()
    /// })?;
    /// assert!(values.iter().all(|v| (v - whole.to_scalar::<f64>().unwrap()).abs() < 1e-15));
    /// # Ok(()) }
    /// ```
    pub fn forward_sharded(
        &self,
        comm: &dyn crate::dist::Communicator,
        predictions: &Tensor,
        labels: &Tensor,
    ) -> Result<Tensor> {
        sharded::forward(self, comm, predictions, labels)
    }

    /// The temperature as a scalar tensor in the compute dtype of `predictions` (it
    /// carries the gradient) and its value as that dtype holds it (read once, for the
    /// kernels), checked > 0.
    fn temperature_for(&self, predictions: &Tensor) -> Result<(Tensor, f64)> {
        let (temperature, value) = match &self.temperature {
            Temperature::Fixed(t) => (Tensor::new(*t, predictions.device())?, *t),
            Temperature::Learned(t) => {
                validate::same_device(t, "temperature", predictions, "predictions")?;
                let value = scalar_value(t)?;
                validate::positive("temperature", value)?;
                (t.reshape(())?, value)
            }
        };
        let compute = validate::compute_dtype(predictions.dtype());
        let value = if compute == DType::F32 {
            value as f32 as f64
        } else {
            value
        };
        Ok((temperature.to_dtype(compute)?, value))
    }
}

/// The checks of [`DifferentiableAuroc::forward`]: `(n, the labels in the compute dtype)`.
fn check_inputs(predictions: &Tensor, labels: &Tensor) -> Result<(usize, Tensor)> {
    let n = validate::float_vector(predictions, "predictions")?;
    validate::vector_len(labels, "labels")?;
    validate::shape_is(labels, "labels", &[n])?;
    validate::same_device(labels, "labels", predictions, "predictions")?;
    let compute = validate::compute_dtype(predictions.dtype());
    let labels = validate::binary_labels(labels, "labels", compute)?;
    validate::finite(predictions, "predictions")?;
    Ok((n, labels))
}

fn check_temperature_tensor(t: &Tensor) -> Result<()> {
    validate::float_dtype(t, "temperature")?;
    if t.elem_count() != 1 || t.rank() > 1 {
        return Err(Error::Shape {
            input: "temperature",
            expected: "a scalar tensor, shape [] or [1]".into(),
            got: t.dims().to_vec(),
        });
    }
    validate::positive("temperature", scalar_value(t)?)
}

/// The value of a one-element tensor (one device-to-host read).
fn scalar_value(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0])
}

/// The fused op on `(scores, labels as 0/1 floats, temperature [])` with the cells `rows`
/// as centres (all n on one device; a rank's own cells when sharded). Output: `[value,
/// ∂/∂T, ∂/∂s of each cell in rows]` (O(n)), so that `bwd` is a scale of what the forward
/// computed. The temperature tensor is an input only so that it receives ∂/∂T; the
/// kernels use `temperature`, its value, read once by `forward`.
#[derive(Debug, Clone)]
struct AurocOp {
    temperature: f64,
    rows: Range<usize>,
}

impl AurocOp {
    /// The op's name (Candle's, and in errors).
    const NAME: &'static str = "differentiable-auroc";

    /// `[2 + rows]`: the value, ∂/∂T, then ∂/∂s.
    fn output_shape(&self) -> Shape {
        Shape::from(contract::GRAD_SCORES + self.rows.len())
    }
}

/// The op through the kernels on a GPU or the emulator (the temperature tensor is an input
/// only to receive ∂/∂T: the kernels take its value).
#[cfg(any(feature = "cuda", feature = "cuda-emu"))]
impl crate::launch::KernelOp<3> for AurocOp {
    fn on_kernels<D: crate::launch::KernelDevice>(
        &self,
        dev: &D,
        [(scores, layout), labels, _temperature]: [(&D::Storage, &Layout); 3],
    ) -> candle_core::Result<(D::Storage, Shape)> {
        let forward = launch::Forward {
            dev,
            labels,
            rows: &self.rows,
            temperature: self.temperature,
        };
        let out = crate::launch::on_float_device(forward, scores, layout)?;
        Ok((out, self.output_shape()))
    }
}

/// The CPU kernel on the scores, with their labels as 0/1 in the same dtype.
struct CpuForward<'a> {
    op: &'a AurocOp,
    labels: (&'a CpuStorage, &'a Layout),
}

impl RealKernel for CpuForward<'_> {
    const OP: &'static str = AurocOp::NAME;
    type Output = CpuStorage;

    fn run<T: Real + WithDType>(self, scores: &[T]) -> candle_core::Result<CpuStorage> {
        let labels = contiguous_slice(self.labels.0.as_slice::<T>()?, self.labels.1)?;
        let (rows, temperature) = (self.op.rows.clone(), self.op.temperature);
        Ok(T::to_cpu_storage_owned(cpu::forward(
            scores,
            labels,
            rows,
            temperature,
        )))
    }
}

impl CustomOp3 for AurocOp {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    // The temperature tensor (s3) is an input only to receive ∂/∂T; the CPU kernel takes
    // its value.
    #[cfg_attr(not(feature = "cuda-emu"), allow(unused_variables))]
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
        let forward = CpuForward {
            op: self,
            labels: (s2, l2),
        };
        let out = on_real(forward, s1, l1)?;
        Ok((out, self.output_shape()))
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

    fn bwd(
        &self,
        scores: &Tensor,
        _labels: &Tensor,
        temperature: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let upstream = grad_res.narrow(0, contract::VALUE, 1)?;
        let (grad_scores, grad_t) = scaled_gradients(res, &upstream, scores, temperature)?;
        Ok((Some(grad_scores), None, Some(grad_t)))
    }
}

/// `upstream ·` the gradients in an op output `out` (`[value, ∂/∂T, ∂/∂s of each score]`),
/// as `scores` and `temperature` are shaped and placed.
fn scaled_gradients(
    out: &Tensor,
    upstream: &Tensor,
    scores: &Tensor,
    temperature: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let upstream = upstream.reshape(1)?.to_device(out.device())?;
    let n = scores.dim(0)?;
    let grad_scores = out
        .narrow(0, contract::GRAD_SCORES, n)?
        .broadcast_mul(&upstream)?;
    let grad_t = out
        .narrow(0, contract::GRAD_TEMPERATURE, 1)?
        .mul(&upstream)?
        .reshape(temperature.shape())?;
    Ok((
        grad_scores
            .to_dtype(scores.dtype())?
            .to_device(scores.device())?,
        grad_t.to_device(temperature.device())?,
    ))
}
