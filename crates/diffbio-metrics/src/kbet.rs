//! kBET (Büttner et al. 2019) per cell-type label, with scib-metrics' construction.

use statrs::function::gamma::gamma_ur;

use crate::diffusion::diffusion_map;
use crate::error::{Error, Result};
use crate::knn::{knn_of_points, KnnGraph};
use crate::labels::{at_least_two, check_labels, sorted_distinct};
use crate::pairwise::Points;
use crate::sparse_graph::SparseGraph;
use crate::umap::umap_connectivities;

/// Significance level of scib-metrics' kBET test.
pub const KBET_ALPHA: f64 = 0.05;
/// Diffusion components of scib-metrics' kBET.
const DIFFUSION_COMPONENTS: usize = 100;
/// Labels with fewer cells are skipped.
const MIN_CELLS: usize = 10;

/// kBET of one label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelKbet {
    /// The cell-type label.
    pub label: u32,
    /// Its number of cells.
    pub cells: usize,
    /// Its acceptance rate, `None` when skipped (fewer than 10 cells or a single batch).
    pub acceptance: Option<f64>,
}

/// kBET acceptance rates per label and their mean over the labels not skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Kbet {
    /// Every label's result, skipped ones included.
    pub per_label: Vec<LabelKbet>,
    /// The mean acceptance rate over the labels not skipped.
    pub score: f64,
}

/// scib-metrics' `kbet_per_label` on a kNN graph (`graph.k() + 1` neighbours counting the
/// cell itself: the Benchmarker's 50 are 49 here). 1 = batches mixed as expected.
///
/// The graph becomes UMAP fuzzy connectivities; for each label with ≥ 10 cells in ≥ 2
/// batches: `k0 = clamp(⌊mean cells per batch / 4⌋, 10, 70)`; on the label's connectivity
/// subgraph, if it is connected, a diffusion map (100 components, or n − 1), and in it each
/// cell's neighbourhood of itself and its k0 nearest (the number of components carries
/// over between labels, ascending, as the smallest `n − 1` so far: scib-metrics 0.5.10's
/// loop reassigns it); Pearson's χ² of the batch counts of
/// every neighbourhood against the label's batch frequencies (B − 1 degrees of freedom);
/// the acceptance rate is the fraction of cells with p ≥ 0.05. A disconnected subgraph is
/// reduced to its components of ≥ 3·k0 cells when they hold ≥ 75 % of the label (else the
/// label scores 0). The score is the mean over the labels not skipped.
///
/// Where scib-metrics is approximate this is exact: the diffusion-space neighbours are the
/// exact kNN (scib uses pynndescent), in f64 (scib rounds connectivities and eigenvectors to
/// f32). Where scib's own code fails (neighbourhood larger than the cells left) the label
/// scores 0, as scib's fallback does. Errors: mismatched lengths, fewer than 2 batches,
/// no label that can be scored ([`Error::Undefined`]), an eigensolver that does not converge.
///
/// ```
/// use diffbio_metrics::{kbet, knn};
/// // one cell type on a line, two batches interleaved (mixed) or in halves (separated)
/// let x: Vec<f64> = (0..120).map(|i| i as f64).collect();
/// let g = knn(&x, 1, 20).unwrap();
/// let types = vec![0u32; 120];
/// let mixed: Vec<u32> = (0..120).map(|i| i % 2).collect();
/// let halves: Vec<u32> = (0..120).map(|i| u32::from(i >= 60)).collect();
/// assert!(kbet(&g, &mixed, &types).unwrap().score > 0.9);
/// assert!(kbet(&g, &halves, &types).unwrap().score < 0.2);
/// ```
pub fn kbet(graph: &KnnGraph, batches: &[u32], labels: &[u32]) -> Result<Kbet> {
    check_labels(graph, batches, "batches")?;
    check_labels(graph, labels, "labels")?;
    at_least_two(batches, "batches")?;
    let connectivities = umap_connectivities(graph);
    // scib-metrics 0.5.10 lowers one `diffusion_n_comps` variable inside its loop over the
    // labels, so each label uses the smallest `n − 1` of the labels scored before it.
    let mut n_comps = DIFFUSION_COMPONENTS;
    let mut per_label = Vec::new();
    for label in sorted_distinct(labels) {
        let cells: Vec<usize> = (0..graph.n()).filter(|&i| labels[i] == label).collect();
        let label_batches: Vec<u32> = cells.iter().map(|&i| batches[i]).collect();
        let acceptance = if cells.len() < MIN_CELLS || sorted_distinct(&label_batches).len() < 2 {
            None
        } else {
            Some(label_acceptance(
                &connectivities.induced(&cells),
                &label_batches,
                &mut n_comps,
            )?)
        };
        per_label.push(LabelKbet {
            label,
            cells: cells.len(),
            acceptance,
        });
    }
    let scored: Vec<f64> = per_label.iter().filter_map(|l| l.acceptance).collect();
    if scored.is_empty() {
        return Err(Error::Undefined {
            metric: "kbet",
            reason: format!(
                "none of the {} cell types has {MIN_CELLS} or more cells in 2 or more batches",
                per_label.len()
            ),
        });
    }
    Ok(Kbet {
        score: scored.iter().sum::<f64>() / scored.len() as f64,
        per_label,
    })
}

/// kBET acceptance of one label's connectivity subgraph.
fn label_acceptance(graph: &SparseGraph, batches: &[u32], n_comps: &mut usize) -> Result<f64> {
    let n = graph.n();
    let distinct = sorted_distinct(batches);
    let mean_per_batch = n as f64 / distinct.len() as f64;
    let k0 = ((mean_per_batch / 4.0).floor() as usize).clamp(10, 70);
    let (component, n_components) = graph.components();
    if n_components == 1 {
        return diffusion_acceptance(graph, batches, k0, n_comps);
    }
    let mut sizes = vec![0usize; n_components];
    component.iter().for_each(|&c| sizes[c] += 1);
    let kept: Vec<usize> = (0..n).filter(|&i| sizes[component[i]] >= 3 * k0).collect();
    if (kept.len() as f64) < 0.75 * n as f64 {
        return Ok(0.0);
    }
    let kept_batches: Vec<u32> = kept.iter().map(|&i| batches[i]).collect();
    diffusion_acceptance(&graph.induced(&kept), &kept_batches, k0, n_comps)
}

/// The acceptance rate of the neighbourhoods (self and k0 nearest) in the diffusion map.
fn diffusion_acceptance(
    graph: &SparseGraph,
    batches: &[u32],
    k0: usize,
    n_comps: &mut usize,
) -> Result<f64> {
    let n = graph.n();
    *n_comps = (*n_comps).min(n - 1);
    if k0 >= n {
        return Ok(0.0); // scib: the neighbour search fails and the label scores 0
    }
    let embedding = diffusion_map(graph, *n_comps)?;
    let neighbours = knn_of_points(&Points::new(embedding, *n_comps), k0);
    let accepted = neighbourhood_p_values(&neighbours, batches)
        .into_iter()
        .filter(|&p| p >= KBET_ALPHA)
        .count();
    Ok(accepted as f64 / n as f64)
}

/// Pearson χ² p-value of each cell's neighbourhood (itself and its neighbours) batch counts
/// against the batch frequencies of all cells; a single batch gives NaN (no test).
fn neighbourhood_p_values(graph: &KnnGraph, batches: &[u32]) -> Vec<f64> {
    let distinct = sorted_distinct(batches);
    let code = |b: u32| distinct.binary_search(&b).expect("a batch of these cells");
    let mut frequency = vec![0.0f64; distinct.len()];
    batches.iter().for_each(|&b| frequency[code(b)] += 1.0);
    let size = (graph.k() + 1) as f64;
    let expected: Vec<f64> = frequency
        .iter()
        .map(|f| f / batches.len() as f64 * size)
        .collect();
    let dof = (distinct.len() - 1) as f64;
    (0..graph.n())
        .map(|i| {
            let mut observed = vec![0.0f64; distinct.len()];
            observed[code(batches[i])] += 1.0;
            graph
                .neighbors(i)
                .iter()
                .for_each(|&j| observed[code(batches[j])] += 1.0);
            let statistic: f64 = observed
                .iter()
                .zip(&expected)
                .map(|(o, e)| (o - e) * (o - e) / e)
                .sum();
            if dof == 0.0 {
                f64::NAN
            } else if statistic <= 0.0 {
                1.0
            } else {
                gamma_ur(dof / 2.0, statistic / 2.0)
            }
        })
        .collect()
}
