//! Silhouette widths (ASW) by label and by batch, BRAS and the isolated-label score, with
//! scib-metrics' definitions and rescalings.

use std::ops::Range;

use rayon::prelude::*;

use crate::error::{Error, Result};
use diffbio_pairwise::{dispatch, lane_sum, parts, Vectorised, LANES};

use crate::embedding::{Embedding, EmbeddingValue};
use crate::knn::{check_k, knn_of_cells_with, KnnGraph};
use crate::labels::{at_least_two, dense, distinct, one_per_cell, sorted_distinct, Dense};
use crate::pairwise::{centred_points, visit_pairs, Cells, PairVisitor, Tile, BLOCK};
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
/// within a relative few 10⁻⁷ of the f64 one, summed in f32 over a few tens of cells at
/// most, then in f64), cells visited in the order
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
            let sums = clusters.distance_sums(&cells, None);
            let blocks = visit_pairs(&cells, &sums, &Silent);
            let mut silhouettes = vec![0.0; labels.len()];
            sums.per_cell(&cells, blocks, |i, sums| {
                silhouettes[i] = clusters.silhouette(i, sums, between)
            });
            silhouettes
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
    /// these labels ([`Cells::by_label`]); with `within`, also to each batch of the cell's
    /// own cluster, the cells then ordered by batch inside each cluster
    /// ([`BatchesWithin::order`]).
    fn distance_sums(&self, cells: &Cells, within: Option<&BatchesWithin>) -> ClusterDistanceSums {
        let at_positions = |of: &[usize]| cells.order().iter().map(|&i| of[i]).collect();
        ClusterDistanceSums {
            labels: at_positions(&self.labels),
            clusters: self.sizes.len(),
            batches: within.map(|within| (at_positions(&within.batches), within.count)),
        }
    }

    /// The silhouette of cell i from its summed distances to every cluster.
    fn silhouette(&self, i: usize, sums: &[f64], between: Between) -> f64 {
        silhouette(self.labels[i], &self.sizes, sums, between)
    }
}

/// The silhouette of a cell of cluster `own` from its summed distances `sums` to the
/// clusters of `sizes` cells (empty clusters ignored); 0 in a singleton cluster.
fn silhouette(own: usize, sizes: &[usize], sums: &[f64], between: Between) -> f64 {
    if sizes[own] < 2 {
        return 0.0;
    }
    let a = sums[own] / (sizes[own] - 1) as f64;
    let others = (0..sizes.len()).filter(|&c| c != own && sizes[c] > 0);
    let b = match between {
        Between::Nearest => others
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min),
        Between::MeanOther => {
            let n: usize = sizes.iter().sum();
            others.map(|c| sums[c]).sum::<f64>() / (n - sizes[own]) as f64
        }
    };
    let s = (b - a) / a.max(b);
    if s.is_finite() {
        s
    } else {
        0.0
    }
}

/// The batches inside each cluster: the groups of scib's batch silhouette, whose distance
/// sums the clusters' pass over all pairs adds up at the same time.
struct BatchesWithin {
    /// The batch of each cell, `0..count`.
    batches: Vec<usize>,
    count: usize,
    /// `sizes[cluster · count + batch]`: the cells of each batch in each cluster.
    sizes: Vec<usize>,
}

impl BatchesWithin {
    fn new(clusters: &Clusters, batches: &[u32]) -> Self {
        let Dense { codes, count } = dense(batches);
        let batches: Vec<usize> = codes.iter().map(|&b| b as usize).collect();
        let mut sizes = vec![0usize; clusters.sizes.len() * count];
        for (&c, &b) in clusters.labels.iter().zip(&batches) {
            sizes[c * count + b] += 1;
        }
        Self {
            batches,
            count,
            sizes,
        }
    }

    /// Keys that order cells by cluster, then batch ([`Cells::by_label`]'s labels).
    fn order(&self, clusters: &Clusters) -> Vec<usize> {
        clusters
            .labels
            .iter()
            .zip(&self.batches)
            .map(|(&c, &b)| c * self.count + b)
            .collect()
    }

    /// The Euclidean batch silhouette of cell i of `cluster` from its summed distances to
    /// each batch of that cluster.
    fn silhouette(&self, i: usize, cluster: usize, sums: &[f64]) -> f64 {
        let sizes = &self.sizes[cluster * self.count..][..self.count];
        silhouette(self.batches[i], sizes, sums, Between::Nearest)
    }
}

/// Every cell's Euclidean distances to the cells of each cluster, summed, over cells in
/// the order of their clusters; with batches, also to the cells of each batch of its own
/// cluster (cells in batch order inside each cluster). Per block of `len` cells,
/// `sums[c · len + t]` for cluster c and the block's cell t, then
/// `sums[(clusters + b) · len + t]` for batch b.
struct ClusterDistanceSums {
    /// The cluster of each position.
    labels: Vec<usize>,
    clusters: usize,
    /// The batch of each position and the number of batches.
    batches: Option<(Vec<usize>, usize)>,
}

impl ClusterDistanceSums {
    /// The sums of each cell: one per cluster, then one per batch.
    fn width(&self) -> usize {
        self.clusters + self.batches.as_ref().map_or(0, |(_, count)| *count)
    }

    /// `f(cell, sums)` for every cell, from the blocks of this pass over `cells`: its
    /// [`Self::width`] sums, per cluster then per batch.
    fn per_cell(&self, cells: &Cells, blocks: Vec<Vec<f64>>, mut f: impl FnMut(usize, &[f64])) {
        let width = self.width();
        let mut positions = cells.order().iter();
        let mut sums = vec![0.0; width];
        for block in blocks {
            let len = block.len() / width;
            for (t, &i) in (0..len).zip(positions.by_ref()) {
                sums.iter_mut()
                    .zip(block.iter().skip(t).step_by(len))
                    .for_each(|(s, &b)| *s = b);
                f(i, &sums);
            }
        }
    }
}

/// Consecutive cells of a tile (rows or columns, by their index in the tile) in one cluster
/// and (with batches) one batch.
struct Run {
    cluster: usize,
    batch: Option<usize>,
    cells: Range<usize>,
}

impl ClusterDistanceSums {
    /// The [`Run`]s of the cells at `positions`.
    fn runs(&self, positions: Range<usize>) -> Vec<Run> {
        let batch_of = self.batches.as_ref().map(|(of, _)| of.as_slice());
        let mut runs: Vec<Run> = Vec::new();
        for (t, q) in positions.enumerate() {
            let (cluster, batch) = (self.labels[q], batch_of.map(|of| of[q]));
            match runs.last_mut() {
                Some(run) if run.cluster == cluster && run.batch == batch => run.cells.end += 1,
                _ => runs.push(Run {
                    cluster,
                    batch,
                    cells: t..t + 1,
                }),
            }
        }
        runs
    }
}

impl PairVisitor<f32> for ClusterDistanceSums {
    type Block = Vec<f64>;

    fn block(&self, positions: Range<usize>) -> Vec<f64> {
        vec![0.0; positions.len() * self.width()]
    }

    fn visit(&self, rows: &mut Vec<f64>, columns: Option<&mut Vec<f64>>, tile: &mut Tile<f32>) {
        dispatch(TileDistanceSums {
            clusters: self.clusters,
            row_runs: &self.runs(tile.rows.clone()),
            column_runs: &self.runs(tile.columns.clone()),
            rows,
            columns,
            tile,
        });
    }
}

/// Rows of one cluster and batch whose distances to a column cell are summed in f32 before
/// they are added to its f64 sums: at most as many terms as each of the row side's f32
/// partial sums holds ([`lane_sum`] over a run of at most [`BLOCK`] columns).
const COLUMN_PARTIAL_ROWS: usize = BLOCK / LANES;

/// Adds a tile's distances to the per-cluster (and per-batch) sums of its row cells (a sum
/// per run of columns) and, off the diagonal, of its column cells (a sum per part of
/// [`COLUMN_PARTIAL_ROWS`] rows of a run of rows).
struct TileDistanceSums<'a> {
    clusters: usize,
    row_runs: &'a [Run],
    column_runs: &'a [Run],
    rows: &'a mut [f64],
    columns: Option<&'a mut Vec<f64>>,
    tile: &'a Tile<'a, f32>,
}

impl Vectorised for TileDistanceSums<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            clusters,
            row_runs,
            column_runs,
            rows,
            mut columns,
            tile,
        } = self;
        let (height, width) = (tile.rows.len(), tile.columns.len());
        let mut roots = vec![0.0f32; width];
        // The column side: each column's distances to a part's rows, in f32.
        let mut partial = vec![0.0f32; width];
        for row_run in row_runs {
            for part in parts(row_run.cells.clone(), COLUMN_PARTIAL_ROWS) {
                for a in part {
                    let distances = tile.row(tile.rows.start + a);
                    match columns.as_deref_mut() {
                        None => {
                            for (root, &d2) in roots.iter_mut().zip(distances) {
                                *root = d2.sqrt();
                            }
                            roots[a] = 0.0; // the diagonal tile: the cell itself
                        }
                        Some(_) => {
                            // Square roots in one vectorised pass, added to the partials.
                            let pairs = roots.iter_mut().zip(&mut partial);
                            for ((root, sum), &d2) in pairs.zip(distances) {
                                *root = d2.sqrt();
                                *sum += *root;
                            }
                        }
                    }
                    for run in column_runs {
                        let sum = lane_sum(&roots[run.cells.clone()]);
                        rows[run.cluster * height + a] += sum;
                        if let Some(batch) = run.batch.filter(|_| run.cluster == row_run.cluster) {
                            rows[(clusters + batch) * height + a] += sum;
                        }
                    }
                }
                if let Some(columns) = columns.as_deref_mut() {
                    let add = |sums: &mut [f64], partial: &[f32]| {
                        sums.iter_mut()
                            .zip(partial)
                            .for_each(|(sum, &p)| *sum += f64::from(p))
                    };
                    add(&mut columns[row_run.cluster * width..][..width], &partial);
                    if let Some(batch) = row_run.batch {
                        let sums = &mut columns[(clusters + batch) * width..][..width];
                        for run in column_runs
                            .iter()
                            .filter(|run| run.cluster == row_run.cluster)
                        {
                            add(&mut sums[run.cells.clone()], &partial[run.cells.clone()]);
                        }
                    }
                    partial.fill(0.0);
                }
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

/// The Euclidean silhouettes of one pass over all pairs of cells.
pub(crate) struct Silhouettes {
    /// Every cell's silhouette of the labels.
    pub labels: Vec<f64>,
    /// [`silhouette_batch`], or why it is undefined on these cells.
    pub batch: Result<f64>,
}

/// The per-cell label silhouettes and [`silhouette_batch`] from one pass over all pairs of
/// cells: each cell's distances are summed per label and, inside its own label, per batch
/// (the cells in the order of their labels, then batches). The batch silhouettes' f32
/// distances are then those of points centred on all cells, as the label silhouettes',
/// rather than on each label's: larger norms, larger rounding. On a few hundred cells the
/// score can move by 10⁻⁸ from [`silhouette_batch`]'s (both stay within 10⁻⁷ of f64
/// distances, tested); on the 100,000-cell benchmark it moved by 1.1·10⁻¹⁰.
pub(crate) fn silhouettes<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    labels: &[u32],
    batches: &[u32],
) -> Result<Silhouettes> {
    let pass = |cells: &Cells, sums: &ClusterDistanceSums| ((), visit_pairs(cells, sums, &Silent));
    Ok(silhouettes_with(embedding, labels, batches, pass)?.1)
}

/// The exact kNN graph (k neighbours) and the [`silhouettes`] from one pass over all pairs of
/// cells (each pair's distance serves both).
pub(crate) fn knn_and_silhouettes<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    k: usize,
    labels: &[u32],
    batches: &[u32],
    progress: &dyn Progress,
) -> Result<(KnnGraph, Silhouettes)> {
    check_k(k, embedding.n())?;
    silhouettes_with(embedding, labels, batches, |cells, sums| {
        knn_of_cells_with(cells, k, sums, progress)
    })
}

/// The [`silhouettes`] from `pass`, a pass over all pairs of `cells` that visits the
/// distance sums (and returns what else it computes, with the sums' blocks).
fn silhouettes_with<T: EmbeddingValue, R>(
    embedding: Embedding<'_, T>,
    labels: &[u32],
    batches: &[u32],
    pass: impl FnOnce(&Cells, &ClusterDistanceSums) -> (R, Vec<Vec<f64>>),
) -> Result<(R, Silhouettes)> {
    let n = embedding.n();
    one_per_cell(labels, n, "labels")?;
    one_per_cell(batches, n, "batches")?;
    at_least_two(labels, "labels")?;
    let clusters = Clusters::new(labels);
    let within = BatchesWithin::new(&clusters, batches);
    let points = centred_points(embedding);
    let cells = Cells::by_label(&points, &within.order(&clusters));
    let sums = clusters.distance_sums(&cells, Some(&within));
    let (result, blocks) = pass(&cells, &sums);
    let (mut by_label, mut by_batch) = (vec![0.0; n], vec![0.0; n]);
    sums.per_cell(&cells, blocks, |i, sums| {
        let (to_clusters, to_batches) = sums.split_at(clusters.sizes.len());
        by_label[i] = clusters.silhouette(i, to_clusters, Between::Nearest);
        by_batch[i] = within.silhouette(i, clusters.labels[i], to_batches);
    });
    let batch = batch_score("silhouette_batch", labels, batches, |cells, _| {
        Ok(mean_mixing(cells.iter().map(|&i| by_batch[i])))
    });
    Ok((
        result,
        Silhouettes {
            labels: by_label,
            batch,
        },
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

/// The mean over cell types of `1 − |s|` of the batch silhouettes within each type
/// ([`batch_score`]), each type's computed on its own cells.
fn batch_silhouette<T: EmbeddingValue>(
    metric: &'static str,
    embedding: Embedding<'_, T>,
    labels: &[u32],
    batches: &[u32],
    distance: Distance,
    between: Between,
) -> Result<f64> {
    let n = embedding.n();
    one_per_cell(labels, n, "labels")?;
    one_per_cell(batches, n, "batches")?;
    batch_score(metric, labels, batches, |cells, sub_batches| {
        let sub = embedding.gather(cells);
        let sub = Embedding::of_checked(&sub, embedding.dims());
        let s = silhouette_samples_of(sub, sub_batches, distance, between)?;
        Ok(mean_mixing(s.into_iter()))
    })
}

/// The mean over cell types of `per_type(cells, their batches)` (the type's cells
/// ascending), of the types whose cells are in more than one batch and not each in a batch
/// of its own; when no type is, [`Error::Undefined`] for `metric`.
fn batch_score(
    metric: &'static str,
    labels: &[u32],
    batches: &[u32],
    mut per_type: impl FnMut(&[usize], &[u32]) -> Result<f64>,
) -> Result<f64> {
    at_least_two(batches, "batches")?;
    let n = labels.len();
    let mut per_label = Vec::new();
    for label in sorted_distinct(labels) {
        let cells: Vec<usize> = (0..n).filter(|&i| labels[i] == label).collect();
        let sub_batches: Vec<u32> = cells.iter().map(|&i| batches[i]).collect();
        let n_batches = distinct(&sub_batches);
        if n_batches == 1 || n_batches == cells.len() {
            continue;
        }
        per_label.push(per_type(&cells, &sub_batches)?);
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

/// The mean of `1 − |s|` over batch silhouettes s.
fn mean_mixing(silhouettes: impl Iterator<Item = f64>) -> f64 {
    let scores: Vec<f64> = silhouettes.map(|s| 1.0 - s.abs()).collect();
    mean(&scores)
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

#[cfg(test)]
mod tests {
    use diffbio_testing::Rng;

    use super::{knn_and_silhouettes, label_silhouettes, silhouette_batch_of, silhouettes};
    use crate::embedding::Embedding;
    use crate::error::Error;
    use crate::knn::knn_of;
    use crate::progress::Silent;

    /// Cells around `types` centres, each type's batches shifted apart; type 0 in batch 7
    /// only (skipped by the batch score), batch codes sparse.
    fn typed_cells(
        seed: u64,
        n: usize,
        dims: usize,
        types: usize,
    ) -> (Vec<f64>, Vec<u32>, Vec<u32>) {
        let mut rng = Rng::new(seed);
        let codes = [7u32, 40, 4_000_000_000];
        let labels: Vec<u32> = (0..n).map(|_| rng.below(types) as u32).collect();
        let batches: Vec<u32> = labels
            .iter()
            .map(|&l| {
                if l == 0 {
                    codes[0]
                } else {
                    codes[rng.below(3)]
                }
            })
            .collect();
        let x = labels
            .iter()
            .zip(&batches)
            .flat_map(|(&l, &b)| {
                let shift = (b % 5) as f64 * 0.7;
                (0..dims)
                    .map(|c| if c % types == l as usize { 6.0 } else { 0.0 } + shift + rng.normal())
                    .collect::<Vec<_>>()
            })
            .collect();
        (x, labels, batches)
    }

    /// The one pass's label silhouettes equal the labels' own pass, its batch score and
    /// [`super::silhouette_batch`]'s per-type passes that of f64 distances, to the f32
    /// distances' rounding; with the kNN graph, the same silhouettes bitwise and the graph
    /// of the plain kNN pass.
    #[test]
    fn one_pass_silhouettes_equal_the_separate_passes() {
        for (seed, n, dims, types) in [(1, 90, 3, 2), (2, 700, 5, 4), (3, 1300, 16, 6)] {
            let (x, labels, batches) = typed_cells(seed, n, dims, types);
            let embedding = Embedding::new(&x, dims).unwrap();
            let fused = silhouettes(embedding, &labels, &batches).unwrap();
            let alone = label_silhouettes(embedding, &labels).unwrap();
            for (f, a) in fused.labels.iter().zip(&alone) {
                assert!((f - a).abs() <= 1e-7, "{seed}: label silhouette {f} vs {a}");
            }
            let fused_batch = fused.batch.unwrap();
            let per_type = silhouette_batch_of(embedding, &labels, &batches).unwrap();
            let exact = exact_batch_score(&x, dims, &labels, &batches);
            for score in [fused_batch, per_type] {
                assert!((score - exact).abs() <= 1e-7, "{seed}: {score} vs {exact}");
            }
            let (graph, with_graph) =
                knn_and_silhouettes(embedding, 10, &labels, &batches, &Silent).unwrap();
            assert_eq!(graph, knn_of(embedding, 10, &Silent).unwrap());
            assert_eq!(with_graph.labels, fused.labels);
            assert_eq!(with_graph.batch.unwrap(), fused_batch);
        }
    }

    /// scib's batch silhouette with f64 distances, pair by pair.
    fn exact_batch_score(x: &[f64], dims: usize, labels: &[u32], batches: &[u32]) -> f64 {
        let n = labels.len();
        let distance = |i: usize, j: usize| {
            x[i * dims..][..dims]
                .iter()
                .zip(&x[j * dims..][..dims])
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt()
        };
        let mut per_type = Vec::new();
        for label in crate::labels::sorted_distinct(labels) {
            let cells: Vec<usize> = (0..n).filter(|&i| labels[i] == label).collect();
            let kinds = crate::labels::sorted_distinct(
                &cells.iter().map(|&i| batches[i]).collect::<Vec<_>>(),
            );
            if kinds.len() == 1 || kinds.len() == cells.len() {
                continue;
            }
            let scores: Vec<f64> = cells
                .iter()
                .map(|&i| {
                    let mean_to = |b: u32| {
                        let others: Vec<usize> = cells
                            .iter()
                            .copied()
                            .filter(|&j| j != i && batches[j] == b)
                            .collect();
                        (
                            others.iter().map(|&j| distance(i, j)).sum::<f64>()
                                / others.len() as f64,
                            others.len(),
                        )
                    };
                    let (a, own) = mean_to(batches[i]);
                    if own == 0 {
                        return 1.0;
                    }
                    let b = kinds
                        .iter()
                        .filter(|&&b| b != batches[i])
                        .map(|&b| mean_to(b).0)
                        .fold(f64::INFINITY, f64::min);
                    1.0 - ((b - a) / a.max(b)).abs()
                })
                .collect();
            per_type.push(super::mean(&scores));
        }
        super::mean(&per_type)
    }

    #[test]
    fn one_pass_silhouettes_report_bad_batches() {
        let (x, labels, batches) = typed_cells(4, 60, 2, 3);
        let embedding = Embedding::new(&x, 2).unwrap();
        let short = silhouettes(embedding, &labels, &batches[1..]).err();
        assert!(matches!(
            short,
            Some(Error::LengthMismatch {
                input: "batches",
                ..
            })
        ));
        // One batch: the label silhouettes stand, the batch score is an error of its own.
        let one = silhouettes(embedding, &labels, &vec![3; 60]).unwrap();
        assert_eq!(one.labels, label_silhouettes(embedding, &labels).unwrap());
        assert!(matches!(
            one.batch,
            Err(Error::TooFewLabels {
                input: "batches",
                ..
            })
        ));
        // Every type in one batch of its own: undefined, as silhouette_batch.
        let own = silhouettes(embedding, &labels, &labels).unwrap();
        assert!(matches!(
            own.batch,
            Err(Error::Undefined {
                metric: "silhouette_batch",
                ..
            })
        ));
    }
}
