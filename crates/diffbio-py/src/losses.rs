//! diffbio's fused losses for other frameworks: the value and the gradient with respect to
//! the input, from the CPU kernels through Candle, so that a PyTorch or JAX user can wrap
//! them in a custom autograd function (`python/diffbio_metrics/losses.py`).

use candle_core::{DType, Device, Tensor, Var, WithDType};
use diffbio_core::{BatchMixingConfig, BatchMixingLoss, DifferentiableAuroc};
use numpy::PyUntypedArrayMethods;
use numpy::{Element, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::{on_threads, slice};

/// `(value, gradient with respect to x)` of `loss` on the CPU, the gradient in x's dtype.
fn value_and_gradient<T: WithDType + Element>(
    x: &[T],
    shape: &[usize],
    loss: impl FnOnce(&Tensor) -> diffbio_core::Result<Tensor>,
) -> diffbio_core::Result<(f64, Vec<T>)> {
    let x = Var::from_tensor(&Tensor::from_slice(x, shape, &Device::Cpu)?)?;
    let value = loss(x.as_tensor())?;
    let gradient = value.backward()?;
    let gradient = gradient
        .get(&x)
        .expect("the loss depends on its input")
        .flatten_all()?
        .to_vec1::<T>()?;
    Ok((value.to_dtype(DType::F64)?.to_scalar::<f64>()?, gradient))
}

/// [`value_and_gradient`] of a float32 or float64 array (any other dtype is a `TypeError`;
/// the Python side converts), run on `n_jobs` threads; a loss error is a `ValueError`.
fn float_array_loss<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_jobs: i64,
    loss: impl Fn(&Tensor) -> diffbio_core::Result<Tensor> + Send + Sync,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    fn run<'py, T: WithDType + Element>(
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, T>,
        n_jobs: i64,
        loss: impl Fn(&Tensor) -> diffbio_core::Result<Tensor> + Send + Sync,
    ) -> PyResult<(f64, Bound<'py, PyAny>)> {
        let shape = x.shape().to_vec();
        let values = slice(&x, "x")?;
        let (value, gradient) =
            on_threads(py, n_jobs, || value_and_gradient(values, &shape, loss))?
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let gradient = PyArray1::from_vec(py, gradient).reshape(shape)?;
        Ok((value, gradient.into_any()))
    }
    if let Ok(x) = x.extract::<PyReadonlyArrayDyn<'py, f32>>() {
        run(py, x, n_jobs, loss)
    } else if let Ok(x) = x.extract::<PyReadonlyArrayDyn<'py, f64>>() {
        run(py, x, n_jobs, loss)
    } else {
        Err(PyTypeError::new_err(
            "x must be a float32 or float64 numpy array",
        ))
    }
}

/// `(value, ∂value/∂x)` of diffbio's `BatchMixingLoss` (negative normalised entropy of the
/// batches among each cell's soft k nearest neighbours, in [−1, 0]) of `x` `(n, d)`.
#[pyfunction]
pub(crate) fn batch_mixing_loss<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    batches: PyReadonlyArray1<'py, u32>,
    n_neighbors: usize,
    n_batches: usize,
    temperature: f64,
    n_jobs: i64,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let config = BatchMixingConfig {
        n_neighbors,
        n_batches,
        temperature,
    };
    let batches = slice(&batches, "batches")?;
    let loss = BatchMixingLoss::new(config).map_err(|e| PyValueError::new_err(e.to_string()))?;
    float_array_loss(py, x, n_jobs, |x| {
        let labels = Tensor::from_slice(batches, batches.len(), &Device::Cpu)?;
        loss.forward(x, &labels)
    })
}

/// `(value, ∂value/∂scores)` of diffbio's `DifferentiableAuroc` (the mean sigmoid of
/// positive-minus-negative score differences over the temperature) of `scores` `(n,)`.
#[pyfunction]
pub(crate) fn differentiable_auroc<'py>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    labels: PyReadonlyArray1<'py, u8>,
    temperature: f64,
    n_jobs: i64,
) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let labels = slice(&labels, "labels")?;
    let auroc =
        DifferentiableAuroc::new(temperature).map_err(|e| PyValueError::new_err(e.to_string()))?;
    float_array_loss(py, scores, n_jobs, |scores| {
        let labels = Tensor::from_slice(labels, labels.len(), &Device::Cpu)?;
        auroc.forward(scores, &labels)
    })
}
