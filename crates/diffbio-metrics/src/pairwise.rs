//! All-pairs squared Euclidean distances by tiles, as matrix products
//! (`|x|² + |y|² − 2 x·y`): the shared O(n²·d) kernel of the kNN graph and the silhouettes.
//! Memory is O(n·d) for the points plus one tile per thread, never n × n.

use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Query rows per tile (one parallel task).
const QUERY_TILE: usize = 128;
/// Reference rows per tile: a `QUERY_TILE × REFERENCE_TILE` f64 tile is 1 MiB.
const REFERENCE_TILE: usize = 1024;

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

    /// For every row i, in parallel: `state = init()`, then `visit(&mut state, i, j0,
    /// tile_row)` for successive reference tiles, `tile_row[t]` the squared distance (tiled
    /// form, clamped at 0) from row i to row `j0 + t`, covering every row j (self included);
    /// finally `finish(i, state)`. Results in row order.
    pub(crate) fn map_rows<S, R: Send>(
        &self,
        init: impl Fn() -> S + Sync,
        visit: impl Fn(&mut S, usize, usize, &[f64]) + Sync,
        finish: impl Fn(usize, S) -> R + Sync,
    ) -> Vec<R> {
        let n = self.n();
        let d = self.dims;
        (0..n.div_ceil(QUERY_TILE))
            .into_par_iter()
            .flat_map_iter(|tile| {
                let q0 = tile * QUERY_TILE;
                let q1 = (q0 + QUERY_TILE).min(n);
                let mut states: Vec<S> = (q0..q1).map(|_| init()).collect();
                let mut products = vec![0.0f64; (q1 - q0) * REFERENCE_TILE];
                let queries =
                    MatRef::from_row_major_slice(&self.values[q0 * d..q1 * d], q1 - q0, d);
                for r0 in (0..n).step_by(REFERENCE_TILE) {
                    let r1 = (r0 + REFERENCE_TILE).min(n);
                    let width = r1 - r0;
                    let tile = &mut products[..(q1 - q0) * width];
                    let references =
                        MatRef::from_row_major_slice(&self.values[r0 * d..r1 * d], width, d);
                    matmul(
                        MatMut::from_row_major_slice_mut(tile, q1 - q0, width),
                        Accum::Replace,
                        queries,
                        references.transpose(),
                        -2.0,
                        Par::Seq,
                    );
                    for (t, (row, state)) in tile.chunks_mut(width).zip(&mut states).enumerate() {
                        let i = q0 + t;
                        let ni = self.sq_norms[i];
                        row.iter_mut()
                            .zip(&self.sq_norms[r0..r1])
                            .for_each(|(p, nj)| *p = (*p + ni + nj).max(0.0));
                        visit(state, i, r0, row);
                    }
                }
                states
                    .into_iter()
                    .enumerate()
                    .map(|(t, state)| finish(q0 + t, state))
                    .collect::<Vec<R>>()
            })
            .collect()
    }
}
