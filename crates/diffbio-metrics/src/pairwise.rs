//! Every pair of cells once, by tiles of squared Euclidean distances (the
//! `diffbio-pairwise` engine's `|x|² + |y|² − 2 x·y` products, in f32 on centred points,
//! with a proven rounding bound against the f64 points): the shared O(n²·d) pass of the
//! kNN graph and the silhouettes, on a deterministic round-robin schedule. Memory is
//! O(n·d) for the points plus one tile per thread, never n × n.

pub(crate) use diffbio_pairwise::{tile_count, PairVisitor, Tile, BLOCK};

use crate::embedding::{Embedding, EmbeddingValue};
use crate::progress::Progress;

/// Points in f64 with their squared norms: what exact distances are measured on.
pub(crate) type Points = diffbio_pairwise::Points<f64>;

/// The embedding minus its column means, in f64 (distances are unchanged; the products
/// that form them are smaller, so rounding is smaller).
pub(crate) fn centred_points<T: EmbeddingValue>(embedding: Embedding<'_, T>) -> Points {
    Points::new(embedding.centred().0, embedding.dims())
}

/// The cells of a pass over all pairs: their f64 points, on which distances are exact,
/// and a copy centred and rounded to f32, in the pass's order of cells, from which the
/// tiles are computed (twice the rate of f64 products, half the memory).
///
/// A tiled distance `D̃_pq` between the cells at positions p and q is within
/// [`Self::tile_error_bound`]`(p)` of their f64 distance `D_pq`, to first order in
/// ε = 2⁻²³: the f32 tile's own rounding is within `4(d + 4)·ε·(|y_p|² + max|y|²)`
/// (`diffbio_pairwise::Points::tile_error_bound`, y the f32 points), rounding `x − m` to
/// f32 moves a squared distance by at most `2ε·(|y_p|² + |y_q|²)`, and the f64 distance's
/// own rounding is a fraction of ε² of that; the bound adds `4ε·(|y_p|² + max|y|²)` for
/// both.
pub(crate) struct Cells<'a> {
    points: &'a Points,
    tiles: diffbio_pairwise::Points<f32>,
    order: Vec<usize>,
}

impl<'a> Cells<'a> {
    /// `points` visited in `order` (position → cell, a permutation of the cells). The mean
    /// is summed in the order of cells, so that the f32 points do not depend on `order`.
    pub(crate) fn new(points: &'a Points, order: Vec<usize>) -> Self {
        debug_assert_eq!(order.len(), points.n());
        let dims = points.dims();
        let mut mean = vec![0.0f64; dims];
        for i in 0..points.n() {
            mean.iter_mut()
                .zip(points.row(i))
                .for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= points.n() as f64);
        let values = order
            .iter()
            .flat_map(|&i| points.row(i).iter().zip(&mean).map(|(v, m)| (v - m) as f32))
            .collect();
        Self {
            points,
            tiles: diffbio_pairwise::Points::new(values, dims),
            order,
        }
    }

    /// `points` in [`spatial_order`].
    pub(crate) fn nearby(points: &'a Points) -> Self {
        let mut order: Vec<usize> = (0..points.n()).collect();
        spatial_order(points, &mut order);
        Self::new(points, order)
    }

    /// The cells in the order of their `labels`, and in [`spatial_order`] within each
    /// label: a label's cells are contiguous, so sums per label of a tile row are sums of
    /// runs.
    pub(crate) fn by_label(points: &'a Points, labels: &[usize]) -> Self {
        let mut order: Vec<usize> = (0..points.n()).collect();
        order.sort_by_key(|&i| labels[i]);
        for run in order.chunk_by_mut(|&a, &b| labels[a] == labels[b]) {
            spatial_order(points, run);
        }
        Self::new(points, order)
    }

    /// Number of cells.
    pub(crate) fn n(&self) -> usize {
        self.order.len()
    }

    /// The f64 points, indexed by cell.
    pub(crate) fn points(&self) -> &Points {
        self.points
    }

    /// Position → cell.
    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }

    /// A bound on `|D̃_pq − D_pq|` for the cell at position p and any q (see [`Cells`]).
    pub(crate) fn tile_error_bound(&self, position: usize) -> f64 {
        let norms = f64::from(self.tiles.sq_norm(position)) + self.tiles.largest_sq_norm();
        self.tiles.tile_error_bound(position) + 4.0 * f64::from(f32::EPSILON) * norms
    }
}

/// Orders `cells` so that cells near in space are near in the order: the leaves of a k-d
/// tree, each node split at a multiple of [`BLOCK`] cells near its median along the
/// coordinate of largest variance (ties by cell). A block then holds near cells, whose
/// candidate neighbours found in its own tile leave few to replace
/// ([`diffbio_pairwise::visit_pairs`] pairs the diagonal first).
fn spatial_order(points: &Points, cells: &mut [usize]) {
    if cells.len() <= BLOCK {
        return;
    }
    let dims = points.dims();
    let (mut sums, mut squares) = (vec![0.0f64; dims], vec![0.0f64; dims]);
    for &i in cells.iter() {
        for ((s, q), &v) in sums.iter_mut().zip(&mut squares).zip(points.row(i)) {
            *s += v;
            *q += v * v;
        }
    }
    let len = cells.len() as f64;
    let variance = |c: usize| squares[c] / len - (sums[c] / len).powi(2);
    let axis = (0..dims)
        .max_by(|&a, &b| variance(a).total_cmp(&variance(b)).then(b.cmp(&a)))
        .expect("dims > 0");
    let coordinate = |i: usize| points.row(i)[axis];
    let middle = BLOCK * (cells.len().div_ceil(BLOCK) / 2);
    cells.select_nth_unstable_by(middle, |&a, &b| {
        coordinate(a).total_cmp(&coordinate(b)).then(a.cmp(&b))
    });
    let (low, high) = cells.split_at_mut(middle);
    rayon::join(
        || spatial_order(points, low),
        || spatial_order(points, high),
    );
}

/// Every pair of cells once ([`diffbio_pairwise::visit_pairs`] on the f32 tiles), for a
/// [`PairVisitor`]; returns its state of every block, in the order of positions.
/// `progress` advances by the tiles of each round ([`tile_count`] in all).
pub(crate) fn visit_pairs<V: PairVisitor<f32>>(
    cells: &Cells,
    visitor: &V,
    progress: &dyn Progress,
) -> Vec<V::Block> {
    diffbio_pairwise::visit_pairs(&cells.tiles, cells.n(), visitor, |tiles| {
        progress.advance(tiles as u64)
    })
}
