//! `diffbio_metrics._native`: the Rust half of the `diffbio-metrics` Python package
//! (`python/diffbio_metrics` is the other half, with scib-metrics' API). Arrays arrive as
//! C-contiguous numpy arrays of the dtypes named here (the Python side converts, copying
//! only when it must) and are read in place; the computation runs without the GIL on a
//! thread pool of `n_jobs` threads (results do not depend on the count). A metric error
//! is a `ValueError` with the library's message; a panic, should one escape, a
//! `RuntimeError`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use diffbio_metrics::{
    benchmark_with_graph, benchmark_with_progress, BenchmarkConfig, KnnGraph, PreIntegration,
    Scores, Silent,
};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A metric's refusal of its input, as Python's `ValueError`.
fn value_error(e: diffbio_metrics::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Runs `work` without the GIL on `n_jobs` threads (`-1`: one per core), turning a panic
/// into a `RuntimeError`.
fn on_threads<R: Send>(
    py: Python<'_>,
    n_jobs: i64,
    work: impl FnOnce() -> R + Send,
) -> PyResult<R> {
    let threads = match n_jobs {
        -1 => 0, // rayon's default: one per core
        n if n >= 1 => n as usize,
        n => {
            return Err(PyValueError::new_err(format!(
                "n_jobs = {n}: use -1 or a count >= 1"
            )))
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    py.detach(|| catch_unwind(AssertUnwindSafe(|| pool.install(work))))
        .map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            PyRuntimeError::new_err(format!("diffbio-metrics internal error: {message}"))
        })
}

/// A slice of a C-contiguous array.
fn slice<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    array: &'a numpy::PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|_| PyValueError::new_err(format!("`{name}` must be C-contiguous")))
}

/// A neighbour graph from `(indices, distances)` of shape `(n, k)`, scib-metrics'
/// `NeighborsResults`: the cell itself (where it is among its neighbours) and negative
/// indices (padding) are dropped; every row keeps the same number of neighbours, the
/// fewest any row has.
fn graph_of(indices: &[i64], distances: &[f64], n: usize) -> PyResult<KnnGraph> {
    let width = indices.len() / n.max(1);
    if indices.len() != n * width || distances.len() != indices.len() {
        return Err(PyValueError::new_err(format!(
            "the neighbours' indices ({}) and distances ({}) must both have shape (n_cells = {n}, k)",
            indices.len(),
            distances.len()
        )));
    }
    let rows = (0..n)
        .map(|i| {
            let row = i * width..(i + 1) * width;
            indices[row.clone()]
                .iter()
                .zip(&distances[row])
                .filter(|&(&j, _)| j >= 0 && j as usize != i)
                .map(|(&j, &d)| (j as usize, d))
                .collect()
        })
        .collect();
    KnnGraph::from_neighbours(rows).map_err(value_error)
}

/// Every metric of `diffbio_metrics::benchmark` for one embedding: a dict with `scores`
/// (snake_case name → value, computed metrics only), `skipped` (`(metric, reason)` pairs)
/// and `kbet_per_label` (`(label code, cells, acceptance or None)`).
#[pyfunction]
#[pyo3(signature = (
    embedding, batches, labels=None, pre=None, neighbours=None,
    n_neighbors=30, accuracy_neighbors=15, n_jobs=1
))]
#[allow(clippy::too_many_arguments)] // the Python signature, keywords with defaults
fn benchmark<'py>(
    py: Python<'py>,
    embedding: PyReadonlyArray2<'py, f32>,
    batches: PyReadonlyArray1<'py, u32>,
    labels: Option<PyReadonlyArray1<'py, u32>>,
    pre: Option<PyReadonlyArray2<'py, f32>>,
    neighbours: Option<(PyReadonlyArray2<'py, i64>, PyReadonlyArray2<'py, f64>)>,
    n_neighbors: usize,
    accuracy_neighbors: usize,
    n_jobs: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let dims = embedding.shape()[1];
    let values = slice(&embedding, "embedding")?;
    let batches = slice(&batches, "batches")?;
    let labels = labels.as_ref().map(|l| slice(l, "labels")).transpose()?;
    let pre = match &pre {
        Some(p) => Some(PreIntegration {
            values: slice(p, "pre")?,
            dims: p.shape()[1],
        }),
        None => None,
    };
    let graph = match &neighbours {
        Some((indices, distances)) => Some(graph_of(
            slice(indices, "indices")?,
            slice(distances, "distances")?,
            embedding.shape()[0],
        )?),
        None => None,
    };
    let config = BenchmarkConfig {
        n_neighbors,
        accuracy_neighbors,
    };
    let inputs = (values, dims, batches, labels, pre);
    let scores: Scores = on_threads(py, n_jobs, || match &graph {
        Some(graph) => benchmark_with_graph(inputs, graph, config, &Silent),
        None => benchmark_with_progress(inputs, config, &Silent),
    })?
    .map_err(value_error)?;
    let out = PyDict::new(py);
    let computed = PyDict::new(py);
    for (name, value) in scores.entries() {
        computed.set_item(name, value)?;
    }
    out.set_item("scores", computed)?;
    let skipped: Vec<(&str, String)> = (scores.skipped.iter())
        .map(|s| (s.metric, s.reason.to_string()))
        .collect();
    out.set_item("skipped", skipped)?;
    let per_label: Vec<(u32, usize, Option<f64>)> = (scores.kbet_per_label.iter())
        .map(|l| (l.label, l.cells, l.acceptance))
        .collect();
    out.set_item("kbet_per_label", per_label)?;
    Ok(out)
}

/// The module `diffbio_metrics._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(benchmark, m)?)?;
    Ok(())
}
