//! Exact k-nearest-neighbour graphs and the neighbourhood metrics computed from them.

use std::ops::Range;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pairwise::{PairVisitor, Points, Tile};
use crate::vector_math::{dispatch, Vectorised};

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
    knn_of_points_with(points, k, &NoVisitor).0
}

/// The exact kNN graph of checked points (1 ≤ k < n) and, from the same pass over all
/// pairs, `also`'s state of every block of cells.
pub(crate) fn knn_of_points_with<V: PairVisitor>(
    points: &Points,
    k: usize,
    also: &V,
) -> (KnnGraph, Vec<V::Block>) {
    let keep = k + CANDIDATE_MARGIN;
    let (candidates, results): (Vec<BlockCandidates>, Vec<V::Block>) = points
        .visit_pairs(&(NearestCandidates { keep }, also))
        .into_iter()
        .unzip();
    let blocks: Vec<(usize, Vec<Candidates>)> = candidates
        .into_iter()
        .scan(0, |start, block| {
            let first = *start;
            *start += block.cells.len();
            Some((first, block.cells))
        })
        .collect();
    // Block by block, so each block's candidates are freed once its rows are exact.
    let rows: Vec<Vec<(f64, usize)>> = blocks
        .into_par_iter()
        .flat_map_iter(|(start, block)| {
            block
                .into_iter()
                .enumerate()
                .map(move |(t, candidates)| exact_row(points, start + t, k, candidates.finish()))
        })
        .collect();
    let mut indices = Vec::with_capacity(points.n() * k);
    let mut distances = Vec::with_capacity(points.n() * k);
    for (d2, j) in rows.into_iter().flatten() {
        indices.push(j);
        distances.push(d2.sqrt());
    }
    let graph = KnnGraph {
        k,
        indices,
        distances,
    };
    (graph, results)
}

/// Every cell's `keep` nearest candidates by tiled distance.
struct NearestCandidates {
    keep: usize,
}

impl PairVisitor for NearestCandidates {
    type Block = BlockCandidates;

    fn block(&self, cells: Range<usize>) -> BlockCandidates {
        BlockCandidates {
            bars: vec![f64::INFINITY; cells.len()],
            cells: cells.map(|_| Candidates::new(self.keep)).collect(),
        }
    }

    fn visit(
        &self,
        rows: &mut BlockCandidates,
        columns: Option<&mut BlockCandidates>,
        tile: &Tile,
    ) {
        dispatch(OfferTile {
            rows,
            columns,
            tile,
        });
    }
}

/// Offers a tile's pairs to the candidates of its row cells and (off the diagonal) of its
/// column cells.
struct OfferTile<'a> {
    rows: &'a mut BlockCandidates,
    columns: Option<&'a mut BlockCandidates>,
    tile: &'a Tile<'a>,
}

impl Vectorised for OfferTile<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            rows,
            mut columns,
            tile,
        } = self;
        for ((i, distances), candidates) in tile.rows().zip(&mut rows.cells) {
            candidates.offer_row(tile.columns.start, distances, i);
            if let Some(columns) = columns.as_deref_mut() {
                columns.offer_column(i, distances);
            }
        }
    }
}

/// The candidates of a block's cells, with their admission bars side by side so that a
/// tile row is compared with them in vector registers.
struct BlockCandidates {
    bars: Vec<f64>,
    cells: Vec<Candidates>,
}

impl BlockCandidates {
    /// Offers cell j to every cell t of the block at squared distance `distances[t]`.
    #[inline(always)]
    fn offer_column(&mut self, j: usize, distances: &[f64]) {
        for (t0, chunk) in (0..).step_by(LANES).zip(distances.chunks(LANES)) {
            let bars = &self.bars[t0..t0 + chunk.len()];
            if any_at_most(chunk, bars) {
                for (t, &d2) in (t0..).zip(chunk) {
                    if d2 <= self.bars[t] {
                        self.cells[t].admit(d2, j);
                        self.bars[t] = self.cells[t].bar;
                    }
                }
            }
        }
    }
}

/// Distances checked at once against their bars: one vector comparison on AVX2.
const LANES: usize = 8;

/// Whether any `values[l] <= bars[l]`, branch-free.
#[inline(always)]
fn any_at_most(values: &[f64], bars: &[f64]) -> bool {
    values
        .iter()
        .zip(bars)
        .fold(false, |any, (v, bar)| any | (v <= bar))
}

/// A pass that computes nothing besides the graph.
struct NoVisitor;

impl PairVisitor for NoVisitor {
    type Block = ();

    fn block(&self, _: Range<usize>) {}

    fn visit(&self, _: &mut (), _: Option<&mut ()>, _: &Tile) {}
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
/// buffer that is cut back to `keep` whenever it grows by half, raising the admission bar.
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
            pairs: Vec::with_capacity(Self::capacity(keep)),
        }
    }

    /// Offers `j0 + t` at `row[t]` for every t but `skip` (the cell itself).
    #[inline(always)]
    fn offer_row(&mut self, j0: usize, row: &[f64], skip: usize) {
        for (t0, chunk) in (0..).step_by(LANES).zip(row.chunks(LANES)) {
            // Most chunks have no pair under the bar: one vector comparison each.
            if any_at_most(chunk, &[self.bar; LANES][..chunk.len()]) {
                for (t, &d2) in (j0 + t0..).zip(chunk) {
                    if d2 <= self.bar && t != skip {
                        self.admit(d2, t);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn admit(&mut self, d2: f64, j: usize) {
        self.pairs.push((d2, j));
        if self.pairs.len() == Self::capacity(self.keep) {
            self.cut();
        }
    }

    fn capacity(keep: usize) -> usize {
        keep + keep.div_ceil(2)
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
