//! CPU kernel of the pairwise-sigmoid AUROC surrogate (SPEC.md §6).
//!
//! Sort positives and negatives once. For a positive at score `s`, negatives below
//! `s − cT` contribute exactly 1 (to within e^{−c}) and those above `s + cT` contribute 0,
//! so only the window between needs a sigmoid; the window is found by binary search.
//! The gradients of negatives come from the mirror pass (each negative over its window of
//! positives), so both passes are parallel without atomics. Value, ∂/∂s and ∂/∂T come out
//! of the same sweep. The sweeps run over a range of cells as centres against all the
//! others (every cell on one device, a rank's own cells when sharded).

use std::ops::Range;

use diffbio_pairwise::{dispatch, for_each_lane, Real, Vectorised, LANES};
use rayon::prelude::*;

use super::contract::{GRAD_SCORES, GRAD_TEMPERATURE, VALUE};

/// Window half-width in units of T: e^{−30} ≈ 9e−14, below f64 resolution of the sums.
const WINDOW: f64 = 30.0;

/// Positives (or negatives) per rayon task.
const BLOCK: usize = 256;

/// `(Σ σ(z), Σ σ'(z), Σ σ'(z)·z)` over `z = (centre − other)·scale` for a window of others,
/// with σ and σ' = σ(1 − σ) from one exponential (both accurate for large |z|).
#[inline(always)]
fn window_sums<T: Real>(centre: T, others: &[T], scale: T) -> [f64; 3] {
    let (zero, one) = (T::default(), T::from_f64(1.0));
    let (mut sig, mut slope, mut slope_z) = ([zero; LANES], [zero; LANES], [zero; LANES]);
    let add = |l: usize, other: T| {
        let z = (centre - other) * scale;
        let negative = z < zero;
        let e = (if negative { z } else { zero - z }).fast_exp(); // e^{−|z|}
        let inv = one / (one + e);
        let d = e * inv * inv;
        sig[l] += if negative { e * inv } else { inv };
        slope[l] += d;
        slope_z[l] += d * z;
    };
    for_each_lane(others, add);
    let total = |a: [T; LANES]| a.iter().map(|v| v.to_f64()).sum::<f64>();
    [total(sig), total(slope), total(slope_z)]
}

/// One block of centres: for each, `(entries below the window, window_sums)`.
struct WindowBlock<'a, T> {
    centres: &'a [T],
    others: &'a [T],
    scale: T,
    half_width: T,
}

impl<T: Real> Vectorised for WindowBlock<'_, T> {
    type Output = Vec<(usize, [f64; 3])>;

    #[inline(always)]
    fn run(self) -> Self::Output {
        let mut sums = Vec::with_capacity(self.centres.len());
        for &c in self.centres {
            let (lo, hi) = window(self.others, c, self.half_width);
            sums.push((lo, window_sums(c, &self.others[lo..hi], self.scale)));
        }
        sums
    }
}

/// [`WindowBlock`] over every centre, in parallel blocks compiled for the best SIMD level.
fn all_window_sums<T: Real>(
    centres: &[T],
    others: &[T],
    scale: T,
    half_width: T,
) -> Vec<(usize, [f64; 3])> {
    centres
        .par_chunks(BLOCK)
        .flat_map_iter(|centres| {
            dispatch(WindowBlock {
                centres,
                others,
                scale,
                half_width,
            })
        })
        .collect()
}

/// The entries of sorted `(scores, positions)` whose position is in `rows`, order kept.
fn restricted<T: Real>(class: &(Vec<T>, Vec<usize>), rows: &Range<usize>) -> (Vec<T>, Vec<usize>) {
    class
        .0
        .iter()
        .zip(&class.1)
        .filter(|(_, i)| rows.contains(i))
        .map(|(&s, &i)| (s, i))
        .unzip()
}

/// Sorted scores of one class, with their positions in the input (scores are finite).
fn sorted_class<T: Real>(scores: &[T], labels: &[T], class: f64) -> (Vec<T>, Vec<usize>) {
    let mut pairs: Vec<(T, usize)> = scores
        .iter()
        .zip(labels)
        .enumerate()
        .filter(|(_, (_, y))| y.to_f64() == class)
        .map(|(i, (&s, _))| (s, i))
        .collect();
    pairs.par_sort_unstable_by(|a, b| a.0.partial_cmp(&b.0).expect("finite scores"));
    pairs.into_iter().unzip()
}

/// `[lo, hi)`: the entries of sorted `others` within `centre ± half_width`.
#[inline(always)]
fn window<T: Real>(others: &[T], centre: T, half_width: T) -> (usize, usize) {
    let lo = others.partition_point(|&v| v < centre - half_width);
    let hi = others.partition_point(|&v| v <= centre + half_width);
    (lo, hi.max(lo))
}

/// Value and gradients (for a unit upstream gradient) with the cells `rows` as centres:
/// `[Σ over the positives in rows, its ∂/∂T, ∂/∂s of each cell in rows]`, so the value
/// and ∂/∂T are the whole op's when `rows` is every cell and a share of them otherwise;
/// see the module docs.
pub(crate) fn forward<T: Real>(
    scores: &[T],
    labels: &[T],
    rows: Range<usize>,
    temperature: f64,
) -> Vec<T> {
    let mut out = vec![T::from_f64(0.0); GRAD_SCORES + rows.len()];
    let positives = sorted_class(scores, labels, 1.0);
    let negatives = sorted_class(scores, labels, 0.0);
    let (pos, neg) = (&positives.0, &negatives.0);
    if pos.is_empty() || neg.is_empty() {
        return out;
    }
    let (own_pos, pos_index) = restricted(&positives, &rows);
    let (own_neg, neg_index) = restricted(&negatives, &rows);
    let inv_t = 1.0 / temperature;
    let (scale, half_width) = (T::from_f64(inv_t), T::from_f64(WINDOW * temperature));
    let norm = 1.0 / (pos.len() as f64 * neg.len() as f64);

    // Positives: value (pairs below the window count 1), ∂/∂s_i and ∂/∂T.
    let per_positive: Vec<(f64, f64, f64)> = all_window_sums(&own_pos, neg, scale, half_width)
        .into_iter()
        .map(|(below, [sig, slope, slope_z])| (below as f64 + sig, slope * inv_t, -slope_z * inv_t))
        .collect();
    // Negatives: ∂/∂s_j = −Σ_i σ'/T over the window of positives (z = (s_i − s_j)/T).
    let per_negative: Vec<f64> = all_window_sums(&own_neg, pos, T::default() - scale, half_width)
        .into_iter()
        .map(|(_, [_, slope, _])| -slope * inv_t)
        .collect();

    let (mut value, mut grad_t) = (0.0, 0.0);
    for (&(v, g_s, g_t), &i) in per_positive.iter().zip(&pos_index) {
        value += v;
        grad_t += g_t;
        out[GRAD_SCORES + i - rows.start] = T::from_f64(g_s * norm);
    }
    for (&g_s, &j) in per_negative.iter().zip(&neg_index) {
        out[GRAD_SCORES + j - rows.start] = T::from_f64(g_s * norm);
    }
    out[VALUE] = T::from_f64(value * norm);
    out[GRAD_TEMPERATURE] = T::from_f64(grad_t * norm);
    out
}
