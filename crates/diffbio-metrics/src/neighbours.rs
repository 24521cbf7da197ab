//! Exact k-nearest-neighbour graphs and the neighbourhood metrics computed from them.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pairwise::Points;

/// The exact k nearest neighbours of every cell (self excluded), by squared Euclidean
/// distance with ties broken by the smaller index; distances are reported Euclidean.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnGraph {
    k: usize,
    indices: Vec<usize>,
    distances: Vec<f64>,
}

impl KnnGraph {
    /// Number of cells.
    pub fn n(&self) -> usize {
        self.indices.len() / self.k
    }

    /// Neighbours per cell.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The neighbours of cell `i`, nearest first.
    pub fn neighbors(&self, i: usize) -> &[usize] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }

    /// The Euclidean distances to [`Self::neighbors`], ascending.
    pub fn distances(&self, i: usize) -> &[f64] {
        &self.distances[i * self.k..(i + 1) * self.k]
    }

    /// The graph restricted to each cell's `k` nearest (a prefix of every row).
    pub fn truncate(&self, k: usize) -> Result<Self> {
        if k == 0 || k > self.k {
            return Err(Error::InvalidK { k, n: self.n() });
        }
        fn prefixes<T: Copy>(rows: &[T], width: usize, k: usize) -> Vec<T> {
            rows.chunks(width)
                .flat_map(|r| r[..k].iter().copied())
                .collect()
        }
        Ok(Self {
            k,
            indices: prefixes(&self.indices, self.k, k),
            distances: prefixes(&self.distances, self.k, k),
        })
    }
}

/// Exact kNN graph of a row-major `[n × dims]` embedding (f32 or f64), in parallel over
/// tiles of cells. Squared distances come from matrix products in f64
/// (`|x|² + |y|² − 2 x·y`, on centred points), which keep each cell's `k + 8` best
/// candidates; those are re-measured in the direct form `Σ (x_i − x_j)²` and ordered by
/// (distance, index). When the candidates' margin is smaller than the products' rounding
/// bound, the cell's row is redone in the direct form, so the result is the exact graph.
/// O(n²·d) time, O(n·(d + k)) memory. Errors: a length that is not a multiple of `dims`,
/// k outside 1..n−1, non-finite values.
///
/// ```
/// use diffbio_metrics::knn;
/// let x = [0.0f32, 0.0, 1.0, 0.0, 5.0, 0.0]; // three cells on a line, d = 2
/// let g = knn(&x, 2, 1).unwrap();
/// assert_eq!(g.neighbors(0), &[1]);
/// assert_eq!(g.neighbors(2), &[1]);
/// assert_eq!(g.distances(2), &[4.0]);
/// ```
pub fn knn<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    k: usize,
) -> Result<KnnGraph> {
    let n = check_finite_matrix(embedding, dims)?;
    if k == 0 || k >= n {
        return Err(Error::InvalidK { k, n });
    }
    Ok(knn_of_points(&Points::centred(embedding, dims), k))
}

/// Extra candidates kept per cell beyond k, re-measured exactly.
const CANDIDATE_MARGIN: usize = 8;

/// The exact kNN graph of checked points (1 ≤ k < n).
pub(crate) fn knn_of_points(points: &Points, k: usize) -> KnnGraph {
    knn_of_points_with(points, k, || (), |_, _, _, _| {}, |_, _| ()).0
}

/// The exact kNN graph of checked points (1 ≤ k < n) and, from the same pass over all
/// pairs, one result per cell: `visit(state, i, j0, tile_row)` for every tile row as in
/// [`Points::map_rows`] (the cell itself included), then `finish(i, state)`.
pub(crate) fn knn_of_points_with<S, R: Send>(
    points: &Points,
    k: usize,
    init: impl Fn() -> S + Sync,
    visit: impl Fn(&mut S, usize, usize, &[f64]) + Sync,
    finish: impl Fn(usize, S) -> R + Sync,
) -> (KnnGraph, Vec<R>) {
    let keep = k + CANDIDATE_MARGIN;
    let rows = points.map_rows(
        || (Candidates::new(keep), init()),
        |(candidates, state), i, j0, tile_row| {
            candidates.offer_row(j0, tile_row, i);
            visit(state, i, j0, tile_row);
        },
        |i, (candidates, state)| {
            (
                exact_row(points, i, k, candidates.finish()),
                finish(i, state),
            )
        },
    );
    let mut indices = Vec::with_capacity(points.n() * k);
    let mut distances = Vec::with_capacity(points.n() * k);
    let mut results = Vec::with_capacity(points.n());
    for (row, result) in rows {
        for (d2, j) in row {
            indices.push(j);
            distances.push(d2.sqrt());
        }
        results.push(result);
    }
    let graph = KnnGraph {
        k,
        indices,
        distances,
    };
    (graph, results)
}

/// The k best of a row's candidates by exact distance, or the whole row redone exactly
/// when a non-candidate could still be within rounding of the k-th.
fn exact_row(points: &Points, i: usize, k: usize, approx: Vec<(f64, usize)>) -> Vec<(f64, usize)> {
    let cutoff = approx.iter().map(|c| c.0).fold(f64::NEG_INFINITY, f64::max);
    let complete = approx.len() == points.n() - 1;
    let mut exact: Vec<(f64, usize)> = approx
        .iter()
        .map(|&(_, j)| (points.direct_sq_distance(i, j), j))
        .collect();
    exact.sort_unstable_by(by_distance_then_index);
    exact.truncate(k);
    let kth = exact[k - 1].0;
    if complete || kth < cutoff - points.tile_error_bound(i) {
        return exact;
    }
    let mut all: Vec<(f64, usize)> = (0..points.n())
        .filter(|&j| j != i)
        .map(|j| (points.direct_sq_distance(i, j), j))
        .collect();
    all.select_nth_unstable_by(k - 1, by_distance_then_index);
    all.truncate(k);
    all.sort_unstable_by(by_distance_then_index);
    all
}

fn by_distance_then_index(a: &(f64, usize), b: &(f64, usize)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// The `keep` smallest (distance, index) pairs offered, in amortised O(1) per offer: a
/// buffer that is cut back to `keep` whenever it doubles, raising the admission bar.
struct Candidates {
    keep: usize,
    bar: f64,
    pairs: Vec<(f64, usize)>,
}

impl Candidates {
    fn new(keep: usize) -> Self {
        Self {
            keep,
            bar: f64::INFINITY,
            pairs: Vec::with_capacity(2 * keep),
        }
    }

    /// Offers `j0 + t` at `row[t]` for every t but `skip` (the cell itself).
    #[inline(always)]
    fn offer_row(&mut self, j0: usize, row: &[f64], skip: usize) {
        for (t, &d2) in row.iter().enumerate() {
            // Most pairs fail the bar: one well-predicted comparison each.
            if d2 <= self.bar && j0 + t != skip {
                self.pairs.push((d2, j0 + t));
                if self.pairs.len() == 2 * self.keep {
                    self.cut();
                }
            }
        }
    }

    #[cold]
    fn cut(&mut self) {
        if self.pairs.len() > self.keep {
            self.pairs
                .select_nth_unstable_by(self.keep - 1, by_distance_then_index);
            self.pairs.truncate(self.keep);
            self.bar = self.pairs[self.keep - 1].0;
        }
    }

    fn finish(mut self) -> Vec<(f64, usize)> {
        self.cut();
        self.pairs
    }
}

/// A per-cell metric and its mean over cells.
#[derive(Debug, Clone, PartialEq)]
pub struct PerCell {
    pub per_cell: Vec<f64>,
    pub mean: f64,
}

impl PerCell {
    pub(crate) fn new(per_cell: Vec<f64>) -> Self {
        let mean = per_cell.iter().sum::<f64>() / per_cell.len() as f64;
        Self { per_cell, mean }
    }
}

pub(crate) fn check_labels(graph: &KnnGraph, labels: &[u32], input: &'static str) -> Result<()> {
    one_per_cell(labels, graph.n(), input)
}

/// `values` must hold one entry per cell of an `n`-cell embedding.
pub(crate) fn one_per_cell(values: &[u32], n: usize, input: &'static str) -> Result<()> {
    if values.len() != n {
        return Err(Error::LengthMismatch {
            input,
            expected: n,
            got: values.len(),
        });
    }
    Ok(())
}

/// Normalised Shannon entropy of the batch labels among each cell's k neighbours (the
/// metric twin of `BatchMixingLoss`): `H_i = −Σ_c p_ic ln p_ic / ln B`, `p_ic` the fraction
/// of the neighbours in batch c and B the number of distinct batches; 1 = perfectly mixed.
///
/// ```
/// use diffbio_metrics::{batch_entropy, knn};
/// let x = [0.0f64, 0.1, 0.2, 0.3]; // d = 1, alternating batches
/// let g = knn(&x, 1, 2).unwrap();
/// let h = batch_entropy(&g, &[0, 1, 0, 1]).unwrap();
/// assert!((h.per_cell[0] - 1.0).abs() < 1e-12); // cell 0's neighbours 1, 2: one per batch
/// assert_eq!(h.per_cell[1], 0.0); // cell 1's neighbours 0, 2: both batch 0
/// ```
pub fn batch_entropy(graph: &KnnGraph, batches: &[u32]) -> Result<PerCell> {
    check_labels(graph, batches, "batches")?;
    let n_batches = at_least_two(batches, "batches")?;
    let norm = (n_batches as f64).ln();
    let k = graph.k() as f64;
    let per_cell = per_cell_label_counts(graph, batches, |_, counts| {
        let plogp: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| c as f64 / k * (c as f64 / k).ln())
            .sum();
        0.0 - plogp / norm // 0 − (+0) is +0: a pure neighbourhood prints as 0, not −0
    });
    Ok(PerCell::new(per_cell))
}

/// Leave-one-out k-NN classification accuracy: each cell is given the most frequent label
/// among its k neighbours (ties to the smallest label, like `scipy.stats.mode`); the
/// per-cell values are 1 (correct) or 0.
///
/// ```
/// use diffbio_metrics::{knn, knn_accuracy};
/// let x = [0.0f32, 0.1, 0.2, 5.0, 5.1, 5.2]; // d = 1: two clusters
/// let g = knn(&x, 1, 2).unwrap();
/// assert_eq!(knn_accuracy(&g, &[0, 0, 0, 1, 1, 1]).unwrap().mean, 1.0);
/// ```
pub fn knn_accuracy(graph: &KnnGraph, labels: &[u32]) -> Result<PerCell> {
    check_labels(graph, labels, "labels")?;
    let per_cell = per_cell_label_counts(graph, labels, |i, counts| {
        // max_by_key keeps the last maximum; scan in reverse so ties go to the smallest label.
        let vote = (0..counts.len())
            .rev()
            .max_by_key(|&c| counts[c])
            .expect("labels");
        f64::from(vote == labels[i] as usize)
    });
    Ok(PerCell::new(per_cell))
}

/// `score(i, counts)` for every cell, in parallel, where `counts[c]` is the number of cell
/// i's neighbours with label c.
fn per_cell_label_counts(
    graph: &KnnGraph,
    labels: &[u32],
    score: impl Fn(usize, &[usize]) -> f64 + Sync,
) -> Vec<f64> {
    let n_labels = *labels.iter().max().expect("labels match a non-empty graph") as usize + 1;
    (0..graph.n())
        .into_par_iter()
        .map_init(
            || vec![0usize; n_labels],
            |counts, i| {
                counts.iter_mut().for_each(|c| *c = 0);
                graph
                    .neighbors(i)
                    .iter()
                    .for_each(|&j| counts[labels[j] as usize] += 1);
                score(i, counts)
            },
        )
        .collect()
}

pub(crate) fn distinct(labels: &[u32]) -> usize {
    sorted_distinct(labels).len()
}

/// The distinct labels, ascending.
pub(crate) fn sorted_distinct(labels: &[u32]) -> Vec<u32> {
    let mut seen = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// The number of distinct labels, or an error when there are fewer than two.
pub(crate) fn at_least_two(labels: &[u32], input: &'static str) -> Result<usize> {
    match distinct(labels) {
        found @ 0..=1 => Err(Error::TooFewLabels {
            input,
            found,
            needed: 2,
        }),
        found => Ok(found),
    }
}

/// The number of rows of a flat `[n × dims]` embedding whose values are all finite.
pub(crate) fn check_finite_matrix<T: Copy + Into<f64>>(
    embedding: &[T],
    dims: usize,
) -> Result<usize> {
    if dims == 0 || embedding.is_empty() || embedding.len() % dims != 0 {
        return Err(Error::Shape {
            input: "embedding",
            len: embedding.len(),
            dims,
        });
    }
    if let Some(index) = embedding.iter().position(|&v| !v.into().is_finite()) {
        return Err(Error::NaN {
            input: "embedding",
            index,
        });
    }
    Ok(embedding.len() / dims)
}
