//! kBET (Büttner et al. 2019) per cell-type label, with scib-metrics' construction.

use std::ops::Range;

use rayon::prelude::*;
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
    kbet_of(
        &kbet_connectivities(graph, batches, labels)?,
        batches,
        labels,
    )
}

/// The UMAP connectivities of [`kbet`]'s graph, its inputs checked: all of the graph that
/// the rest of kBET ([`kbet_of`]) reads, so that a caller can free the graph before the
/// diffusion maps, the benchmark's peak of memory.
pub(crate) fn kbet_connectivities(
    graph: &KnnGraph,
    batches: &[u32],
    labels: &[u32],
) -> Result<SparseGraph> {
    check_labels(graph, batches, "batches")?;
    check_labels(graph, labels, "labels")?;
    at_least_two(batches, "batches")?;
    Ok(umap_connectivities(graph))
}

/// [`kbet`] of the graph's [`kbet_connectivities`].
pub(crate) fn kbet_of(
    connectivities: &SparseGraph,
    batches: &[u32],
    labels: &[u32],
) -> Result<Kbet> {
    // The plans in label order (cheap: each label's subgraph and its components), as the
    // number of components carries over; then the diffusion maps, one label per task, in
    // groups of labels that together hold at most twice the cells of the largest one.
    let mut n_comps = DIFFUSION_COMPONENTS;
    let mut plans: Vec<(LabelKbet, Option<Diffusion>)> = sorted_distinct(labels)
        .into_iter()
        .map(|label| {
            let cells: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == label).collect();
            let label_batches: Vec<u32> = cells.iter().map(|&i| batches[i]).collect();
            let skipped = cells.len() < MIN_CELLS || sorted_distinct(&label_batches).len() < 2;
            let (acceptance, diffusion) = if skipped {
                (None, None)
            } else {
                match plan_label(connectivities, cells.clone(), label_batches, &mut n_comps) {
                    Plan::Scored(acceptance) => (Some(acceptance), None),
                    Plan::Diffuse(diffusion) => (None, Some(diffusion)),
                }
            };
            let result = LabelKbet {
                label,
                cells: cells.len(),
                acceptance,
            };
            (result, diffusion)
        })
        .collect();
    let sizes: Vec<usize> = plans
        .iter()
        .map(|(_, diffusion)| diffusion.as_ref().map_or(0, |d| d.cells.len()))
        .collect();
    let budget = 2 * sizes.iter().copied().max().unwrap_or(0);
    for group in groups_within(&sizes, budget) {
        let acceptances: Vec<Result<Option<f64>>> = plans[group.clone()]
            .par_iter()
            .map(|(_, diffusion)| {
                diffusion
                    .as_ref()
                    .map(|d| d.acceptance(connectivities))
                    .transpose()
            })
            .collect();
        for ((result, _), acceptance) in plans[group].iter_mut().zip(acceptances) {
            if let Some(acceptance) = acceptance? {
                result.acceptance = Some(acceptance);
            }
        }
    }
    let per_label: Vec<LabelKbet> = plans.into_iter().map(|(result, _)| result).collect();
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

/// Consecutive groups of the items with these `sizes`, in order, each holding at most
/// `budget` in all unless it is a single item: the labels whose diffusion maps run at once.
fn groups_within(sizes: &[usize], budget: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut held) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && held + size > budget {
            groups.push(start..i);
            (start, held) = (i, 0);
        }
        held += size;
    }
    if start < sizes.len() {
        groups.push(start..sizes.len());
    }
    groups
}

/// What kBET does with one label's cells ([`plan_label`]).
enum Plan {
    /// The label's acceptance without a diffusion map.
    Scored(f64),
    /// A diffusion map to compute.
    Diffuse(Diffusion),
}

/// The diffusion map of a label's connected cells and the test of their neighbourhoods in it.
struct Diffusion {
    /// The cells (ascending) whose connectivity subgraph is mapped.
    cells: Vec<usize>,
    /// Their batches.
    batches: Vec<u32>,
    /// Neighbours per cell in the map.
    k0: usize,
    /// The map's components.
    n_comps: usize,
}

/// The plan of a label with `cells` (ascending) in `batches`: `k0`, and the cells of its
/// connectivity subgraph that get a diffusion map (all of them if it is connected, else
/// its components of ≥ 3·k0 cells if they hold ≥ 75 % of the label: else it scores 0),
/// updating the number of components that carries over between labels.
fn plan_label(
    connectivities: &SparseGraph,
    cells: Vec<usize>,
    batches: Vec<u32>,
    n_comps: &mut usize,
) -> Plan {
    let n = cells.len();
    let distinct = sorted_distinct(&batches);
    let mean_per_batch = n as f64 / distinct.len() as f64;
    let k0 = ((mean_per_batch / 4.0).floor() as usize).clamp(10, 70);
    let (component, n_components) = connectivities.induced(&cells).components();
    let (cells, batches) = if n_components == 1 {
        (cells, batches)
    } else {
        let mut sizes = vec![0usize; n_components];
        component.iter().for_each(|&c| sizes[c] += 1);
        let kept: Vec<usize> = (0..n).filter(|&i| sizes[component[i]] >= 3 * k0).collect();
        if (kept.len() as f64) < 0.75 * n as f64 {
            return Plan::Scored(0.0);
        }
        (
            kept.iter().map(|&i| cells[i]).collect(),
            kept.iter().map(|&i| batches[i]).collect(),
        )
    };
    *n_comps = (*n_comps).min(cells.len() - 1);
    if k0 >= cells.len() {
        return Plan::Scored(0.0); // scib: the neighbour search fails and the label scores 0
    }
    Plan::Diffuse(Diffusion {
        cells,
        batches,
        k0,
        n_comps: *n_comps,
    })
}

impl Diffusion {
    /// The acceptance rate of the neighbourhoods (self and k0 nearest) in the diffusion map.
    fn acceptance(&self, connectivities: &SparseGraph) -> Result<f64> {
        let embedding = diffusion_map(connectivities.induced(&self.cells), self.n_comps)?;
        let neighbours = knn_of_points(&Points::new(embedding, self.n_comps), self.k0);
        let accepted = neighbourhood_p_values(&neighbours, &self.batches)
            .into_iter()
            .filter(|&p| p >= KBET_ALPHA)
            .count();
        Ok(accepted as f64 / self.cells.len() as f64)
    }
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
                .for_each(|&j| observed[code(batches[j as usize])] += 1.0);
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

#[cfg(test)]
mod tests {
    use super::groups_within;

    #[test]
    fn label_groups_keep_order_and_budget() {
        // Label sizes like the 10^6 benchmark's (thousands of cells); 0 = no diffusion map.
        let sizes = [166, 104, 46, 155, 81, 67, 159, 142, 75, 0];
        let groups = groups_within(&sizes, 332);
        assert_eq!(groups, [0..3, 3..6, 6..8, 8..10]);
        // One label over the budget runs alone; an empty list has no groups.
        assert_eq!(groups_within(&[5, 40, 5, 5], 20), [0..1, 1..2, 2..4]);
        assert!(groups_within(&[], 10).is_empty());
        for budget in [0, 1, 100, 200, 332, 1000] {
            let groups = groups_within(&sizes, budget);
            let covered: Vec<usize> = groups.iter().flat_map(|g| g.clone()).collect();
            assert_eq!(covered, (0..sizes.len()).collect::<Vec<_>>());
            for g in groups {
                assert!(g.len() == 1 || sizes[g].iter().sum::<usize>() <= budget);
            }
        }
    }
}
