//! Silhouette widths (ASW) by label and by batch, BRAS and the isolated-label score, with
//! scib-metrics' definitions and rescalings.

use std::ops::Range;

use rayon::prelude::*;

use crate::error::{Error, Result};
use diffbio_pairwise::{dispatch, lane_sum, Vectorised};

use crate::embedding::{Embedding, EmbeddingValue};
use crate::knn::{check_k, knn_of_cells_with, KnnGraph};
use crate::labels::{at_least_two, dense, distinct, one_per_cell, sorted_distinct, Dense};
use crate::pairwise::{centred_points, visit_pairs, Cells, PairVisitor, Tile};
use crate::progress::{Progress, Silent};

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
/// Euclidean: all pairs, by tiled matrix products in f32 (O(n²·d) time; each distance
/// within a relative few 10⁻⁷ of the f64 one, the sums in f64), cells visited in the order
/// of their labels so that each sum is over runs of cells. Cosine: the mean
/// cosine distance to a cluster is `1 − x̂_i·mean(x̂_j)`, so per-cluster sums of unit
/// vectors give it in O(n·clusters·d). Memory O(n·d) either way.
///
/// ```
/// use diffbio_metrics::{silhouette_samples, Between, Distance};
/// let x = [0.0f32, 1.0, 10.0, 11.0]; // d = 1: two tight clusters
/// let s = silhouette_samples(&x, 1, &[0, 0, 1, 1], Distance::Euclidean, Between::Nearest).unwrap();
/// assert!((s[0] - (10.5 - 1.0) / 10.5).abs() < 1e-12);
/// ```
pub fn silhouette_samples<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    distance: Distance,
    between: Between,
) -> Result<Vec<f64>> {
    silhouette_samples_of(Embedding::new(embedding, dims)?, labels, distance, between)
}

/// [`silhouette_samples`] of a checked embedding.
fn silhouette_samples_of<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    labels: &[u32],
    distance: Distance,
    between: Between,
) -> Result<Vec<f64>> {
    let dims = embedding.dims();
    one_per_cell(labels, embedding.n(), "labels")?;
    let clusters = Clusters::new(labels);
    let labels = &clusters.labels;
    Ok(match distance {
        Distance::Euclidean => {
            let points = centred_points(embedding);
            let cells = Cells::by_label(&points, labels);
            let blocks = visit_pairs(&cells, &clusters.distance_sums(&cells), &Silent);
            clusters.silhouettes(&cells, blocks, between)
        }
        Distance::Cosine => {
            let units: Vec<f64> = embedding
                .rows()
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
        let Dense { codes, count } = dense(labels);
        let labels: &[u32] = &codes;
        let mut sizes = vec![0usize; count];
        labels.iter().for_each(|&l| sizes[l as usize] += 1);
        Self {
            labels: labels.iter().map(|&l| l as usize).collect(),
            sizes,
        }
    }

    /// The pass that sums every cell's distances to each cluster, over `cells` ordered by
    /// these labels ([`Cells::by_label`]).
    fn distance_sums(&self, cells: &Cells) -> ClusterDistanceSums {
        ClusterDistanceSums {
            labels: cells.order().iter().map(|&i| self.labels[i]).collect(),
            clusters: self.sizes.len(),
        }
    }

    /// The silhouettes of every cell from the blocks of a [`ClusterDistanceSums`] pass
    /// over `cells`.
    fn silhouettes(&self, cells: &Cells, blocks: Vec<Vec<f64>>, between: Between) -> Vec<f64> {
        let clusters = self.sizes.len();
        let mut silhouettes = vec![0.0; self.labels.len()];
        let mut positions = cells.order().iter();
        let mut sums = vec![0.0; clusters];
        for block in blocks {
            let len = block.len() / clusters;
            for (t, &i) in (0..len).zip(positions.by_ref()) {
                sums.iter_mut()
                    .zip(block.iter().skip(t).step_by(len))
                    .for_each(|(s, &b)| *s = b);
                silhouettes[i] = self.silhouette(i, &sums, between);
            }
        }
        silhouettes
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

/// Every cell's Euclidean distances to the cells of each cluster, summed, over cells in
/// the order of their clusters: per block, `sums[c · len + t]` for cluster c and the
/// block's cell t.
struct ClusterDistanceSums {
    /// The cluster of each position.
    labels: Vec<usize>,
    clusters: usize,
}

impl PairVisitor<f32> for ClusterDistanceSums {
    type Block = Vec<f64>;

    fn block(&self, positions: Range<usize>) -> Vec<f64> {
        vec![0.0; positions.len() * self.clusters]
    }

    fn visit(&self, rows: &mut Vec<f64>, columns: Option<&mut Vec<f64>>, tile: &mut Tile<f32>) {
        let mut start = 0;
        let runs: Vec<(usize, Range<usize>)> = self.labels[tile.columns.clone()]
            .chunk_by(|a, b| a == b)
            .map(|run| {
                start += run.len();
                (run[0], start - run.len()..start)
            })
            .collect();
        dispatch(TileDistanceSums {
            labels: &self.labels,
            runs: &runs,
            rows,
            columns,
            tile,
        });
    }
}

/// Adds a tile's distances to the per-cluster sums of its row cells (a sum per run of
/// columns of one cluster) and, off the diagonal, of its column cells.
struct TileDistanceSums<'a> {
    labels: &'a [usize],
    runs: &'a [(usize, Range<usize>)],
    rows: &'a mut [f64],
    columns: Option<&'a mut Vec<f64>>,
    tile: &'a Tile<'a, f32>,
}

impl Vectorised for TileDistanceSums<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            labels,
            runs,
            rows,
            mut columns,
            tile,
        } = self;
        let (height, width) = (tile.rows.len(), tile.columns.len());
        let mut roots = vec![0.0f32; width];
        for (a, (p, distances)) in tile.rows().enumerate() {
            // Square roots in one vectorised pass, then summed per cluster.
            for (root, &d2) in roots.iter_mut().zip(distances) {
                *root = d2.sqrt();
            }
            match columns.as_deref_mut() {
                None => roots[a] = 0.0, // the diagonal tile: cell p itself
                Some(columns) => columns[labels[p] * width..][..width]
                    .iter_mut()
                    .zip(&roots)
                    .for_each(|(sum, &root)| *sum += f64::from(root)),
            }
            for (c, run) in runs {
                rows[c * height + a] += lane_sum(&roots[run.clone()]);
            }
        }
    }
}

/// scib-metrics' `silhouette_label`: `(mean Euclidean silhouette of the labels + 1) / 2`.
pub fn silhouette_label<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
) -> Result<f64> {
    Ok(rescaled_mean(&label_silhouettes(
        Embedding::new(embedding, dims)?,
        labels,
    )?))
}

/// The per-cell Euclidean silhouettes of at least two labels.
pub(crate) fn label_silhouettes<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    labels: &[u32],
) -> Result<Vec<f64>> {
    at_least_two(labels, "labels")?;
    silhouette_samples_of(embedding, labels, Distance::Euclidean, Between::Nearest)
}

/// The exact kNN graph (k neighbours) and the per-cell Euclidean label silhouettes from one
/// pass over all pairs of cells (each pair's distance serves both).
pub(crate) fn knn_and_label_silhouettes<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    k: usize,
    labels: &[u32],
    progress: &dyn Progress,
) -> Result<(KnnGraph, Vec<f64>)> {
    let n = embedding.n();
    check_k(k, n)?;
    one_per_cell(labels, n, "labels")?;
    at_least_two(labels, "labels")?;
    let clusters = Clusters::new(labels);
    let points = centred_points(embedding);
    let cells = Cells::by_label(&points, &clusters.labels);
    let (graph, blocks) = knn_of_cells_with(&cells, k, &clusters.distance_sums(&cells), progress);
    Ok((
        graph,
        clusters.silhouettes(&cells, blocks, Between::Nearest),
    ))
}

/// `(mean + 1) / 2` of silhouettes.
pub(crate) fn rescaled_mean(silhouettes: &[f64]) -> f64 {
    (mean(silhouettes) + 1.0) / 2.0
}

/// scib-metrics' `silhouette_batch`: within each label, `1 − |silhouette of the batches|`
/// per cell (Euclidean, nearest), averaged per label, then over labels. Labels present in
/// one batch only, or with one cell per batch, are skipped; when every label is,
/// [`Error::Undefined`].
pub fn silhouette_batch<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    silhouette_batch_of(Embedding::new(embedding, dims)?, labels, batches)
}

/// [`silhouette_batch`] of a checked embedding.
pub(crate) fn silhouette_batch_of<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    batch_silhouette(
        "silhouette_batch",
        embedding,
        labels,
        batches,
        Distance::Euclidean,
        Between::Nearest,
    )
}

/// BRAS (Rautenstrauch et al. 2025), the batch score of scib-metrics' Benchmarker:
/// [`silhouette_batch`] with cosine distance and the mean distance to all other batches.
pub fn bras<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    bras_of(Embedding::new(embedding, dims)?, labels, batches)
}

/// [`bras`] of a checked embedding.
pub(crate) fn bras_of<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    batch_silhouette(
        "bras",
        embedding,
        labels,
        batches,
        Distance::Cosine,
        Between::MeanOther,
    )
}

/// The mean over cell types of `1 − |s|` of the batch silhouettes within each type, of the
/// types whose cells are in more than one batch and not each in a batch of its own; when no
/// type is, [`Error::Undefined`] for `metric`.
fn batch_silhouette<T: EmbeddingValue>(
    metric: &'static str,
    embedding: Embedding<'_, T>,
    labels: &[u32],
    batches: &[u32],
    distance: Distance,
    between: Between,
) -> Result<f64> {
    let (n, dims) = (embedding.n(), embedding.dims());
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
        let sub = embedding.gather(&cells);
        let sub = Embedding::of_checked(&sub, dims);
        let s = silhouette_samples_of(sub, &sub_batches, distance, between)?;
        let scores: Vec<f64> = s.iter().map(|v| 1.0 - v.abs()).collect();
        per_label.push(mean(&scores));
    }
    if per_label.is_empty() {
        return Err(Error::Undefined {
            metric,
            reason: format!(
                "none of the {} cell types has its cells in 2 or more batches without each \
                 cell in a batch of its own ({} cells in {} batches)",
                distinct(labels),
                n,
                distinct(batches)
            ),
        });
    }
    Ok(mean(&per_label))
}

/// scib-metrics' isolated-label score: the labels present in the fewest batches; for each,
/// the mean over its cells of the rescaled `(s + 1)/2` label silhouette computed on all
/// cells; the mean over those labels.
pub fn isolated_labels<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    one_per_cell(batches, labels.len(), "batches")?;
    let silhouettes = label_silhouettes(Embedding::new(embedding, dims)?, labels)?;
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
