//! CPU kernels of the k-NN soft-neighbour entropy (SPEC.md §1, streaming form).
//!
//! Rows are processed in blocks owned by one rayon task; columns stream past in tiles, so
//! memory is O(n·(k + B)) for the per-row statistics and O(k + B) per row in flight.
//! Forward: pass 1 finds κ_i (exact k-th smallest distance), j*(i) and Dmin_i; pass 2
//! accumulates Z_i, S_ic and R_ic. Backward recomputes each distance and forms
//! `G_ij + G_ji` from the saved statistics of rows i and j, so every row owns its output.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::storage::Real;

/// Rows per rayon task.
const ROW_BLOCK: usize = 16;
/// Columns streamed per tile while a row block stays in cache.
const COL_TILE: usize = 256;
/// Softmax epsilon of SPEC.md §1 (`w_ij` denominator and `log(p + ε)`).
const EPS: f64 = 1e-8;
/// Shift inside the soft threshold `σ((κ − D − 1e-10)/T)`.
const KAPPA_SHIFT: f64 = 1e-10;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub k: usize,
    pub n_batches: usize,
    pub temperature: f64,
}

/// Layout of one row's statistics in the op output (after the loss at index 0).
pub(crate) struct RowStats;

impl RowStats {
    /// κ_i, the k-th smallest distance.
    const KAPPA: usize = 0;
    /// Dmin_i, the row minimum (the softmax shift).
    const DMIN: usize = 1;
    /// j*(i), the neighbour at distance κ_i (an f64 holds any index exactly).
    const JSTAR: usize = 2;
    /// γ_i = 10⁻⁸ · ∂L/∂den_i: coefficient of ∂Z_i.
    const GAMMA: usize = 3;
    /// ∂L/∂κ_i = Σ_c β_ic R_ic / T.
    const GRAD_KAPPA: usize = 4;
    /// β_ic = ∂L/∂S_ic for c in 0..B.
    const BETA: usize = 5;

    pub(crate) const fn width(n_batches: usize) -> usize {
        Self::BETA + n_batches
    }
}

/// `−1 / (n (log B + ε))`: the loss is `α Σ_i H_i`.
fn alpha(n: usize, n_batches: usize) -> f64 {
    -1.0 / (n as f64 * ((n_batches as f64).ln() + EPS))
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Squared Euclidean distance `Σ (a − b)²` computed in f64 (the direct form, accurate for
/// near-duplicate points), with independent partial sums so the loop vectorises.
#[inline]
fn sq_dist<T: Real>(a: &[T], b: &[T]) -> f64 {
    const LANES: usize = 4;
    let mut acc = [0.0f64; LANES];
    let main = a.len() - a.len() % LANES;
    for (ca, cb) in a[..main]
        .chunks_exact(LANES)
        .zip(b[..main].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let t = ca[l].to_f64() - cb[l].to_f64();
            acc[l] += t * t;
        }
    }
    let tail: f64 = a[main..]
        .iter()
        .zip(&b[main..])
        .map(|(&u, &v)| (u.to_f64() - v.to_f64()).powi(2))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// Calls `visit(i, j, D_ij)` for every row `i` of `rows` and every other cell `j`,
/// streaming the columns in tiles so that the row block is reused from cache.
fn for_each_distance<T: Real>(
    x: &[T],
    n: usize,
    d: usize,
    rows: std::ops::Range<usize>,
    mut visit: impl FnMut(usize, usize, f64),
) {
    for tile_start in (0..n).step_by(COL_TILE) {
        let tile = tile_start..(tile_start + COL_TILE).min(n);
        for i in rows.clone() {
            let xi = &x[i * d..(i + 1) * d];
            for j in tile.clone() {
                if j != i {
                    visit(i, j, sq_dist(xi, &x[j * d..(j + 1) * d]));
                }
            }
        }
    }
}

/// A candidate neighbour, ordered by distance then index (a total order).
#[derive(Clone, Copy, PartialEq)]
struct Neighbour {
    dist: f64,
    index: usize,
}

impl Eq for Neighbour {}
impl PartialOrd for Neighbour {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Neighbour {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.index.cmp(&other.index))
    }
}

/// The k smallest distances of one row seen so far (a max-heap of size k) and the minimum.
struct TopK {
    k: usize,
    heap: BinaryHeap<Neighbour>,
    min: f64,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            min: f64::INFINITY,
        }
    }

    #[inline]
    fn push(&mut self, dist: f64, index: usize) {
        self.min = self.min.min(dist);
        let cand = Neighbour { dist, index };
        if self.heap.len() < self.k {
            self.heap.push(cand);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if cand < *top {
                *top = cand;
            }
        }
    }

    /// (κ, j*): the k-th smallest distance and its neighbour.
    fn kth(&self) -> Neighbour {
        *self
            .heap
            .peek()
            .expect("k >= 1 and n - 1 >= k candidates were pushed")
    }
}

/// Forward pass. Returns `[loss, row 0 stats, row 1 stats, ...]` in f64 whatever `T`, so
/// that the backward pass sees exactly the κ_i and Dmin_i the forward pass used.
pub(crate) fn forward<T: Real>(
    x: &[T],
    n: usize,
    d: usize,
    labels: &[u32],
    p: &Params,
) -> Vec<f64> {
    let width = RowStats::width(p.n_batches);
    let mut out = vec![0.0; 1 + n * width];
    let (loss, stats) = out.split_at_mut(1);
    let entropy_sum: f64 = stats
        .par_chunks_mut(ROW_BLOCK * width)
        .enumerate()
        .map(|(block, block_stats)| {
            let rows = block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(n);
            forward_block(x, n, d, labels, p, rows, block_stats)
        })
        .sum();
    loss[0] = alpha(n, p.n_batches) * entropy_sum;
    out
}

/// Both forward passes for one block of rows; writes their statistics, returns Σ_i H_i.
fn forward_block<T: Real>(
    x: &[T],
    n: usize,
    d: usize,
    labels: &[u32],
    p: &Params,
    rows: std::ops::Range<usize>,
    block_stats: &mut [f64],
) -> f64 {
    let n_batches = p.n_batches;
    let inv_t = 1.0 / p.temperature;
    let first = rows.start;

    // Pass 1: exact top-k per row.
    let mut topk: Vec<TopK> = rows.clone().map(|_| TopK::new(p.k)).collect();
    for_each_distance(x, n, d, rows.clone(), |i, j, dist| {
        topk[i - first].push(dist, j)
    });
    let kth: Vec<Neighbour> = topk.iter().map(TopK::kth).collect();
    let dmin: Vec<f64> = topk.iter().map(|t| t.min).collect();

    // Pass 2: Z_i, S_ic, R_ic.
    let mut z = vec![0.0f64; rows.len()];
    let mut s = vec![0.0f64; rows.len() * n_batches];
    let mut r = vec![0.0f64; rows.len() * n_batches];
    for_each_distance(x, n, d, rows.clone(), |i, j, dist| {
        let row = i - first;
        let e = (-(dist - dmin[row]) * inv_t).exp();
        let m = sigmoid((kth[row].dist - dist - KAPPA_SHIFT) * inv_t);
        let c = row * n_batches + labels[j] as usize;
        z[row] += e;
        s[c] += e * m;
        r[c] += e * m * (1.0 - m);
    });

    // Entropy and the statistics the backward pass needs.
    let alpha = alpha(n, n_batches);
    let width = RowStats::width(n_batches);
    let mut entropy_sum = 0.0;
    for row in 0..rows.len() {
        let s_row = &s[row * n_batches..(row + 1) * n_batches];
        let r_row = &r[row * n_batches..(row + 1) * n_batches];
        let den = s_row.iter().sum::<f64>() + EPS * z[row];
        let mut entropy = 0.0;
        let mut h_dot_p = 0.0;
        let out = &mut block_stats[row * width..(row + 1) * width];
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
        for (c, &r_c) in r_row.iter().enumerate() {
            let beta = out[RowStats::BETA + c] + grad_den;
            out[RowStats::BETA + c] = beta;
            grad_kappa += beta * r_c * inv_t;
        }
        out[RowStats::KAPPA] = kth[row].dist;
        out[RowStats::DMIN] = dmin[row];
        out[RowStats::JSTAR] = kth[row].index as f64;
        out[RowStats::GAMMA] = EPS * grad_den;
        out[RowStats::GRAD_KAPPA] = grad_kappa;
        entropy_sum += entropy;
    }
    entropy_sum
}

/// One row's saved statistics.
struct Saved<'a> {
    row: &'a [f64],
}

impl Saved<'_> {
    /// ∂L/∂D for the pair (this row, neighbour `j` with label `label_j`) at distance `dist`.
    #[inline]
    fn grad_dist(&self, j: usize, label_j: usize, dist: f64, inv_t: f64) -> f64 {
        let get = |slot: usize| self.row[slot];
        let e = (-(dist - get(RowStats::DMIN)) * inv_t).exp();
        let m = sigmoid((get(RowStats::KAPPA) - dist - KAPPA_SHIFT) * inv_t);
        let mut g =
            -e * inv_t * (get(RowStats::BETA + label_j) * m * (2.0 - m) + get(RowStats::GAMMA));
        if get(RowStats::JSTAR) as usize == j {
            g += get(RowStats::GRAD_KAPPA);
        }
        g
    }
}

/// Backward pass: `∂loss/∂x` (for a unit upstream gradient) from the forward output.
pub(crate) fn backward<T: Real>(
    x: &[T],
    n: usize,
    d: usize,
    labels: &[u32],
    forward_out: &[f64],
    p: &Params,
) -> Vec<T> {
    let width = RowStats::width(p.n_batches);
    let stats = &forward_out[1..];
    let saved = |i: usize| Saved {
        row: &stats[i * width..(i + 1) * width],
    };
    let inv_t = 1.0 / p.temperature;
    let mut grad = vec![T::from_f64(0.0); n * d];
    grad.par_chunks_mut(ROW_BLOCK * d)
        .enumerate()
        .for_each(|(block, block_grad)| {
            let rows = block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(n);
            let first = rows.start;
            // Σ_j 2 (G_ij + G_ji)(x_i − x_j), accumulated in f64.
            let mut acc = vec![0.0f64; rows.len() * d];
            for_each_distance(x, n, d, rows.clone(), |i, j, dist| {
                let g_ij = saved(i).grad_dist(j, labels[j] as usize, dist, inv_t);
                let g_ji = saved(j).grad_dist(i, labels[i] as usize, dist, inv_t);
                let c = 2.0 * (g_ij + g_ji);
                let row = i - first;
                let (xi, xj) = (&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]);
                for ((a, &u), &v) in acc[row * d..(row + 1) * d].iter_mut().zip(xi).zip(xj) {
                    *a += c * (u - v).to_f64();
                }
            });
            for (g, a) in block_grad.iter_mut().zip(acc) {
                *g = T::from_f64(a);
            }
        });
    grad
}
