//! Every pair of cells once, by tiles of squared Euclidean distances (the
//! `diffbio-pairwise` engine's `|x|² + |y|² − 2 x·y` products, in f32 on centred points,
//! with a proven rounding bound against the f64 points): the shared O(n²·d) pass of the
//! kNN graph and the silhouettes, on a deterministic round-robin schedule. Memory is
//! O(n·d) for the points plus one tile per thread, never n × n.

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::embedding::{Embedding, EmbeddingValue};
use crate::progress::Progress;

/// Points in f64 with their squared norms: what exact distances are measured on.
pub(crate) type Points = diffbio_pairwise::Points<f64>;

/// Cells per block: a tile of two blocks' distances is 256 KiB of f32.
const BLOCK: usize = 256;

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
    /// `points` visited in `order` (position → cell, a permutation of the cells).
    pub(crate) fn new(points: &'a Points, order: Vec<usize>) -> Self {
        let dims = points.dims();
        let mut mean = vec![0.0f64; dims];
        for &i in &order {
            mean.iter_mut()
                .zip(points.row(i))
                .for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= order.len() as f64);
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
/// candidate neighbours found in its own tile leave few to replace ([`round_robin`]).
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

/// Every pair of cells once, by tiles of two blocks of positions, for a [`PairVisitor`];
/// returns its state of every block, in the order of positions. The blocks are paired by a round-robin
/// schedule: the tiles of one round touch disjoint blocks and run in parallel, and every
/// block sees its tiles in the same order on every run (results do not depend on the
/// thread count or timing).
/// `progress` advances by the tiles of each round ([`tile_count`] in all).
pub(crate) fn visit_pairs<V: PairVisitor>(
    cells: &Cells,
    visitor: &V,
    progress: &dyn Progress,
) -> Vec<V::Block> {
    let n = cells.n();
    let blocks = n.div_ceil(BLOCK);
    let positions = |b: usize| b * BLOCK..((b + 1) * BLOCK).min(n);
    let states: Vec<Mutex<V::Block>> = (0..blocks)
        .map(|b| Mutex::new(visitor.block(positions(b))))
        .collect();
    for round in round_robin(blocks) {
        round.par_iter().for_each_init(
            || vec![0.0f32; BLOCK * BLOCK],
            |scratch, &(a, b)| {
                let (rows, columns) = (positions(a), positions(b));
                cells.tiles.tile(rows.clone(), columns.clone(), scratch);
                let tile = Tile {
                    distances: &scratch[..rows.len() * columns.len()],
                    rows,
                    columns,
                };
                let mut rows = states[a].lock().expect("no visitor panicked");
                if a == b {
                    visitor.visit(&mut rows, None, &tile);
                } else {
                    let mut columns = states[b].lock().expect("no visitor panicked");
                    visitor.visit(&mut rows, Some(&mut columns), &tile);
                }
            },
        );
        progress.advance(round.len() as u64);
    }
    states
        .into_iter()
        .map(|s| s.into_inner().expect("no visitor panicked"))
        .collect()
}

/// The tiles of a pass over all pairs of `n` cells: one per pair of blocks, diagonal
/// included.
pub(crate) fn tile_count(n: usize) -> u64 {
    let blocks = n.div_ceil(BLOCK) as u64;
    blocks * (blocks + 1) / 2
}

/// What a pass over all pairs of cells computes ([`visit_pairs`]), kept per block
/// of cells.
pub(crate) trait PairVisitor: Sync {
    /// The state of one block of cells.
    type Block: Send;

    /// The initial state of the block of cells at `positions`.
    fn block(&self, positions: Range<usize>) -> Self::Block;

    /// One tile: `rows` is the state of `tile.rows`' block; `columns` that of
    /// `tile.columns`' block, which then differs and gets the same distances transposed.
    /// `None` on the diagonal: the tile then holds every pair of the block both ways, each
    /// cell to itself included, and only `rows` is updated.
    fn visit(&self, rows: &mut Self::Block, columns: Option<&mut Self::Block>, tile: &Tile);
}

impl<V: PairVisitor> PairVisitor for &V {
    type Block = V::Block;

    fn block(&self, positions: Range<usize>) -> Self::Block {
        (*self).block(positions)
    }

    fn visit(&self, rows: &mut Self::Block, columns: Option<&mut Self::Block>, tile: &Tile) {
        (*self).visit(rows, columns, tile)
    }
}

/// Two visitors in one pass.
impl<A: PairVisitor, B: PairVisitor> PairVisitor for (A, B) {
    type Block = (A::Block, B::Block);

    fn block(&self, positions: Range<usize>) -> Self::Block {
        (self.0.block(positions.clone()), self.1.block(positions))
    }

    fn visit(&self, rows: &mut Self::Block, columns: Option<&mut Self::Block>, tile: &Tile) {
        let (first, second) = match columns {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        };
        self.0.visit(&mut rows.0, first, tile);
        self.1.visit(&mut rows.1, second, tile);
    }
}

/// Squared distances (f32, within [`Cells::tile_error_bound`]) between the cells of two
/// blocks of positions, row by row.
pub(crate) struct Tile<'a> {
    distances: &'a [f32],
    pub(crate) rows: Range<usize>,
    pub(crate) columns: Range<usize>,
}

impl Tile<'_> {
    /// `(p, distances from position p to the column positions)` for every row position p.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (usize, &[f32])> {
        self.rows
            .clone()
            .zip(self.distances.chunks(self.columns.len()))
    }
}

/// One round of the diagonal tiles (a, a), then the circle method: rounds of disjoint
/// pairs of blocks (a, b), a < b, covering every pair once. The diagonal comes first:
/// a block holds cells that are near in the pass's order, so their candidate
/// neighbours' bars start low.
fn round_robin(blocks: usize) -> Vec<Vec<(usize, usize)>> {
    let players = blocks + blocks % 2; // an odd count gets a bye
    let pair = |a: usize, b: usize| (a.min(b), a.max(b));
    let diagonal = (0..blocks).map(|b| (b, b)).collect();
    let circle = (0..players.saturating_sub(1)).map(|r| {
        let fixed = std::iter::once(pair(players - 1, r));
        let circle = (1..players / 2).map(|s| {
            pair(
                (r + s) % (players - 1),
                (r + players - 1 - s) % (players - 1),
            )
        });
        fixed.chain(circle).filter(|&(_, b)| b < blocks).collect()
    });
    std::iter::once(diagonal).chain(circle).collect()
}

#[cfg(test)]
mod tests {
    use super::round_robin;

    #[test]
    fn round_robin_visits_every_pair_of_blocks_once_in_disjoint_rounds() {
        for blocks in 0..=12 {
            let mut seen = vec![vec![0; blocks]; blocks];
            for round in round_robin(blocks) {
                let mut busy = vec![false; blocks];
                for (a, b) in round {
                    assert!(a <= b && b < blocks);
                    seen[a][b] += 1;
                    for block in [a, b] {
                        assert!(a == b || !busy[block], "{blocks} blocks: {block} twice");
                        busy[block] = true;
                    }
                }
            }
            for (a, row) in seen.iter().enumerate() {
                assert!(row[a..].iter().all(|&c| c == 1), "{blocks} blocks: {row:?}");
            }
        }
    }
}
