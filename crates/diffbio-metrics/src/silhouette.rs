//! Silhouette widths (ASW) by label and by batch, BRAS and the isolated-label score, with
//! scib-metrics' definitions and rescalings.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::neighbours::{
    at_least_two, check_finite_matrix, distinct, knn_of_points_with, one_per_cell, sorted_distinct,
    KnnGraph,
};
use crate::pairwise::Points;
use crate::vector_math::dispatch;

/// Distance between cells for a silhouette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    /// `|x − y|`.
    Euclidean,
    /// `1 − x·y / (|x||y|)`, clipped to [0, 2].
    Cosine,
}

/// Which distance to the other clusters a silhouette compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Between {
    /// The nearest other cluster's mean distance (the standard silhouette).
    Nearest,
    /// The mean distance to all cells of the other clusters (BRAS).
    MeanOther,
}

/// Per-cell silhouette `s_i = (b_i − a_i) / max(a_i, b_i)` of `labels` for a row-major
/// `[n × dims]` embedding: `a_i` the mean distance to the other cells of i's cluster,
/// `b_i` per [`Between`]. Cells of singleton clusters get 0 (as scikit-learn).
///
/// Euclidean: all pairs, by tiled matrix products in f64 (O(n²·d) time). Cosine: the mean
/// cosine distance to a cluster is `1 − x̂_i·mean(x̂_j)`, so per-cluster sums of unit
/// vectors give it in O(n·clusters·d). Memory O(n·d) either way.
///
/// ```
/// use diffbio_metrics::{silhouette_samples, Between, Distance};
/// let x = [0.0f32, 1.0, 10.0, 11.0]; // d = 1: two tight clusters
/// let s = silhouette_samples(&x, 1, &[0, 0, 1, 1], Distance::Euclidean, Between::Nearest).unwrap();
/// assert!((s[0] - (10.5 - 1.0) / 10.5).abs() < 1e-12);
/// ```
pub fn silhouette_samples<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    distance: Distance,
    between: Between,
) -> Result<Vec<f64>> {
    let n = check_finite_matrix(embedding, dims)?;
    one_per_cell(labels, n, "labels")?;
    let clusters = Clusters::new(labels);
    let labels = &clusters.labels;
    Ok(match distance {
        Distance::Euclidean => Points::centred(embedding, dims).map_rows(
            || clusters.distance_sums(),
            |sums, i, j0, tile_row| sums.add(labels, i, j0, tile_row),
            |i, sums| clusters.silhouette(i, &sums.sums, between),
        ),
        Distance::Cosine => {
            let units: Vec<f64> = embedding
                .chunks(dims)
                .flat_map(|row| {
                    let row: Vec<f64> = row.iter().map(|&v| v.into()).collect();
                    let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                    row.into_iter()
                        .map(move |v| if norm > 0.0 { v / norm } else { 0.0 })
                })
                .collect();
            let mut unit_sums = vec![0.0f64; clusters.sizes.len() * dims];
            for (row, &c) in units.chunks(dims).zip(labels) {
                unit_sums[c * dims..(c + 1) * dims]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(s, v)| *s += v);
            }
            units
                .par_chunks(dims)
                .enumerate()
                .map(|(i, u)| {
                    let self_similarity: f64 = u.iter().map(|v| v * v).sum();
                    let sums: Vec<f64> = unit_sums
                        .chunks(dims)
                        .enumerate()
                        .map(|(c, total)| {
                            let similarity: f64 = u.iter().zip(total).map(|(a, b)| a * b).sum();
                            if c == labels[i] {
                                (clusters.sizes[c] - 1) as f64 - (similarity - self_similarity)
                            } else {
                                clusters.sizes[c] as f64 - similarity
                            }
                        })
                        .collect();
                    clusters.silhouette(i, &sums, between)
                })
                .collect()
        }
    })
}

/// Labels as dense cluster indices with the cluster sizes.
struct Clusters {
    labels: Vec<usize>,
    sizes: Vec<usize>,
}

impl Clusters {
    fn new(labels: &[u32]) -> Self {
        let mut sizes = vec![0usize; *labels.iter().max().expect("non-empty") as usize + 1];
        labels.iter().for_each(|&l| sizes[l as usize] += 1);
        Self {
            labels: labels.iter().map(|&l| l as usize).collect(),
            sizes,
        }
    }

    /// Zeroed per-cluster distance sums for one cell.
    fn distance_sums(&self) -> DistanceSums {
        DistanceSums {
            sums: vec![0.0; self.sizes.len()],
            roots: Vec::new(),
        }
    }

    /// The silhouette of cell i from its summed distances to every cluster.
    fn silhouette(&self, i: usize, sums: &[f64], between: Between) -> f64 {
        let own = self.labels[i];
        if self.sizes[own] < 2 {
            return 0.0;
        }
        let a = sums[own] / (self.sizes[own] - 1) as f64;
        let others = (0..self.sizes.len()).filter(|&c| c != own && self.sizes[c] > 0);
        let b = match between {
            Between::Nearest => others
                .map(|c| sums[c] / self.sizes[c] as f64)
                .fold(f64::INFINITY, f64::min),
            Between::MeanOther => {
                let n: usize = self.sizes.iter().sum();
                others.map(|c| sums[c]).sum::<f64>() / (n - self.sizes[own]) as f64
            }
        };
        let s = (b - a) / a.max(b);
        if s.is_finite() {
            s
        } else {
            0.0
        }
    }
}

/// One cell's Euclidean distances summed per cluster, from tile rows of squared distances.
struct DistanceSums {
    sums: Vec<f64>,
    /// Scratch: the square roots of a tile row.
    roots: Vec<f64>,
}

impl DistanceSums {
    /// Adds cell i's distances to cells `j0..` (squared in `tile_row`), itself left out; the
    /// square roots are taken in one vectorised pass before they are added per cluster.
    fn add(&mut self, labels: &[usize], i: usize, j0: usize, tile_row: &[f64]) {
        self.roots.resize(tile_row.len(), 0.0);
        dispatch(|| {
            for (root, &d2) in self.roots.iter_mut().zip(tile_row) {
                *root = d2.sqrt();
            }
        });
        if let Some(own) = i.checked_sub(j0).and_then(|t| self.roots.get_mut(t)) {
            *own = 0.0;
        }
        for (&root, &c) in self.roots.iter().zip(&labels[j0..]) {
            self.sums[c] += root;
        }
    }
}

/// scib-metrics' `silhouette_label`: `(mean Euclidean silhouette of the labels + 1) / 2`.
pub fn silhouette_label<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
) -> Result<f64> {
    Ok(rescaled_mean(&label_silhouettes(embedding, dims, labels)?))
}

/// The per-cell Euclidean silhouettes of at least two labels.
pub(crate) fn label_silhouettes<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
) -> Result<Vec<f64>> {
    at_least_two(labels, "labels")?;
    silhouette_samples(
        embedding,
        dims,
        labels,
        Distance::Euclidean,
        Between::Nearest,
    )
}

/// The exact kNN graph (k neighbours) and the per-cell Euclidean label silhouettes from one
/// pass over all pairs of cells (each pair's distance serves both).
pub(crate) fn knn_and_label_silhouettes<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    k: usize,
    labels: &[u32],
) -> Result<(KnnGraph, Vec<f64>)> {
    let n = check_finite_matrix(embedding, dims)?;
    if k == 0 || k >= n {
        return Err(Error::InvalidK { k, n });
    }
    one_per_cell(labels, n, "labels")?;
    at_least_two(labels, "labels")?;
    let clusters = Clusters::new(labels);
    Ok(knn_of_points_with(
        &Points::centred(embedding, dims),
        k,
        || clusters.distance_sums(),
        |sums, i, j0, tile_row| sums.add(&clusters.labels, i, j0, tile_row),
        |i, sums| clusters.silhouette(i, &sums.sums, Between::Nearest),
    ))
}

/// `(mean + 1) / 2` of silhouettes.
pub(crate) fn rescaled_mean(silhouettes: &[f64]) -> f64 {
    (mean(silhouettes) + 1.0) / 2.0
}

/// scib-metrics' `silhouette_batch`: within each label, `1 − |silhouette of the batches|`
/// per cell (Euclidean, nearest), averaged per label, then over labels. Labels present in
/// one batch only, or with one cell per batch, are skipped.
pub fn silhouette_batch<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    batch_silhouette(
        embedding,
        dims,
        labels,
        batches,
        Distance::Euclidean,
        Between::Nearest,
    )
}

/// BRAS (Rautenstrauch et al. 2025), the batch score of scib-metrics' Benchmarker:
/// [`silhouette_batch`] with cosine distance and the mean distance to all other batches.
pub fn bras<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    batch_silhouette(
        embedding,
        dims,
        labels,
        batches,
        Distance::Cosine,
        Between::MeanOther,
    )
}

fn batch_silhouette<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
    distance: Distance,
    between: Between,
) -> Result<f64> {
    let n = check_finite_matrix(embedding, dims)?;
    one_per_cell(labels, n, "labels")?;
    one_per_cell(batches, n, "batches")?;
    at_least_two(batches, "batches")?;
    let mut per_label = Vec::new();
    for label in sorted_distinct(labels) {
        let cells: Vec<usize> = (0..n).filter(|&i| labels[i] == label).collect();
        let sub_batches: Vec<u32> = cells.iter().map(|&i| batches[i]).collect();
        let n_batches = distinct(&sub_batches);
        if n_batches == 1 || n_batches == cells.len() {
            continue;
        }
        let sub: Vec<T> = cells
            .iter()
            .flat_map(|&i| embedding[i * dims..(i + 1) * dims].iter().copied())
            .collect();
        let s = silhouette_samples(&sub, dims, &sub_batches, distance, between)?;
        let scores: Vec<f64> = s.iter().map(|v| 1.0 - v.abs()).collect();
        per_label.push(mean(&scores));
    }
    if per_label.is_empty() {
        return Err(Error::TooFewLabels {
            input: "batches",
            found: 1,
            needed: 2,
        });
    }
    Ok(mean(&per_label))
}

/// scib-metrics' isolated-label score: the labels present in the fewest batches; for each,
/// the mean over its cells of the rescaled `(s + 1)/2` label silhouette computed on all
/// cells; the mean over those labels.
pub fn isolated_labels<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    one_per_cell(batches, labels.len(), "batches")?;
    let silhouettes = label_silhouettes(embedding, dims, labels)?;
    Ok(isolated_labels_of(&silhouettes, labels, batches))
}

/// [`isolated_labels`] from the per-cell label silhouettes.
pub(crate) fn isolated_labels_of(silhouettes: &[f64], labels: &[u32], batches: &[u32]) -> f64 {
    let all = sorted_distinct(labels);
    let batch_count = |label: u32| {
        let in_label: Vec<u32> = (0..labels.len())
            .filter(|&i| labels[i] == label)
            .map(|i| batches[i])
            .collect();
        distinct(&in_label)
    };
    let counts: Vec<usize> = all.iter().map(|&l| batch_count(l)).collect();
    let fewest = *counts.iter().min().expect("labels present");
    let scores: Vec<f64> = all
        .iter()
        .zip(&counts)
        .filter(|(_, &c)| c == fewest)
        .map(|(&label, _)| {
            let cells: Vec<f64> = (0..labels.len())
                .filter(|&i| labels[i] == label)
                .map(|i| silhouettes[i])
                .collect();
            rescaled_mean(&cells)
        })
        .collect();
    mean(&scores)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}
