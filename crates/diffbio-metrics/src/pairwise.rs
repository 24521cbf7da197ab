//! Every pair of cells once, by tiles of squared Euclidean distances (the
//! `diffbio-pairwise` engine's `|x|² + |y|² − 2 x·y` products, in f64 on centred points):
//! the shared O(n²·d) pass of the kNN graph and the silhouettes, on a deterministic
//! round-robin schedule. Memory is O(n·d) for the points plus one tile per thread, never
//! n × n.

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::embedding::{Embedding, EmbeddingValue};
use crate::progress::Progress;

/// Points in f64 with their squared norms: the shared engine's distance tiles.
pub(crate) type Points = diffbio_pairwise::Points<f64>;

/// Cells per block: a tile of two blocks' distances is 512 KiB of f64.
const BLOCK: usize = 256;

/// The embedding minus its column means, in f64 (distances are unchanged; the products
/// that form them are smaller, so rounding is smaller).
pub(crate) fn centred_points<T: EmbeddingValue>(embedding: Embedding<'_, T>) -> Points {
    Points::new(embedding.centred().0, embedding.dims())
}

/// Every pair of rows once, by tiles of two blocks of cells, for a [`PairVisitor`]; returns
/// its state of every block, in row order. The blocks are paired by a round-robin
/// schedule: the tiles of one round touch disjoint blocks and run in parallel, and every
/// block sees its tiles in the same order on every run (results do not depend on the
/// thread count or timing).
/// `progress` advances by the tiles of each round ([`tile_count`] in all).
pub(crate) fn visit_pairs<V: PairVisitor>(
    points: &Points,
    visitor: &V,
    progress: &dyn Progress,
) -> Vec<V::Block> {
    let n = points.n();
    let blocks = n.div_ceil(BLOCK);
    let cells = |b: usize| b * BLOCK..((b + 1) * BLOCK).min(n);
    let states: Vec<Mutex<V::Block>> = (0..blocks)
        .map(|b| Mutex::new(visitor.block(cells(b))))
        .collect();
    for round in round_robin(blocks) {
        round.par_iter().for_each_init(
            || vec![0.0f64; BLOCK * BLOCK],
            |scratch, &(a, b)| {
                let (rows, columns) = (cells(a), cells(b));
                points.tile(rows.clone(), columns.clone(), scratch);
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

    /// The initial state of the block of `cells`.
    fn block(&self, cells: Range<usize>) -> Self::Block;

    /// One tile: `rows` is the state of `tile.rows`' block; `columns` that of
    /// `tile.columns`' block, which then differs and gets the same distances transposed.
    /// `None` on the diagonal: the tile then holds every pair of the block both ways, each
    /// cell to itself included, and only `rows` is updated.
    fn visit(&self, rows: &mut Self::Block, columns: Option<&mut Self::Block>, tile: &Tile);
}

impl<V: PairVisitor> PairVisitor for &V {
    type Block = V::Block;

    fn block(&self, cells: Range<usize>) -> Self::Block {
        (*self).block(cells)
    }

    fn visit(&self, rows: &mut Self::Block, columns: Option<&mut Self::Block>, tile: &Tile) {
        (*self).visit(rows, columns, tile)
    }
}

/// Two visitors in one pass.
impl<A: PairVisitor, B: PairVisitor> PairVisitor for (A, B) {
    type Block = (A::Block, B::Block);

    fn block(&self, cells: Range<usize>) -> Self::Block {
        (self.0.block(cells.clone()), self.1.block(cells))
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

/// Squared distances between two blocks of cells, row by row.
pub(crate) struct Tile<'a> {
    distances: &'a [f64],
    pub(crate) rows: Range<usize>,
    pub(crate) columns: Range<usize>,
}

impl Tile<'_> {
    /// `(i, distances from cell i to the column cells)` for every row cell i.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (usize, &[f64])> {
        self.rows
            .clone()
            .zip(self.distances.chunks(self.columns.len()))
    }
}

/// The circle method: rounds of disjoint pairs of blocks (a, b), a < b, covering every
/// pair once, then one round of the diagonal tiles (a, a).
fn round_robin(blocks: usize) -> Vec<Vec<(usize, usize)>> {
    let players = blocks + blocks % 2; // an odd count gets a bye
    let pair = |a: usize, b: usize| (a.min(b), a.max(b));
    let mut rounds: Vec<Vec<(usize, usize)>> = (0..players.saturating_sub(1))
        .map(|r| {
            let fixed = std::iter::once(pair(players - 1, r));
            let circle = (1..players / 2).map(|s| {
                pair(
                    (r + s) % (players - 1),
                    (r + players - 1 - s) % (players - 1),
                )
            });
            fixed.chain(circle).filter(|&(_, b)| b < blocks).collect()
        })
        .collect();
    rounds.push((0..blocks).map(|b| (b, b)).collect());
    rounds
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
