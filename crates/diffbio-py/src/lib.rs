//! `diffbio_metrics._native`: the Rust half of the `diffbio-metrics` Python package
//! (`python/diffbio_metrics` is the other half, with scib-metrics' API): the metrics here,
//! the fused losses' values and gradients in [`losses`]. Arrays arrive as
//! C-contiguous numpy arrays of the dtypes named here (the Python side converts, copying
//! only when it must) and are read in place; the computation runs without the GIL on a
//! thread pool of `n_jobs` threads (results do not depend on the count). A metric error
//! is a `ValueError` with the library's message; a panic, should one escape, a
//! `RuntimeError`.

mod losses;

use std::panic::{catch_unwind, AssertUnwindSafe};

use diffbio_metrics::{
    benchmark_with_graph, benchmark_with_progress, BenchmarkConfig, BenchmarkInputs, KnnGraph,
    MetricSet, PreIntegration, Scores, Silent,
};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
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

/// Every metric of `diffbio_metrics::benchmark` for one embedding, but those named in
/// `skip` (not computed): a dict with `scores` (snake_case name → value, computed metrics
/// only), `skipped` (`(metric, reason)` pairs) and `kbet_per_label` (`(label code, cells,
/// acceptance or None)`).
#[pyfunction]
#[pyo3(signature = (
    embedding, batches, labels=None, pre=None, neighbours=None,
    n_neighbors=30, accuracy_neighbors=15, n_jobs=1, skip=Vec::new()
))]
#[allow(clippy::too_many_arguments)] // the Python signature, keywords with defaults
fn benchmark<'py>(
    py: Python<'py>,
    embedding: PyReadonlyArray2<'py, f32>,
    batches: PyReadonlyArray1<'py, u32>,
    labels: Option<PyReadonlyArray1<'py, u32>>,
    pre: Option<PyReadonlyArray2<'py, f32>>,
    neighbours: Option<Neighbours<'py>>,
    n_neighbors: usize,
    accuracy_neighbors: usize,
    n_jobs: i64,
    skip: Vec<String>,
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
    let graph = neighbours.as_ref().map(graph).transpose()?;
    let config = BenchmarkConfig {
        n_neighbors,
        accuracy_neighbors,
        left_out: MetricSet::of(&skip).map_err(value_error)?,
    };
    let inputs = BenchmarkInputs {
        embedding: values,
        dims,
        batches,
        labels,
        pre_integration: pre,
    };
    let scores: Scores = on_threads(py, n_jobs, || match &graph {
        Some(graph) => benchmark_with_graph(inputs, graph, config, &Silent),
        None => benchmark_with_progress(inputs, config, &Silent),
    })?
    .map_err(value_error)?;
    scores_dict(py, &scores)
}

/// The metrics of a neighbour graph scored alone (an integration that outputs no
/// embedding), as [`benchmark`]'s dict: the graph metrics, and every metric that needs an
/// embedding listed in `skipped`; those named in `skip` are not computed.
#[pyfunction]
#[pyo3(signature = (
    neighbours, batches, labels=None, n_neighbors=30, accuracy_neighbors=15, n_jobs=1,
    skip=Vec::new()
))]
#[allow(clippy::too_many_arguments)] // the Python signature, keywords with defaults
fn benchmark_graph<'py>(
    py: Python<'py>,
    neighbours: Neighbours<'py>,
    batches: PyReadonlyArray1<'py, u32>,
    labels: Option<PyReadonlyArray1<'py, u32>>,
    n_neighbors: usize,
    accuracy_neighbors: usize,
    n_jobs: i64,
    skip: Vec<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let graph = graph(&neighbours)?;
    let batches = slice(&batches, "batches")?;
    let labels = labels.as_ref().map(|l| slice(l, "labels")).transpose()?;
    let config = BenchmarkConfig {
        n_neighbors,
        accuracy_neighbors,
        left_out: MetricSet::of(&skip).map_err(value_error)?,
    };
    let scores = on_threads(py, n_jobs, || {
        diffbio_metrics::benchmark_graph(&graph, batches, labels, config, &Silent)
    })?
    .map_err(value_error)?;
    scores_dict(py, &scores)
}

/// `{"scores": {name: value}, "skipped": [(metric, reason)], "kbet_per_label": [(label
/// code, cells, acceptance or None)], "batch_lisi_per_cell": array, "label_lisi_per_cell":
/// array}` (the arrays empty when not computed).
fn scores_dict<'py>(py: Python<'py>, scores: &Scores) -> PyResult<Bound<'py, PyDict>> {
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
    let per_cell = |values: &[f64]| PyArray1::from_slice(py, values);
    out.set_item("batch_lisi_per_cell", per_cell(&scores.batch_lisi_per_cell))?;
    out.set_item("label_lisi_per_cell", per_cell(&scores.label_lisi_per_cell))?;
    Ok(out)
}

/// A neighbour graph argument: `(indices, distances)` as [`graph_of`] reads them.
type Neighbours<'py> = (PyReadonlyArray2<'py, i64>, PyReadonlyArray2<'py, f64>);

/// The graph of `(indices, distances)`.
fn graph(neighbours: &Neighbours<'_>) -> PyResult<KnnGraph> {
    let (indices, distances) = neighbours;
    graph_of(
        slice(indices, "indices")?,
        slice(distances, "distances")?,
        indices.shape()[0],
    )
}

/// An embedding argument: its values and dimensions.
fn embedding_of<'a>(x: &'a PyReadonlyArray2<'_, f32>) -> PyResult<(&'a [f32], usize)> {
    Ok((slice(x, "X")?, x.shape()[1]))
}

/// Per-cell LISI of `labels` on the graph (perplexity ⌊(k + 1)/3⌋ for k neighbours besides
/// the cell, as scib-metrics' for a graph that lists the cell itself).
#[pyfunction]
fn lisi<'py>(
    py: Python<'py>,
    neighbours: Neighbours<'py>,
    labels: PyReadonlyArray1<'py, u32>,
    n_jobs: i64,
) -> PyResult<Vec<f64>> {
    let (graph, labels) = (graph(&neighbours)?, slice(&labels, "labels")?);
    let per_cell = on_threads(py, n_jobs, || diffbio_metrics::lisi(&graph, labels))?;
    Ok(per_cell.map_err(value_error)?.per_cell)
}

/// Scaled iLISI (`batch = true`) or cLISI of the graph.
#[pyfunction]
fn scaled_lisi<'py>(
    py: Python<'py>,
    neighbours: Neighbours<'py>,
    labels: PyReadonlyArray1<'py, u32>,
    batch: bool,
    n_jobs: i64,
) -> PyResult<f64> {
    let (graph, labels) = (graph(&neighbours)?, slice(&labels, "labels")?);
    on_threads(py, n_jobs, || match batch {
        true => diffbio_metrics::ilisi(&graph, labels),
        false => diffbio_metrics::clisi(&graph, labels),
    })?
    .map_err(value_error)
}

/// Graph connectivity of the cell types.
#[pyfunction]
fn graph_connectivity<'py>(
    neighbours: Neighbours<'py>,
    labels: PyReadonlyArray1<'py, u32>,
) -> PyResult<f64> {
    let (graph, labels) = (graph(&neighbours)?, slice(&labels, "labels")?);
    diffbio_metrics::graph_connectivity(&graph, labels).map_err(value_error)
}

/// kBET per cell type: `(score, [(label code, cells, acceptance or None)])`.
#[pyfunction]
fn kbet_per_label<'py>(
    py: Python<'py>,
    neighbours: Neighbours<'py>,
    batches: PyReadonlyArray1<'py, u32>,
    labels: PyReadonlyArray1<'py, u32>,
    n_jobs: i64,
) -> PyResult<KbetPerLabel> {
    let graph = graph(&neighbours)?;
    let (batches, labels) = (slice(&batches, "batch")?, slice(&labels, "labels")?);
    let kbet = on_threads(py, n_jobs, || {
        diffbio_metrics::kbet(&graph, batches, labels)
    })?
    .map_err(value_error)?;
    let per_label = (kbet.per_label.iter())
        .map(|l| (l.label, l.cells, l.acceptance))
        .collect();
    Ok((kbet.score, per_label))
}

/// kBET's score and each label's `(code, cells, acceptance or None)`.
type KbetPerLabel = (f64, Vec<(u32, usize, Option<f64>)>);

/// One of the embedding metrics, by scib-metrics' name: `silhouette_label` (labels only),
/// `silhouette_batch`, `bras`, `isolated_labels` (labels and batches), `nmi_kmeans` /
/// `ari_kmeans` (both from one k-means, returned as `(nmi, ari)` by [`nmi_ari_kmeans`]).
#[pyfunction]
#[pyo3(signature = (metric, x, labels, batches=None, n_jobs=1))]
fn embedding_metric<'py>(
    py: Python<'py>,
    metric: &str,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, u32>,
    batches: Option<PyReadonlyArray1<'py, u32>>,
    n_jobs: i64,
) -> PyResult<f64> {
    let (values, dims) = embedding_of(&x)?;
    let labels = slice(&labels, "labels")?;
    let batches = batches.as_ref().map(|b| slice(b, "batch")).transpose()?;
    let needs_batches = || PyValueError::new_err(format!("{metric} needs the batches"));
    let result = match metric {
        "silhouette_label" => on_threads(py, n_jobs, || {
            diffbio_metrics::silhouette_label(values, dims, labels)
        })?,
        "silhouette_batch" | "bras" | "isolated_labels" => {
            let batches = batches.ok_or_else(needs_batches)?;
            on_threads(py, n_jobs, || match metric {
                "silhouette_batch" => {
                    diffbio_metrics::silhouette_batch(values, dims, labels, batches)
                }
                "bras" => diffbio_metrics::bras(values, dims, labels, batches),
                _ => diffbio_metrics::isolated_labels(values, dims, labels, batches),
            })?
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "no embedding metric {other:?}"
            )))
        }
    };
    result.map_err(value_error)
}

/// NMI and ARI of a k-means clustering (k = the number of labels, seed 0, the best of
/// `KMEANS_STARTS` starts) with the labels.
#[pyfunction]
fn nmi_ari_kmeans<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, u32>,
    n_jobs: i64,
) -> PyResult<(f64, f64)> {
    let (values, dims) = embedding_of(&x)?;
    let labels = slice(&labels, "labels")?;
    let scores = on_threads(py, n_jobs, || {
        diffbio_metrics::nmi_ari_kmeans(values, dims, labels, 0)
    })?
    .map_err(value_error)?;
    Ok((scores.nmi, scores.ari))
}

/// PCR comparison of the embeddings before and after integration.
#[pyfunction]
fn pcr_comparison<'py>(
    pre: PyReadonlyArray2<'py, f32>,
    post: PyReadonlyArray2<'py, f32>,
    batches: PyReadonlyArray1<'py, u32>,
) -> PyResult<f64> {
    let ((pre, pre_dims), (post, post_dims)) = (embedding_of(&pre)?, embedding_of(&post)?);
    let batches = slice(&batches, "covariate")?;
    diffbio_metrics::pcr_comparison(pre, pre_dims, post, post_dims, batches).map_err(value_error)
}

/// The module `diffbio_metrics._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(benchmark, m)?)?;
    m.add_function(wrap_pyfunction!(benchmark_graph, m)?)?;
    m.add_function(wrap_pyfunction!(lisi, m)?)?;
    m.add_function(wrap_pyfunction!(scaled_lisi, m)?)?;
    m.add_function(wrap_pyfunction!(graph_connectivity, m)?)?;
    m.add_function(wrap_pyfunction!(kbet_per_label, m)?)?;
    m.add_function(wrap_pyfunction!(embedding_metric, m)?)?;
    m.add_function(wrap_pyfunction!(nmi_ari_kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(pcr_comparison, m)?)?;
    m.add_function(wrap_pyfunction!(losses::batch_mixing_loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::differentiable_auroc, m)?)?;
    Ok(())
}
