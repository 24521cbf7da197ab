//! CPU kernels of the k-NN soft-neighbour entropy (SPEC.md §1, streaming form).
//!
//! - Cells are first reordered by batch ([`ByBatch`]), so every batch is a contiguous run
//!   of columns and the per-batch sums S_ic, R_ic are plain vectorised sums.
//! - Rows are processed in blocks owned by one rayon task; columns stream past in tiles.
//!   Each distance tile is one GEMM ([`Points::tile`]: `D = |x_i|² + |x_j|² − 2 X_I X_Jᵀ`,
//!   the `gemm` crate that Candle uses), so memory is O(n·(k + B)) plus one tile per thread.
//! - Forward: pass 1 keeps the exact top-k of each row ([`TopK`]: κ_i, j*(i), Dmin_i); pass 2
//!   accumulates Z_i, S_ic and R_ic with a vectorised exponential.
//! - Backward: recompute each tile, turn it into `C_ij = 2 (G_ij + G_ji)` from the saved
//!   statistics of rows i and j, and accumulate `Σ_j C_ij (x_i − x_j)` with a second GEMM;
//!   every row owns its output, so there are no atomics and the result is deterministic.
//! - The statistics leave (and re-enter) in input row order, as [`RowStats`] lays out.
//! - Both passes compute a range of rows against all n columns (all rows on one device,
//!   a rank's own cells when the loss is sharded): the range's cells come first in the
//!   batch order, so they are positions `0..rows.len()`.

use std::ops::Range;

use diffbio_pairwise::{dispatch, for_each_lane, lane_sum, Points, Real, TopK, Vectorised, LANES};
use rayon::prelude::*;

use super::contract::{Params, RowStats, EPS, KAPPA_SHIFT};

/// Rows per rayon task. A row's statistics and gradient do not depend on it (each row meets
/// the columns in the same tiles, in the same order); only the loss, a sum of block sums,
/// may move in its last bit. It sets the size of the `gemm` calls: 256 rows took batch
/// mixing fwd + bwd at n = 100,000, d = 32 in f32 from 31.4 s (64 rows) to 27.9 s on
/// 2 cores, loss and gradient bit for bit the same.
const ROW_BLOCK: usize = 256;
/// Columns per distance tile.
const COL_TILE: usize = 512;

/// `−1 / (n (log B + ε))`: the loss is `α Σ_i H_i`.
fn alpha(n: usize, n_batches: usize) -> f64 {
    -1.0 / (n as f64 * ((n_batches as f64).ln() + EPS))
}

/// The cells in batch order: a stable sort of the rows by (outside the computed range,
/// label), so the computed rows are the first positions and each batch is at most two
/// runs of columns.
struct ByBatch<T> {
    points: Points<T>,
    labels: Vec<u32>,
    /// The positions where a run of one label ends (where the label changes, and n).
    run_ends: Vec<usize>,
    /// `order[p]`: the input row at batch-order position `p`.
    order: Vec<usize>,
    /// `position[i]`: the batch-order position of input row `i` (the inverse of `order`).
    position: Vec<usize>,
}

impl<T: Real> ByBatch<T> {
    fn new(x: &[T], d: usize, labels: &[u32], rows: &Range<usize>) -> Self {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|&i| (!rows.contains(&i), labels[i]));
        let mut position = vec![0; order.len()];
        order.iter().enumerate().for_each(|(p, &i)| position[i] = p);
        // Centred on the column means: distances do not change, but the tiles'
        // |x_i|² + |x_j|² − 2 x_i·x_j loses ε·|x|² to rounding, which far from the origin
        // would swamp the gaps between neighbours (the direct form of the CUDA kernels does
        // not have this loss).
        let mut mean = vec![0.0f64; d];
        x.chunks_exact(d.max(1)).for_each(|row| {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v.to_f64());
        });
        let rows = labels.len().max(1) as f64;
        mean.iter_mut().for_each(|m| *m /= rows);
        let x: Vec<T> = order
            .iter()
            .flat_map(|&i| {
                let row = &x[i * d..(i + 1) * d];
                row.iter()
                    .zip(&mean)
                    .map(|(v, m)| T::from_f64(v.to_f64() - m))
            })
            .collect();
        let labels: Vec<u32> = order.iter().map(|&i| labels[i]).collect();
        let run_ends = (1..=labels.len())
            .filter(|&p| p == labels.len() || labels[p] != labels[p - 1])
            .collect();
        Self {
            points: Points::new(x, d),
            labels,
            run_ends,
            order,
            position,
        }
    }

    fn n(&self) -> usize {
        self.labels.len()
    }

    fn d(&self) -> usize {
        self.points.dims()
    }

    /// The runs of one batch inside `cols`: `(batch, positions)`.
    fn runs(&self, cols: Range<usize>) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
        let mut start = cols.start;
        std::iter::from_fn(move || {
            if start >= cols.end {
                return None;
            }
            let next = self.run_ends[self.run_ends.partition_point(|&e| e <= start)];
            let end = next.min(cols.end);
            let run = (self.labels[start] as usize, start..end);
            start = end;
            Some(run)
        })
    }

    /// `out[r][j] = D(rows[r], cols[j])` (row-major, `cols.len()` wide), `+∞` on the
    /// diagonal, so a cell's own pair weighs `exp(−∞) = 0`.
    fn distance_tile(&self, rows: Range<usize>, cols: Range<usize>, out: &mut [T]) {
        self.points.tile(rows.clone(), cols.clone(), out);
        let w = cols.len();
        for (r, i) in rows.enumerate() {
            if cols.contains(&i) {
                out[r * w + i - cols.start] = T::INFINITY;
            }
        }
    }

    /// Statistics of the computed rows (positions `0..`) → their order in `rows`, j* as
    /// an input row.
    fn to_input_order(&self, sorted: &[f64], width: usize, rows: &Range<usize>, out: &mut [f64]) {
        for (p, row) in sorted.chunks_exact(width).enumerate() {
            let local = self.order[p] - rows.start;
            let dest = &mut out[local * width..(local + 1) * width];
            dest.copy_from_slice(row);
            dest[RowStats::JSTAR] = self.order[row[RowStats::JSTAR] as usize] as f64;
        }
    }

    /// The batch-order position of the j* of input row `i`'s statistics.
    fn jstar_position(&self, stats: &[f64], width: usize, i: usize) -> usize {
        self.position[stats[i * width + RowStats::JSTAR] as usize]
    }
}

fn tiles(n: usize, size: usize) -> impl Iterator<Item = Range<usize>> {
    (0..n).step_by(size).map(move |s| s..(s + size).min(n))
}

/// The gate offset `q_i = exp((Dmin_i − κ_i + 1e-10)/T)` of a row. With
/// `e_ij = exp((Dmin_i − D_ij)/T)` it gives `m_ij = σ((κ_i − D_ij − 1e-10)/T) = e_ij / (e_ij + q_i)`,
/// so one exponential per pair yields both the softmax weight and the soft k-NN gate.
/// It is floored at the smallest normal f32, which keeps `e/(e + q)` free of 0/0 and
/// changes m only where `e·m` is below 1e-38 relative to the row's nearest neighbour.
fn gate_offset(dmin: f64, kappa: f64, temperature: f64) -> f64 {
    ((dmin - kappa + KAPPA_SHIFT) / temperature)
        .exp()
        .max(f32::MIN_POSITIVE as f64)
}

/// `(e, m)` of one pair at distance `dist` from a row with shift `dmin` and gate offset
/// `q > 0` (see [`gate_offset`]); where e underflows to 0, m is 0 too.
#[inline(always)]
fn weight_and_gate<T: Real>(dist: T, dmin: T, q: T, inv_t: T) -> (T, T) {
    let e = ((dmin - dist) * inv_t).fast_exp();
    (e, e / (e + q))
}

/// `(Σ e, Σ e·m, Σ e·m·(1 − m))` over one run of distances of one row.
#[inline(always)]
fn run_sums<T: Real>(dists: &[T], dmin: T, q: T, inv_t: T) -> [f64; 3] {
    let zero = T::default();
    let one = T::from_f64(1.0);
    let (mut z, mut s, mut r) = ([zero; LANES], [zero; LANES], [zero; LANES]);
    for_each_lane(dists, |l, dist| {
        let (e, m) = weight_and_gate(dist, dmin, q, inv_t);
        let em = e * m;
        z[l] += e;
        s[l] += em;
        r[l] += em * (one - m);
    });
    let total = |a: [T; LANES]| a.iter().map(|v| v.to_f64()).sum::<f64>();
    [total(z), total(s), total(r)]
}

/// Forward pass over `rows` of the n cells. Returns `[α Σ_{i ∈ rows} H_i, stats of
/// row rows.start, ...]` in f64 whatever `T` ([`RowStats`]): the loss when `rows` is
/// every row, a rank's share of it otherwise; the backward pass sees exactly the κ_i and
/// Dmin_i the forward pass used.
pub(crate) fn forward<T: Real>(
    x: &[T],
    (n, d): (usize, usize),
    labels: &[u32],
    rows: Range<usize>,
    p: &Params,
) -> Vec<f64> {
    let cells = ByBatch::new(x, d, labels, &rows);
    let width = RowStats::width(p.n_batches);
    let mut sorted = vec![0.0; rows.len() * width];
    let block_entropy: Vec<f64> = sorted
        .par_chunks_mut(ROW_BLOCK * width)
        .enumerate()
        .map(|(block, block_stats)| {
            let rows = block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(rows.len());
            dispatch(ForwardBlock {
                cells: &cells,
                p,
                rows,
                block_stats,
            })
        })
        .collect();
    // Summed in block order, not in rayon's split order: the same bits on any thread count.
    let entropy_sum: f64 = block_entropy.iter().sum();
    let mut out = vec![0.0; 1 + rows.len() * width];
    out[0] = alpha(n, p.n_batches) * entropy_sum;
    cells.to_input_order(&sorted, width, &rows, &mut out[1..]);
    out
}

/// Both forward passes for one block of rows: writes their statistics, returns Σ_i H_i.
struct ForwardBlock<'a, T> {
    cells: &'a ByBatch<T>,
    p: &'a Params,
    rows: Range<usize>,
    block_stats: &'a mut [f64],
}

impl<T: Real> Vectorised for ForwardBlock<'_, T> {
    type Output = f64;

    #[inline(always)]
    fn run(self) -> f64 {
        forward_block(self.cells, self.p, self.rows, self.block_stats)
    }
}

#[inline(always)]
fn forward_block<T: Real>(
    cells: &ByBatch<T>,
    p: &Params,
    rows: Range<usize>,
    block_stats: &mut [f64],
) -> f64 {
    let (n, b) = (cells.n(), p.n_batches);
    let mut tile = vec![T::default(); rows.len() * COL_TILE];

    // Pass 1: exact top-k per row (κ_i, j*(i) = the k-th; Dmin_i = the first).
    let mut topk: Vec<TopK<T>> = rows.clone().map(|_| TopK::new(p.k)).collect();
    for cols in tiles(n, COL_TILE) {
        let w = cols.len();
        cells.distance_tile(rows.clone(), cols.clone(), &mut tile);
        for ((r, top), i) in topk.iter_mut().enumerate().zip(rows.clone()) {
            top.offer_row(cols.start, &tile[r * w..(r + 1) * w], i);
        }
    }
    let (kth, dmin): (Vec<(f64, usize)>, Vec<f64>) = topk
        .into_iter()
        .map(|top| {
            let nearest = top.finish();
            let (kappa, jstar) = nearest[p.k - 1];
            ((kappa.to_f64(), jstar), nearest[0].0.to_f64())
        })
        .unzip();

    // Pass 2: Z_i, S_ic, R_ic, batch run by batch run.
    let mut z = vec![0.0f64; rows.len()];
    let mut s = vec![0.0f64; rows.len() * b];
    let mut r_sum = vec![0.0f64; rows.len() * b];
    let inv_t = T::from_f64(1.0 / p.temperature);
    let q: Vec<T> = (0..rows.len())
        .map(|r| T::from_f64(gate_offset(dmin[r], kth[r].0, p.temperature)))
        .collect();
    for cols in tiles(n, COL_TILE) {
        let w = cols.len();
        cells.distance_tile(rows.clone(), cols.clone(), &mut tile);
        for r in 0..rows.len() {
            let row = &tile[r * w..(r + 1) * w];
            let row_dmin = T::from_f64(dmin[r]);
            for (c, run) in cells.runs(cols.clone()) {
                let local = run.start - cols.start..run.end - cols.start;
                let [zs, ss, rs] = run_sums(&row[local], row_dmin, q[r], inv_t);
                z[r] += zs;
                s[r * b + c] += ss;
                r_sum[r * b + c] += rs;
            }
        }
    }

    // Entropy and the statistics the backward pass needs.
    let alpha = alpha(n, b);
    let inv_t = 1.0 / p.temperature;
    let width = RowStats::width(b);
    let mut entropy_sum = 0.0;
    for r in 0..rows.len() {
        let s_row = &s[r * b..(r + 1) * b];
        let den = s_row.iter().sum::<f64>() + EPS * z[r];
        let out = &mut block_stats[r * width..(r + 1) * width];
        let (mut entropy, mut h_dot_p) = (0.0, 0.0);
        for (c, &s_c) in s_row.iter().enumerate() {
            let p_c = s_c / den;
            let log_p = (p_c + EPS).ln();
            entropy -= p_c * log_p;
            let h_c = -(log_p + p_c / (p_c + EPS));
            h_dot_p += h_c * p_c;
            out[RowStats::BETA + c] = alpha * h_c / den;
        }
        let grad_den = -alpha * h_dot_p / den;
        let mut grad_kappa = 0.0;
        for (c, &r_c) in r_sum[r * b..(r + 1) * b].iter().enumerate() {
            out[RowStats::BETA + c] += grad_den;
            grad_kappa += out[RowStats::BETA + c] * r_c * inv_t;
        }
        out[RowStats::KAPPA] = kth[r].0;
        out[RowStats::DMIN] = dmin[r];
        out[RowStats::JSTAR] = kth[r].1 as f64; // a batch-order position until the end of `forward`
        out[RowStats::GAMMA] = EPS * grad_den;
        out[RowStats::GRAD_KAPPA] = grad_kappa;
        entropy_sum += entropy;
    }
    entropy_sum
}

/// The saved statistics as per-row columns in `T`, for the vectorised backward pass.
struct SavedColumns<T> {
    dmin: Vec<T>,
    /// The gate offsets q_j (see [`gate_offset`]).
    q: Vec<T>,
    gamma: Vec<T>,
    /// `beta[c][j] = β_jc`.
    beta: Vec<Vec<T>>,
}

impl<T: Real> SavedColumns<T> {
    /// From the statistics in input order, as columns in batch order.
    fn new(stats: &[f64], order: &[usize], b: usize, temperature: f64) -> Self {
        let width = RowStats::width(b);
        let row = |p: usize| &stats[order[p] * width..(order[p] + 1) * width];
        let column = |slot: usize| {
            (0..order.len())
                .map(|p| T::from_f64(row(p)[slot]))
                .collect()
        };
        Self {
            dmin: column(RowStats::DMIN),
            q: (0..order.len())
                .map(|j| {
                    T::from_f64(gate_offset(
                        row(j)[RowStats::DMIN],
                        row(j)[RowStats::KAPPA],
                        temperature,
                    ))
                })
                .collect(),
            gamma: column(RowStats::GAMMA),
            beta: (0..b).map(|c| column(RowStats::BETA + c)).collect(),
        }
    }
}

/// `∂L/∂D` of one pair at distance `dist`, seen from the row whose statistics are
/// (dmin, q, gamma), with `beta` its weight for the other end's batch.
#[inline(always)]
fn grad_dist<T: Real>(dist: T, dmin: T, q: T, beta: T, gamma: T, inv_t: T) -> T {
    let two = T::from_f64(2.0);
    let (e, m) = weight_and_gate(dist, dmin, q, inv_t);
    T::default() - e * inv_t * (beta * m * (two - m) + gamma)
}

/// One row's statistics, broadcast against a run of columns.
#[derive(Clone, Copy)]
struct RowSaved<T> {
    dmin: T,
    q: T,
    gamma: T,
    /// β_{i, b_j} for the run's batch.
    beta: T,
}

/// Overwrites a run of distances of row i with `C_ij = 2 (G_ij + G_ji)` (without the κ
/// terms) and returns their sum. The column statistics are the run's slices of
/// [`SavedColumns`], `beta_cols[j] = β_{j, b_i}`.
#[inline(always)]
fn pair_weights<T: Real>(
    dists: &mut [T],
    row: RowSaved<T>,
    cols: (&[T], &[T], &[T], &[T]),
    inv_t: T,
) -> f64 {
    let (dmin_cols, q_cols, gamma_cols, beta_cols) = cols;
    let two = T::from_f64(2.0);
    // An element-wise loop (no reduction inside), which LLVM's loop vectoriser handles.
    for ((((v, &dmin_j), &q_j), &gamma_j), &beta_j) in dists
        .iter_mut()
        .zip(dmin_cols)
        .zip(q_cols)
        .zip(gamma_cols)
        .zip(beta_cols)
    {
        let g_ij = grad_dist(*v, row.dmin, row.q, row.beta, row.gamma, inv_t);
        let g_ji = grad_dist(*v, dmin_j, q_j, beta_j, gamma_j, inv_t);
        *v = two * (g_ij + g_ji);
    }
    lane_sum(dists)
}

/// Backward pass: rows `rows` of `∂loss/∂x` (for a unit upstream gradient) from the
/// statistics of **every** row (`forward_out[1..]`, input order), since row i's gradient
/// has a term from each row j that has i among its neighbours.
pub(crate) fn backward<T: Real>(
    x: &[T],
    d: usize,
    labels: &[u32],
    forward_out: &[f64],
    rows: Range<usize>,
    p: &Params,
) -> Vec<T> {
    let cells = ByBatch::new(x, d, labels, &rows);
    let stats = &forward_out[1..];
    let saved = SavedColumns::<T>::new(stats, &cells.order, p.n_batches, p.temperature);
    let mut grad_sorted = vec![T::default(); rows.len() * d];
    grad_sorted
        .par_chunks_mut(ROW_BLOCK * d)
        .enumerate()
        .for_each(|(block, block_grad)| {
            let rows = block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(rows.len());
            dispatch(BackwardBlock {
                cells: &cells,
                saved: &saved,
                p,
                rows,
                block_grad,
            });
        });
    add_kappa_terms(&cells, stats, p.n_batches, &mut grad_sorted);
    let mut grad = vec![T::default(); rows.len() * d];
    for (pos, &i) in cells.order[..rows.len()].iter().enumerate() {
        let local = i - rows.start;
        grad[local * d..(local + 1) * d].copy_from_slice(&grad_sorted[pos * d..(pos + 1) * d]);
    }
    grad
}

/// The dense part of the backward pass for one row block: `Σ_j C_ij (x_i − x_j)`.
struct BackwardBlock<'a, T> {
    cells: &'a ByBatch<T>,
    saved: &'a SavedColumns<T>,
    p: &'a Params,
    rows: Range<usize>,
    block_grad: &'a mut [T],
}

impl<T: Real> Vectorised for BackwardBlock<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        backward_block(self.cells, self.saved, self.p, self.rows, self.block_grad)
    }
}

#[inline(always)]
fn backward_block<T: Real>(
    cells: &ByBatch<T>,
    saved: &SavedColumns<T>,
    p: &Params,
    rows: Range<usize>,
    block_grad: &mut [T],
) {
    let (n, d) = (cells.n(), cells.d());
    let inv_t = T::from_f64(1.0 / p.temperature);
    let mut tile = vec![T::default(); rows.len() * COL_TILE];
    let mut row_weight = vec![0.0f64; rows.len()];
    for cols in tiles(n, COL_TILE) {
        let w = cols.len();
        cells.distance_tile(rows.clone(), cols.clone(), &mut tile);
        for (r, i) in rows.clone().enumerate() {
            let row = &mut tile[r * w..(r + 1) * w];
            let beta_cols = &saved.beta[cells.labels[i] as usize];
            for (c, run) in cells.runs(cols.clone()) {
                let row_saved = RowSaved {
                    dmin: saved.dmin[i],
                    q: saved.q[i],
                    gamma: saved.gamma[i],
                    beta: saved.beta[c][i],
                };
                let col_saved = (
                    &saved.dmin[run.clone()],
                    &saved.q[run.clone()],
                    &saved.gamma[run.clone()],
                    &beta_cols[run.clone()],
                );
                let local = run.start - cols.start..run.end - cols.start;
                row_weight[r] += pair_weights(&mut row[local], row_saved, col_saved, inv_t);
            }
        }
        // block_grad −= C · X_cols
        cells
            .points
            .subtract_weighted_columns(&tile, cols.clone(), block_grad);
    }
    // + (Σ_j C_ij) x_i
    for (r, i) in rows.enumerate() {
        let weight = T::from_f64(row_weight[r]);
        for (g, &xi) in block_grad[r * d..(r + 1) * d]
            .iter_mut()
            .zip(cells.points.row(i))
        {
            *g += weight * xi;
        }
    }
}

/// The κ part of G: `∂L/∂κ_i` flows to the pair (i, j*(i)), i.e. adds
/// `2 ∂L/∂κ_i (x_i − x_j*)` to row i and `2 ∂L/∂κ_i (x_j* − x_i)` to row j*.
/// Each computed row (`grad`, positions `0..`) gathers its own terms, also from rows
/// outside the range (through the inverse of j* over all rows), so no row is written twice.
fn add_kappa_terms<T: Real>(cells: &ByBatch<T>, stats: &[f64], b: usize, grad: &mut [T]) {
    let (n, d, width) = (cells.n(), cells.d(), RowStats::width(b));
    // In batch-order positions: the statistics are in input order.
    let jstar = |p: usize| cells.jstar_position(stats, width, cells.order[p]);
    let grad_kappa = |p: usize| stats[cells.order[p] * width + RowStats::GRAD_KAPPA];
    // Inverse of j* as compressed lists: pointed_by[start[i]..start[i + 1]] = {j : j*(j) = i}.
    let mut start = vec![0usize; n + 1];
    (0..n).for_each(|j| start[jstar(j) + 1] += 1);
    (0..n).for_each(|i| start[i + 1] += start[i]);
    let mut fill = start.clone();
    let mut pointed_by = vec![0usize; n];
    for j in 0..n {
        pointed_by[fill[jstar(j)]] = j;
        fill[jstar(j)] += 1;
    }
    grad.par_chunks_mut(d).enumerate().for_each(|(i, g)| {
        let xi = cells.points.row(i);
        let mut add = |other: usize, coef: f64| {
            for ((g, &u), &v) in g.iter_mut().zip(xi).zip(cells.points.row(other)) {
                *g += T::from_f64(coef * (u.to_f64() - v.to_f64()));
            }
        };
        add(jstar(i), 2.0 * grad_kappa(i));
        for &j in &pointed_by[start[i]..start[i + 1]] {
            add(j, 2.0 * grad_kappa(j));
        }
    });
}
