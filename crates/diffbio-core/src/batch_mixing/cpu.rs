//! CPU kernels of the k-NN soft-neighbour entropy (SPEC.md §1, streaming form).
//!
//! - Cells are first reordered by batch ([`ByBatch`]), so every batch is a contiguous run
//!   of positions and the per-batch sums S_ic, R_ic are plain vectorised sums.
//! - Each pass visits every pair of cells once ([`visit_pairs`]): tiles of two blocks of
//!   [`BLOCK`] cells (I, J ≥ I), each one GEMM (`D = |x_i|² + |x_j|² − 2 X_I X_Jᵀ`, the `gemm`
//!   crate that Candle uses) whose distances serve the rows of I and, read by columns,
//!   those of J. Memory is O(n·(k + B)) plus one tile per thread; the tiles of a round
//!   touch disjoint blocks, so each row's sums are added in the same order on any number
//!   of threads.
//! - Forward: pass 1 keeps the exact top-k of each row ([`NearestPoints`]: κ_i, j*(i),
//!   Dmin_i); pass 2 accumulates Z_i, S_ic and R_ic with a vectorised exponential.
//! - Backward: each tile becomes `C_ij = 2 (G_ij + G_ji)` from the saved statistics of
//!   rows i and j (C is symmetric), then `Σ_j C_ij (x_i − x_j)` for the rows of I and of
//!   J with a GEMM each.
//! - The two ends of a pair weigh it with their own shifts Dmin; where a tile's shifts are
//!   close, one exponential per pair serves both, each end's factor applied per cell
//!   ([`PairExp`]), else each end takes its own.
//! - The statistics leave (and re-enter) in input row order, as [`RowStats`] lays out.
//! - Both passes compute a range of rows against all n columns (all rows on one device,
//!   a rank's own cells when the loss is sharded): the range's cells come first in the
//!   batch order, so they are positions `0..rows.len()`, and tiles of two later blocks
//!   are skipped.

use std::marker::PhantomData;
use std::ops::Range;

use diffbio_pairwise::{
    dispatch, for_each_lane, lane_sum, parts, visit_pairs, NearestPoints, PairVisitor, Points,
    Real, Tile, TopK, Vectorised, BLOCK, LANES,
};
use rayon::prelude::*;

use super::contract::{Params, RowStats, EPS, KAPPA_SHIFT};

/// Rows of a tile whose column sums are added in `T` before they join the f64 sums: as
/// many terms as a row's sum of a tile has per lane.
const COLUMN_SUM_ROWS: usize = BLOCK / LANES;

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

    /// The runs of one batch inside a tile's `columns`, as offsets into its rows.
    fn tile_runs(&self, columns: Range<usize>) -> Vec<(usize, Range<usize>)> {
        let first = columns.start;
        self.runs(columns)
            .map(|(c, run)| (c, run.start - first..run.end - first))
            .collect()
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

/// The part of `positions` below `rows_end`, from 0: the rows of a block that are computed.
fn computed(positions: &Range<usize>, rows_end: usize) -> usize {
    positions.end.min(rows_end).saturating_sub(positions.start)
}

/// Sets the distance of every cell to itself to `+∞` on a diagonal tile, so that a cell's
/// own pair weighs `exp(−∞) = 0`.
fn exclude_self<T: Real>(tile: &mut Tile<T>) {
    let w = tile.columns.len();
    let first = tile.rows.start;
    for p in tile.rows.clone() {
        tile.distances_mut()[(p - first) * w + p - first] = T::INFINITY;
    }
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

/// Where a tile's pair weights `e_ij = exp((Dmin_i − D_ij)/T)` come from.
///
/// The two ends of a pair have their own shifts Dmin, so `e_ij ≠ e_ji`: two exponentials
/// per pair ([`FromDistance`]). Where the shifts of a tile's cells lie within
/// [`shared_spread`] temperatures of each other, one serves both ([`Precomputed`]): with
/// `s` the tile's largest shift, the tile is overwritten with `E_ij = exp((s − D_ij)/T)`
/// and `e_ij = a_i E_ij`, `a_i = exp((Dmin_i − s)/T)` ([`Ends`]). As `D_ij ≥ Dmin_i`,
/// `E ≤ exp(spread/T)` cannot overflow and `a_i` cannot underflow; E underflows to 0 only
/// where `e_ij ≤ E` is below `T`'s normal range too, so no term is lost that the per-end
/// form keeps. The gate is `m_ij = e_ij/(e_ij + q_i) = E_ij/(E_ij + q_i/a_i)`.
trait PairExp {
    /// The exponential of a tile value `value` for the end whose shift is `shift`.
    fn exp<T: Real>(value: T, shift: T, inv_t: T) -> T;
}

/// The tile holds distances: `exp((shift − D)/T)`.
struct FromDistance;

impl PairExp for FromDistance {
    #[inline(always)]
    fn exp<T: Real>(dist: T, shift: T, inv_t: T) -> T {
        ((shift - dist) * inv_t).fast_exp()
    }
}

/// The tile holds the shared exponentials E already.
struct Precomputed;

impl PairExp for Precomputed {
    #[inline(always)]
    fn exp<T: Real>(e: T, _: T, _: T) -> T {
        e
    }
}

/// How far apart (in temperatures) the shifts of a tile's cells may be for one
/// exponential per pair ([`PairExp`]): half of `T`'s exponent range, so that
/// `E ≤ exp(spread/T)` and the sums of up to 2³² of them stay finite.
fn shared_spread<T: Real>() -> f64 {
    -T::ZERO_BELOW / 2.0
}

/// The shared shift `s` (the largest) of a tile whose cells have shifts `dmin`, if they
/// are close enough ([`shared_spread`]); then the tile's distances become
/// `E = exp((s − D)/T)`.
fn share_exponentials<T: Real>(
    tile: &mut Tile<T>,
    dmin: impl Iterator<Item = T>,
    inv_t: T,
) -> Option<T> {
    let (lo, hi) = dmin.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v.to_f64()), hi.max(v.to_f64()))
    });
    let shift = T::from_f64(hi);
    ((hi - lo) * inv_t.to_f64() <= shared_spread::<T>()).then(|| {
        dispatch(ExpInPlace {
            values: tile.distances_mut(),
            shift,
            inv_t,
        });
        shift
    })
}

/// `v ← exp((shift − v)/T)` for every value.
struct ExpInPlace<'a, T> {
    values: &'a mut [T],
    shift: T,
    inv_t: T,
}

impl<T: Real> ExpInPlace<'_, T> {
    #[inline(always)]
    fn apply(self, exp: impl Fn(T) -> T) {
        for v in self.values {
            *v = exp((self.shift - *v) * self.inv_t);
        }
    }
}

impl<T: Real> Vectorised for ExpInPlace<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        self.apply(T::fast_exp)
    }

    #[inline(always)]
    fn run_fused(self) {
        self.apply(T::fast_exp_fused)
    }
}

/// One side of a tile's cells (its rows or its columns) in the form of [`PairExp`]: the
/// shift of each cell's exponential, the factor `a` that turns it into the cell's own
/// `e`, and the gate offset over that factor.
struct Ends<T> {
    shift: Vec<T>,
    scale: Vec<f64>,
    q: Vec<T>,
}

impl<T: Real> Ends<T> {
    /// For cells with shifts `dmin` and gate offsets `q`, against the tile's shared shift
    /// (or none: each its own).
    fn new(dmin: &[T], q: &[T], shared: Option<T>, inv_t: T) -> Self {
        let scale: Vec<f64> = match shared {
            Some(s) => dmin
                .iter()
                .map(|&v| ((v.to_f64() - s.to_f64()) * inv_t.to_f64()).exp())
                .collect(),
            None => vec![1.0; dmin.len()],
        };
        Self {
            shift: shared.map_or_else(|| dmin.to_vec(), |s| vec![s; dmin.len()]),
            q: q.iter()
                .zip(&scale)
                .map(|(&q, &a)| T::from_f64(q.to_f64() / a))
                .collect(),
            scale,
        }
    }
}

/// A pair's terms of Z, S and R seen from one end (over that end's factor a, see
/// [`PairExp`]): `(e, e·m, e·m·(1 − m))` with `m = e/(e + q)`; where e underflows to 0,
/// m is 0 too.
#[inline(always)]
fn pair_terms<P: PairExp, T: Real>(value: T, shift: T, q: T, inv_t: T) -> (T, T, T) {
    let e = P::exp(value, shift, inv_t);
    let m = e / (e + q);
    let em = e * m;
    (e, em, em * (T::from_f64(1.0) - m))
}

/// `(Σ e, Σ e·m, Σ e·m·(1 − m))` over one run of a row's tile values ([`pair_terms`]).
#[inline(always)]
fn run_sums<P: PairExp, T: Real>(values: &[T], shift: T, q: T, inv_t: T) -> [f64; 3] {
    let zero = T::default();
    let (mut z, mut s, mut r) = ([zero; LANES], [zero; LANES], [zero; LANES]);
    for_each_lane(values, |l, value| {
        let (e, em, emm) = pair_terms::<P, T>(value, shift, q, inv_t);
        z[l] += e;
        s[l] += em;
        r[l] += emm;
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
    let (m, b) = (rows.len(), p.n_batches);

    // Pass 1: exact top-k per row (κ_i, j*(i) = the k-th; Dmin_i = the first).
    let nearest = NearestPoints {
        rows_end: m,
        top_k: |_| TopK::new(p.k),
    };
    let (kth, dmin): (Vec<(f64, usize)>, Vec<f64>) =
        visit_pairs(&cells.points, m, &nearest, |_| {})
            .into_iter()
            .flat_map(|block| block.into_points())
            .map(|top| {
                let nearest = top.finish();
                let (kappa, jstar) = nearest[p.k - 1];
                ((kappa.to_f64(), jstar), nearest[0].0.to_f64())
            })
            .unzip();

    // Pass 2: Z_i, S_ic, R_ic.
    let sums = NeighbourSums {
        cells: &cells,
        n_batches: b,
        rows_end: m,
        dmin: dmin.iter().map(|&v| T::from_f64(v)).collect(),
        q: (0..m)
            .map(|r| T::from_f64(gate_offset(dmin[r], kth[r].0, p.temperature)))
            .collect(),
        inv_t: T::from_f64(1.0 / p.temperature),
    };
    let blocks = visit_pairs(&cells.points, m, &sums, |_| {});
    let (z, s, r_sum) = blocks.into_iter().fold(
        (
            Vec::with_capacity(m),
            Vec::with_capacity(m * b),
            Vec::with_capacity(m * b),
        ),
        |(mut z, mut s, mut r), block| {
            // The blocks' batch-major sums (`BlockSums`) back to row-major: s[t·B + c].
            let len = block.z.len();
            z.extend(block.z);
            s.extend((0..len * b).map(|i| block.s[i % b * len + i / b]));
            r.extend((0..len * b).map(|i| block.r[i % b * len + i / b]));
            (z, s, r)
        },
    );

    // Entropy and the statistics the backward pass needs.
    let alpha = alpha(n, b);
    let inv_t = 1.0 / p.temperature;
    let width = RowStats::width(b);
    let mut sorted = vec![0.0; m * width];
    let mut entropy_sum = 0.0;
    for (r, out) in sorted.chunks_exact_mut(width).enumerate() {
        let s_row = &s[r * b..(r + 1) * b];
        let den = s_row.iter().sum::<f64>() + EPS * z[r];
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
        out[RowStats::JSTAR] = kth[r].1 as f64; // a batch-order position until the end
        out[RowStats::GAMMA] = EPS * grad_den;
        out[RowStats::GRAD_KAPPA] = grad_kappa;
        entropy_sum += entropy;
    }
    let mut out = vec![0.0; 1 + m * width];
    out[0] = alpha * entropy_sum;
    cells.to_input_order(&sorted, width, &rows, &mut out[1..]);
    out
}

/// Pass 2 of the forward: every computed row's Z_i, S_ic and R_ic, from its Dmin_i and
/// gate offset q_i (positions `0..rows_end`).
struct NeighbourSums<'a, T> {
    cells: &'a ByBatch<T>,
    n_batches: usize,
    rows_end: usize,
    dmin: Vec<T>,
    q: Vec<T>,
    inv_t: T,
}

/// The sums of a block's `len` computed rows: `z[t]`, `s[c·len + t]`, `r[c·len + t]`
/// (batch-major, so that a run of cells' sums of one batch are contiguous).
struct BlockSums {
    z: Vec<f64>,
    s: Vec<f64>,
    r: Vec<f64>,
}

impl BlockSums {
    /// Adds the sums `[z, s, r]` of the `W` cells from `first`, of batch `c`, each times
    /// its factor `scale[j]` ([`Ends`]).
    #[inline(always)]
    fn add<const W: usize, T: Real>(
        &mut self,
        first: usize,
        c: usize,
        scale: &[f64],
        [z, s, r]: [[T; W]; 3],
    ) {
        let batch = c * self.z.len() + first;
        for l in 0..W {
            let scale = scale[first + l];
            self.z[first + l] += scale * z[l].to_f64();
            self.s[batch + l] += scale * s[l].to_f64();
            self.r[batch + l] += scale * r[l].to_f64();
        }
    }
}

impl<T: Real> PairVisitor<T> for NeighbourSums<'_, T> {
    type Block = BlockSums;

    fn block(&self, positions: Range<usize>) -> BlockSums {
        let rows = computed(&positions, self.rows_end);
        let b = self.n_batches;
        BlockSums {
            z: vec![0.0; rows],
            s: vec![0.0; rows * b],
            r: vec![0.0; rows * b],
        }
    }

    fn visit(&self, rows: &mut BlockSums, columns: Option<&mut BlockSums>, tile: &mut Tile<T>) {
        if columns.is_none() {
            exclude_self(tile);
        }
        // The computed cells of either side, and their ends.
        let row_cells = tile.rows.start..tile.rows.start + rows.z.len();
        let column_cells = match &columns {
            Some(c) if !c.z.is_empty() => tile.columns.start..tile.columns.start + c.z.len(),
            _ => 0..0,
        };
        let (dmin, q) = (&self.dmin, &self.q);
        let cells = dmin[row_cells.clone()]
            .iter()
            .chain(&dmin[column_cells.clone()]);
        let shared = share_exponentials(tile, cells.copied(), self.inv_t);
        let ends =
            |cells: Range<usize>| Ends::new(&dmin[cells.clone()], &q[cells], shared, self.inv_t);
        let work = SumTile {
            sums: self,
            rows,
            row_ends: ends(row_cells),
            columns: columns.map(|c| (c, ends(column_cells))),
            tile,
        };
        match shared {
            Some(_) => dispatch(SumTileWith::<Precomputed, T>(work, PhantomData)),
            None => dispatch(SumTileWith::<FromDistance, T>(work, PhantomData)),
        }
    }
}

/// Adds a tile's pairs to the sums of its computed row cells and, off the diagonal, of
/// its computed column cells.
struct SumTile<'a, T> {
    sums: &'a NeighbourSums<'a, T>,
    rows: &'a mut BlockSums,
    row_ends: Ends<T>,
    columns: Option<(&'a mut BlockSums, Ends<T>)>,
    tile: &'a Tile<'a, T>,
}

/// [`SumTile`] with the tile's values read as [`PairExp`] `P`.
struct SumTileWith<'a, P, T>(SumTile<'a, T>, PhantomData<P>);

impl<P: PairExp, T: Real> Vectorised for SumTileWith<'_, P, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let SumTile {
            sums,
            rows,
            row_ends,
            columns,
            tile,
        } = self.0;
        let NeighbourSums { cells, inv_t, .. } = sums;
        let inv_t = *inv_t;
        let runs = cells.tile_runs(tile.columns.clone());
        let len = rows.z.len();
        for (t, (_, row)) in tile.rows().take(len).enumerate() {
            let (shift, scale, q) = (row_ends.shift[t], row_ends.scale[t], row_ends.q[t]);
            for (c, local) in &runs {
                let c = *c;
                let [zs, ss, rs] = run_sums::<P, T>(&row[local.clone()], shift, q, inv_t);
                rows.z[t] += scale * zs;
                rows.s[c * len + t] += scale * ss;
                rows.r[c * len + t] += scale * rs;
            }
        }
        let Some((columns, ends)) = columns.filter(|(columns, _)| !columns.z.is_empty()) else {
            return;
        };
        let width = columns.z.len();
        let full = width / LANES * LANES;
        for (c, run) in cells.runs(tile.rows.clone()) {
            for part in parts(run, COLUMN_SUM_ROWS) {
                for first in (0..full).step_by(LANES) {
                    let sums = column_sums::<LANES, P, T>(tile, part.clone(), first, &ends, inv_t);
                    columns.add(first, c, &ends.scale, sums);
                }
                for first in full..width {
                    let sums = column_sums::<1, P, T>(tile, part.clone(), first, &ends, inv_t);
                    columns.add(first, c, &ends.scale, sums);
                }
            }
        }
    }
}

/// `(Σ e, Σ e·m, Σ e·m·(1 − m))` ([`pair_terms`], the columns' ends) down each of the `W`
/// tile columns from `first`, over the rows `part`: each column's terms added in row order,
/// the `W` sums held in registers.
#[inline(always)]
fn column_sums<const W: usize, P: PairExp, T: Real>(
    tile: &Tile<T>,
    part: Range<usize>,
    first: usize,
    ends: &Ends<T>,
    inv_t: T,
) -> [[T; W]; 3] {
    let zero = T::default();
    let (mut z, mut s, mut r) = ([zero; W], [zero; W], [zero; W]);
    let shift: &[T; W] = ends.shift[first..first + W].try_into().expect("W ends");
    let q: &[T; W] = ends.q[first..first + W].try_into().expect("W ends");
    for p in part {
        let values: &[T; W] = tile.row(p)[first..first + W].try_into().expect("W values");
        for l in 0..W {
            let (e, em, emm) = pair_terms::<P, T>(values[l], shift[l], q[l], inv_t);
            z[l] += e;
            s[l] += em;
            r[l] += emm;
        }
    }
    [z, s, r]
}

/// The saved statistics as per-row columns, for the vectorised backward pass.
struct SavedColumns<T> {
    dmin: Vec<T>,
    /// The gate offsets q_j (see [`gate_offset`]).
    q: Vec<T>,
    gamma: Vec<f64>,
    /// `beta[c][j] = β_jc`.
    beta: Vec<Vec<f64>>,
}

impl<T: Real> SavedColumns<T> {
    /// From the statistics in input order, as columns in batch order.
    fn new(stats: &[f64], order: &[usize], b: usize, temperature: f64) -> Self {
        let width = RowStats::width(b);
        let row = |p: usize| &stats[order[p] * width..(order[p] + 1) * width];
        let column = |slot: usize| (0..order.len()).map(|p| row(p)[slot]).collect::<Vec<_>>();
        Self {
            dmin: (0..order.len())
                .map(|p| T::from_f64(row(p)[RowStats::DMIN]))
                .collect(),
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

/// One side of a tile's cells for the backward pass ([`Ends`]), with their weights
/// `−2 a β_c / T` (`beta[c]`) and `−2 a γ / T` (`gamma`).
struct GradEnds<T> {
    ends: Ends<T>,
    gamma: Vec<T>,
    beta: Vec<Vec<T>>,
}

impl<T: Real> GradEnds<T> {
    /// The cells at `positions`.
    fn new(saved: &SavedColumns<T>, positions: Range<usize>, shared: Option<T>, inv_t: T) -> Self {
        let ends = Ends::new(
            &saved.dmin[positions.clone()],
            &saved.q[positions.clone()],
            shared,
            inv_t,
        );
        let weight = |values: &[f64]| {
            values[positions.clone()]
                .iter()
                .zip(&ends.scale)
                .map(|(&v, &a)| T::from_f64(-2.0 * a * v * inv_t.to_f64()))
                .collect()
        };
        Self {
            gamma: weight(&saved.gamma),
            beta: saved.beta.iter().map(|beta| weight(beta)).collect(),
            ends,
        }
    }
}

/// One end's part `−2 e (β m (2 − m) + γ)/T` of `C_ij = 2 (G_ij + G_ji)`, from a tile
/// value read as [`PairExp`] `P`, with the end's weights of [`GradEnds`].
#[inline(always)]
fn end_weight<P: PairExp, T: Real>(value: T, end: CellEnd<T>, inv_t: T) -> T {
    let e = P::exp(value, end.shift, inv_t);
    let m = e / (e + end.q);
    e * (end.beta * m * (T::from_f64(2.0) - m) + end.gamma)
}

/// One cell's constants in a tile's backward pass ([`GradEnds`]), with `beta` its weight
/// for the other end's batch.
#[derive(Clone, Copy)]
struct CellEnd<T> {
    shift: T,
    q: T,
    gamma: T,
    beta: T,
}

/// Overwrites a run of tile values of row i with `C_ij` ([`end_weight`] of both ends).
/// The columns' constants are the run's slices of their [`GradEnds`], `beta_j` their
/// weights for row i's batch.
#[inline(always)]
fn pair_weights<P: PairExp, T: Real>(
    values: &mut [T],
    row: CellEnd<T>,
    cols: (&[T], &[T], &[T], &[T]),
    inv_t: T,
) {
    let (shift_cols, q_cols, gamma_cols, beta_cols) = cols;
    // An element-wise loop (no reduction inside), which LLVM's loop vectoriser handles.
    for ((((v, &shift), &q), &gamma), &beta) in values
        .iter_mut()
        .zip(shift_cols)
        .zip(q_cols)
        .zip(gamma_cols)
        .zip(beta_cols)
    {
        let column = CellEnd {
            shift,
            q,
            gamma,
            beta,
        };
        *v = end_weight::<P, T>(*v, row, inv_t) + end_weight::<P, T>(*v, column, inv_t);
    }
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
    let m = rows.len();
    let dense = DenseGradient {
        cells: &cells,
        saved: SavedColumns::<T>::new(stats, &cells.order, p.n_batches, p.temperature),
        rows_end: m,
        inv_t: T::from_f64(1.0 / p.temperature),
    };
    let mut grad_sorted = Vec::with_capacity(m * d);
    for block in visit_pairs(&cells.points, m, &dense, |_| {}) {
        for (g, &weight) in block.grad.chunks_exact(d).zip(&block.weight) {
            // −Σ_j C_ij x_j + (Σ_j C_ij) x_i
            let p = grad_sorted.len() / d;
            let weight = T::from_f64(weight);
            grad_sorted.extend(
                g.iter()
                    .zip(cells.points.row(p))
                    .map(|(&g, &xi)| g + weight * xi),
            );
        }
    }
    add_kappa_terms(&cells, stats, p.n_batches, &mut grad_sorted);
    let mut grad = vec![T::default(); m * d];
    for (pos, &i) in cells.order[..m].iter().enumerate() {
        let local = i - rows.start;
        grad[local * d..(local + 1) * d].copy_from_slice(&grad_sorted[pos * d..(pos + 1) * d]);
    }
    grad
}

/// The dense part of the backward pass, `Σ_j C_ij (x_i − x_j)`, of the computed rows
/// (positions `0..rows_end`), as `−Σ_j C_ij x_j` and `Σ_j C_ij` per row.
struct DenseGradient<'a, T> {
    cells: &'a ByBatch<T>,
    saved: SavedColumns<T>,
    rows_end: usize,
    inv_t: T,
}

/// A block's computed rows: `−Σ_j C_ij x_j` (`grad`, d per row) and `Σ_j C_ij`.
struct BlockGradient<T> {
    grad: Vec<T>,
    weight: Vec<f64>,
}

impl<T: Real> PairVisitor<T> for DenseGradient<'_, T> {
    type Block = BlockGradient<T>;

    fn block(&self, positions: Range<usize>) -> BlockGradient<T> {
        let rows = computed(&positions, self.rows_end);
        BlockGradient {
            grad: vec![T::default(); rows * self.cells.d()],
            weight: vec![0.0; rows],
        }
    }

    fn visit(
        &self,
        rows: &mut BlockGradient<T>,
        columns: Option<&mut BlockGradient<T>>,
        tile: &mut Tile<T>,
    ) {
        if columns.is_none() {
            exclude_self(tile);
        }
        let saved = &self.saved;
        let cells = saved.dmin[tile.rows.clone()]
            .iter()
            .chain(&saved.dmin[tile.columns.clone()]);
        let shared = share_exponentials(tile, cells.copied(), self.inv_t);
        let ends = |cells: Range<usize>| GradEnds::new(saved, cells, shared, self.inv_t);
        let (column_grad, column_weight) = columns
            .map(|BlockGradient { grad, weight }| (grad, weight))
            .unzip();
        let work = PairWeightTile {
            dense: self,
            row_ends: ends(tile.rows.clone()),
            column_ends: ends(tile.columns.clone()),
            tile: &mut *tile,
            row_weight: &mut rows.weight,
            column_weight,
        };
        match shared {
            Some(_) => dispatch(PairWeightTileWith::<Precomputed, T>(work, PhantomData)),
            None => dispatch(PairWeightTileWith::<FromDistance, T>(work, PhantomData)),
        }
        let (w, c) = (tile.columns.len(), tile.distances());
        let points = &self.cells.points;
        points.subtract_weighted_points(c, (w, 1), tile.columns.clone(), &mut rows.grad);
        if let Some(grad) = column_grad {
            points.subtract_weighted_points(c, (1, w), tile.rows.clone(), grad);
        }
    }
}

/// Overwrites a tile's values with the pair weights `C_ij` ([`pair_weights`]), every
/// row, run of columns by run of columns, and adds `Σ_j C_ij` to the computed rows'
/// weights and (off the diagonal) `Σ_i C_ij` to the computed columns'.
struct PairWeightTile<'a, 'b, T> {
    dense: &'a DenseGradient<'a, T>,
    row_ends: GradEnds<T>,
    column_ends: GradEnds<T>,
    tile: &'a mut Tile<'b, T>,
    row_weight: &'a mut [f64],
    column_weight: Option<&'a mut Vec<f64>>,
}

/// [`PairWeightTile`] with the tile's values read as [`PairExp`] `P`.
struct PairWeightTileWith<'a, 'b, P, T>(PairWeightTile<'a, 'b, T>, PhantomData<P>);

impl<P: PairExp, T: Real> Vectorised for PairWeightTileWith<'_, '_, P, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let PairWeightTile {
            dense,
            row_ends,
            column_ends: cols,
            tile,
            row_weight,
            column_weight,
        } = self.0;
        let (cells, inv_t) = (dense.cells, dense.inv_t);
        let (rows, columns) = (tile.rows.clone(), tile.columns.clone());
        let runs = cells.tile_runs(columns.clone());
        let w = columns.len();
        for ((t, i), row) in rows
            .enumerate()
            .zip(tile.distances_mut().chunks_exact_mut(w))
        {
            let beta_cols = &cols.beta[cells.labels[i] as usize];
            for (c, local) in &runs {
                let row_end = CellEnd {
                    shift: row_ends.ends.shift[t],
                    q: row_ends.ends.q[t],
                    gamma: row_ends.gamma[t],
                    beta: row_ends.beta[*c][t],
                };
                let col_ends = (
                    &cols.ends.shift[local.clone()],
                    &cols.ends.q[local.clone()],
                    &cols.gamma[local.clone()],
                    &beta_cols[local.clone()],
                );
                pair_weights::<P, T>(&mut row[local.clone()], row_end, col_ends, inv_t);
            }
        }
        let tile = &*tile;
        for (weight, row) in row_weight.iter_mut().zip(tile.distances().chunks_exact(w)) {
            *weight += lane_sum(row);
        }
        if let Some(sums) = column_weight {
            add_column_sums(tile, sums);
        }
    }
}

/// `sums[j] += Σ_p tile[p][j]` for the first `sums.len()` columns, added in `T` over
/// [`COLUMN_SUM_ROWS`] rows at a time.
#[inline(always)]
fn add_column_sums<T: Real>(tile: &Tile<T>, sums: &mut [f64]) {
    let width = sums.len();
    let mut part = vec![T::default(); width];
    for rows in parts(tile.rows.clone(), COLUMN_SUM_ROWS) {
        part.fill(T::default());
        for p in rows {
            for (a, &v) in part.iter_mut().zip(&tile.row(p)[..width]) {
                *a += v;
            }
        }
        for (sum, a) in sums.iter_mut().zip(&part) {
            *sum += a.to_f64();
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
