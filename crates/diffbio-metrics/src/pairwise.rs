//! All-pairs squared Euclidean distances by tiles, as matrix products
//! (`|x|² + |y|² − 2 x·y`): the shared O(n²·d) kernel of the kNN graph and the silhouettes.
//! Memory is O(n·d) for the points plus one tile per thread, never n × n.

use std::ops::Range;
use std::sync::Mutex;

use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Cells per block: a tile of two blocks' distances is 512 KiB of f64.
const BLOCK: usize = 256;

/// Points in f64, centred on their mean (distances are unchanged; the products that
/// form them are smaller, so rounding is smaller), with their squared norms.
pub(crate) struct Points {
    values: Vec<f64>,
    dims: usize,
    sq_norms: Vec<f64>,
    largest_sq_norm: f64,
}

/// A row-major `[n × dims]` embedding (n ≥ 1) minus its column means, in f64, and the means.
pub(crate) fn centred<T: Copy + Into<f64>>(embedding: &[T], dims: usize) -> (Vec<f64>, Vec<f64>) {
    let n = embedding.len() / dims;
    let mut mean = vec![0.0f64; dims];
    for row in embedding.chunks(dims) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v.into());
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let values = embedding
        .chunks(dims)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v.into() - m))
        .collect();
    (values, mean)
}

impl Points {
    /// The rows of a row-major `[n × dims]` embedding (already checked finite, n ≥ 1).
    pub(crate) fn centred<T: Copy + Into<f64>>(embedding: &[T], dims: usize) -> Self {
        Self::from_values(centred(embedding, dims).0, dims)
    }

    /// Rows given as they are (no centring).
    pub(crate) fn from_values(values: Vec<f64>, dims: usize) -> Self {
        let sq_norms: Vec<f64> = values
            .chunks(dims)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        let largest_sq_norm = sq_norms.iter().copied().fold(0.0, f64::max);
        Self {
            values,
            dims,
            sq_norms,
            largest_sq_norm,
        }
    }

    pub(crate) fn n(&self) -> usize {
        self.sq_norms.len()
    }

    pub(crate) fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.dims..(i + 1) * self.dims]
    }

    /// `Σ (x_i − x_j)²` in the direct form: exact to rounding, whatever the norms.
    pub(crate) fn direct_sq_distance(&self, i: usize, j: usize) -> f64 {
        self.row(i)
            .iter()
            .zip(self.row(j))
            .map(|(a, b)| (a - b) * (a - b))
            .sum()
    }

    /// A bound on the rounding error of a tiled squared distance from row i (to any row).
    pub(crate) fn tile_error_bound(&self, i: usize) -> f64 {
        4.0 * (self.dims + 4) as f64 * f64::EPSILON * (self.sq_norms[i] + self.largest_sq_norm)
    }

    /// Every pair of rows once, by tiles of two blocks of cells, for a [`PairVisitor`]; returns
    /// its state of every block, in row order. The blocks are paired by a round-robin
    /// schedule: the tiles of one round touch disjoint blocks and run in parallel, and every
    /// block sees its tiles in the same order on every run (results do not depend on the
    /// thread count or timing).
    pub(crate) fn visit_pairs<V: PairVisitor>(&self, visitor: &V) -> Vec<V::Block> {
        let n = self.n();
        let blocks = n.div_ceil(BLOCK);
        let cells = |b: usize| b * BLOCK..((b + 1) * BLOCK).min(n);
        let states: Vec<Mutex<V::Block>> = (0..blocks)
            .map(|b| Mutex::new(visitor.block(cells(b))))
            .collect();
        let rounds = round_robin(blocks);
        for round in rounds {
            round.par_iter().for_each_init(
                || vec![0.0f64; BLOCK * BLOCK],
                |scratch, &(a, b)| {
                    let tile = self.tile(cells(a), cells(b), scratch);
                    let mut rows = states[a].lock().expect("no visitor panicked");
                    if a == b {
                        visitor.visit(&mut rows, None, &tile);
                    } else {
                        let mut columns = states[b].lock().expect("no visitor panicked");
                        visitor.visit(&mut rows, Some(&mut columns), &tile);
                    }
                },
            );
        }
        states
            .into_iter()
            .map(|s| s.into_inner().expect("no visitor panicked"))
            .collect()
    }

    /// Squared distances (tiled form, clamped at 0) between the cells `rows` and `columns`.
    fn tile<'a>(
        &self,
        rows: Range<usize>,
        columns: Range<usize>,
        scratch: &'a mut [f64],
    ) -> Tile<'a> {
        let d = self.dims;
        let width = columns.len();
        let distances = &mut scratch[..rows.len() * width];
        matmul(
            MatMut::from_row_major_slice_mut(distances, rows.len(), width),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.values[rows.start * d..rows.end * d], rows.len(), d),
            MatRef::from_row_major_slice(
                &self.values[columns.start * d..columns.end * d],
                width,
                d,
            )
            .transpose(),
            -2.0,
            Par::Seq,
        );
        let column_norms = &self.sq_norms[columns.clone()];
        for (row, ni) in distances
            .chunks_mut(width)
            .zip(&self.sq_norms[rows.clone()])
        {
            row.iter_mut()
                .zip(column_norms)
                .for_each(|(p, nj)| *p = (*p + ni + nj).max(0.0));
        }
        Tile {
            distances,
            rows,
            columns,
        }
    }
}

/// What a pass over all pairs of cells computes ([`Points::visit_pairs`]), kept per block
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
