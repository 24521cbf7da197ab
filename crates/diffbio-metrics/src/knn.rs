//! Exact k-nearest-neighbour graphs: candidates from the tiled all-pairs pass, made exact
//! by re-measuring them in the direct form.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use diffbio_pairwise::{by_distance_then_index, BlockTopK, NearestPoints, TopK};

use crate::embedding::{check_cell_count, Embedding, EmbeddingValue};
use crate::error::{Error, Result};
use crate::pairwise::{centred_points, visit_pairs, Cells, PairVisitor, Points, Tile};
use crate::progress::{Progress, Silent};

/// The exact k nearest neighbours of every cell (self excluded), by squared Euclidean
/// distance with ties broken by the smaller index; distances are reported Euclidean.
/// Cloning and [`Self::truncate`] share the rows instead of copying them. Cells are
/// indexed in 32 bits (12 bytes per edge with its f64 distance): at most 2³² cells.
#[derive(Clone)]
pub struct KnnGraph {
    /// Neighbours per cell in this graph.
    k: usize,
    /// Neighbours per cell in the shared rows (≥ k: a truncated graph reads a prefix).
    stride: usize,
    indices: Arc<Vec<u32>>,
    distances: Arc<Vec<f64>>,
}

impl KnnGraph {
    fn new(k: usize, indices: Vec<u32>, distances: Vec<f64>) -> Self {
        Self {
            k,
            stride: k,
            indices: Arc::new(indices),
            distances: Arc::new(distances),
        }
    }

    /// Number of cells.
    pub fn n(&self) -> usize {
        self.indices.len() / self.stride
    }

    /// Neighbours per cell.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The neighbours of cell `i`, nearest first.
    pub fn neighbors(&self, i: usize) -> &[u32] {
        &self.indices[i * self.stride..i * self.stride + self.k]
    }

    /// The Euclidean distances to [`Self::neighbors`], ascending.
    pub fn distances(&self, i: usize) -> &[f64] {
        &self.distances[i * self.stride..i * self.stride + self.k]
    }

    /// A graph computed elsewhere (e.g. scanpy's `obsp['distances']`): each cell's
    /// neighbours as `(index, Euclidean distance)`, itself excluded. Every row is ordered
    /// by (distance, index), as [`knn`] orders it, and cut to the fewest neighbours any cell
    /// has, so that every cell has the same `k`. Errors: no cells or more than 2³², a row
    /// without neighbours, an index out of range or equal to the row's own, a distance that
    /// is negative or not finite.
    ///
    /// ```
    /// use diffbio_metrics::KnnGraph;
    /// let rows = vec![vec![(2, 3.0), (1, 1.0)], vec![(0, 1.0)], vec![(1, 2.0), (0, 3.0)]];
    /// let graph = KnnGraph::from_neighbours(rows).unwrap();
    /// assert_eq!(graph.k(), 1);
    /// assert_eq!(graph.neighbors(0), &[1]);
    /// assert_eq!(graph.distances(2), &[2.0]);
    /// ```
    pub fn from_neighbours(mut rows: Vec<Vec<(usize, f64)>>) -> Result<Self> {
        let n = rows.len();
        if n == 0 {
            return Err(Error::Empty { input: "graph" });
        }
        check_cell_count("graph", n)?;
        let invalid = |cell: usize, reason: String| Error::InvalidGraph { cell, reason };
        for (cell, row) in rows.iter_mut().enumerate() {
            if row.is_empty() {
                return Err(invalid(cell, "has no neighbour".into()));
            }
            for &(j, distance) in row.iter() {
                if j >= n || j == cell {
                    return Err(invalid(
                        cell,
                        format!("names cell {j} of {n} as a neighbour"),
                    ));
                }
                if !(distance.is_finite() && distance >= 0.0) {
                    return Err(invalid(cell, format!("has the distance {distance}")));
                }
            }
            row.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        }
        let k = rows.iter().map(Vec::len).min().unwrap_or(0);
        // Indices below n ≤ 2³² (checked above) fit in 32 bits.
        let (indices, distances) = rows
            .iter()
            .flat_map(|row| row[..k].iter().map(|&(j, d)| (j as u32, d)))
            .unzip();
        Ok(Self::new(k, indices, distances))
    }

    /// The graph restricted to each cell's `k` nearest (a prefix of every row), sharing
    /// this graph's rows.
    pub fn truncate(&self, k: usize) -> Result<Self> {
        if k == 0 || k > self.k {
            return Err(Error::InvalidK { k, n: self.n() });
        }
        Ok(Self { k, ..self.clone() })
    }
}

/// Graphs are equal when every cell's neighbours and distances are.
impl PartialEq for KnnGraph {
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k
            && self.n() == other.n()
            && (0..self.n()).all(|i| {
                self.neighbors(i) == other.neighbors(i) && self.distances(i) == other.distances(i)
            })
    }
}

impl fmt::Debug for KnnGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnnGraph")
            .field("n", &self.n())
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

/// Exact kNN graph of a row-major `[n × dims]` embedding (f32 or f64), in parallel over
/// tiles of cells. Squared distances come from matrix products in f32
/// (`|x|² + |y|² − 2 x·y`, on centred points) with a proven rounding bound b: each cell
/// keeps as candidates its k nearest by those distances and every cell within 4b of the
/// k-th; the candidates are re-measured in f64 in the direct form `Σ (x_i − x_j)²` and
/// ordered by (distance, index). Every true neighbour is a candidate (its tiled distance
/// is within 2b of the k-th's), so the result is the exact graph of the f64 distances.
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
pub fn knn<T: EmbeddingValue>(embedding: &[T], dims: usize, k: usize) -> Result<KnnGraph> {
    knn_of(Embedding::new(embedding, dims)?, k, &Silent)
}

/// [`knn`] of a checked embedding.
pub(crate) fn knn_of<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    k: usize,
    progress: &dyn Progress,
) -> Result<KnnGraph> {
    check_k(k, embedding.n())?;
    let points = centred_points(embedding);
    Ok(knn_of_cells_with(&Cells::nearby(&points), k, &NoVisitor, progress).0)
}

/// `1 ≤ k ≤ n − 1`.
pub(crate) fn check_k(k: usize, n: usize) -> Result<()> {
    if k == 0 || k >= n {
        return Err(Error::InvalidK { k, n });
    }
    Ok(())
}

/// The exact kNN graph of checked points (1 ≤ k < n).
pub(crate) fn knn_of_points(points: &Points, k: usize) -> KnnGraph {
    knn_of_cells_with(&Cells::nearby(points), k, &NoVisitor, &Silent).0
}

/// The exact kNN graph of checked cells (1 ≤ k < n) and, from the same pass over all
/// pairs, `also`'s state of every block of positions; `progress` advances by the pass's
/// tiles. The tiles neither the graph nor `also` wants are not computed.
pub(crate) fn knn_of_cells_with<V: PairVisitor<f32>>(
    cells: &Cells,
    k: usize,
    also: &V,
    progress: &dyn Progress,
) -> (KnnGraph, Vec<V::Block>) {
    // Every cell's candidates by tiled distance: its k nearest and those within 4 bounds
    // of the k-th ([`Cells::tile_error_bound`]).
    let nearest = NearestPoints {
        rows_end: cells.n(),
        top_k: |p| TopK::with_slack(k, candidate_slack(cells, p)),
    };
    let (candidates, results): (Vec<BlockTopK<f32>>, Vec<V::Block>) =
        visit_pairs(cells, &(nearest, also), progress)
            .into_iter()
            .unzip();
    // Each cell's candidates, in the order of cells: its row of the graph is then written
    // in place, and each candidate list freed once used.
    let mut candidates: Vec<(usize, TopK<f32>)> = cells
        .order()
        .iter()
        .copied()
        .zip(candidates.into_iter().flat_map(BlockTopK::into_points))
        .collect();
    candidates.sort_unstable_by_key(|&(i, _)| i);
    let mut indices = vec![0u32; cells.n() * k];
    let mut distances = vec![0.0f64; cells.n() * k];
    candidates
        .into_par_iter()
        .zip(indices.par_chunks_mut(k).zip(distances.par_chunks_mut(k)))
        .for_each(|((i, candidates), (indices, distances))| {
            let row = exact_row(cells, i, k, candidates);
            for ((index, distance), (d2, j)) in indices.iter_mut().zip(distances).zip(row) {
                *index = j as u32; // j < n ≤ 2³² ([`Embedding::new`])
                *distance = d2.sqrt();
            }
        });
    (KnnGraph::new(k, indices, distances), results)
}

/// The slack of the candidates of the cell at `position`: 4 bounds b. A true neighbour j
/// is within b of its f64 distance, which is at most the k-th tiled distance plus b, so
/// its tiled distance is at most the k-th's plus 2b; the other 2b cover the rounding of
/// the slack to f32 and of its sum with the k-th distance in f32 (a relative 2⁻²⁴ of a
/// sum below 4(|y_p|² + max|y|²), far below 2b).
fn candidate_slack(cells: &Cells, position: usize) -> f32 {
    (4.0 * cells.tile_error_bound(position)) as f32
}

/// A pass that computes nothing besides the graph: it wants no tile of its own, so the
/// tiles too far apart to hold a candidate are skipped ([`PairVisitor::wants`]).
struct NoVisitor;

impl PairVisitor<f32> for NoVisitor {
    type Block = ();

    fn block(&self, _: Range<usize>) {}

    fn wants(&self, _: &(), _: &(), _: f64) -> bool {
        false
    }

    fn visit(&self, _: &mut (), _: Option<&mut ()>, _: &mut Tile<f32>) {}
}

/// The k best of cell i's candidates (tiled distance, position) by f64 distance in the
/// direct form, ties by the smaller cell index: (squared distance, cell), ascending.
fn exact_row(cells: &Cells, i: usize, k: usize, candidates: TopK<f32>) -> Vec<(f64, usize)> {
    let (points, order) = (cells.points(), cells.order());
    let candidate_cells: Vec<usize> = candidates.finish().iter().map(|&(_, q)| order[q]).collect();
    let distances = points.direct_sq_distances(i, &candidate_cells);
    let mut exact: Vec<(f64, usize)> = distances.into_iter().zip(candidate_cells).collect();
    exact.sort_unstable_by(by_distance_then_index);
    exact.truncate(k);
    exact
}
