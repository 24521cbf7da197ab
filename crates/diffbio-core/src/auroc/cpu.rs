//! CPU kernel of the pairwise-sigmoid AUROC surrogate (SPEC.md §6).
//!
//! Sort positives and negatives once. For a positive at score `s`, negatives below
//! `s − cT` contribute exactly 1 (to within e^{−c}) and those above `s + cT` contribute 0,
//! so only the window between needs a sigmoid; the window is found by binary search.
//! The gradients of negatives come from the mirror pass (each negative over its window of
//! positives), so both passes are parallel without atomics. Value, ∂/∂s and ∂/∂T come out
//! of the same sweep.

use rayon::prelude::*;

use crate::storage::Real;

/// Window half-width in units of T: e^{−30} ≈ 9e−14, below f64 resolution of the sums.
const WINDOW: f64 = 30.0;

/// Output layout: `[value, ∂value/∂T, ∂value/∂s_0, ..., ∂value/∂s_{n−1}]`.
pub(crate) const VALUE: usize = 0;
pub(crate) const GRAD_TEMPERATURE: usize = 1;
pub(crate) const GRAD_SCORES: usize = 2;

/// σ(z) and σ'(z) = σ(z)(1 − σ(z)) from one exponential, both accurate for large |z|.
#[inline]
fn sigmoid_and_slope(z: f64) -> (f64, f64) {
    let e = (-z.abs()).exp();
    let inv = 1.0 / (1.0 + e);
    let sigma = if z >= 0.0 { inv } else { e * inv };
    (sigma, e * inv * inv)
}

/// Sorted scores of one class, with their positions in the input.
fn sorted_class<T: Real>(scores: &[T], labels: &[T], class: f64) -> (Vec<f64>, Vec<usize>) {
    let mut pairs: Vec<(f64, usize)> = scores
        .iter()
        .zip(labels)
        .enumerate()
        .filter(|(_, (_, y))| y.to_f64() == class)
        .map(|(i, (s, _))| (s.to_f64(), i))
        .collect();
    pairs.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    pairs.into_iter().unzip()
}

/// `[lo, hi)`: the entries of sorted `others` within `centre ± half_width`.
#[inline]
fn window(others: &[f64], centre: f64, half_width: f64) -> (usize, usize) {
    let lo = others.partition_point(|&v| v < centre - half_width);
    let hi = others.partition_point(|&v| v <= centre + half_width);
    (lo, hi.max(lo))
}

/// Value and gradients (for a unit upstream gradient); see the module docs.
pub(crate) fn forward<T: Real>(scores: &[T], labels: &[T], temperature: f64) -> Vec<T> {
    let n = scores.len();
    let mut out = vec![T::from_f64(0.0); GRAD_SCORES + n];
    let (pos, pos_index) = sorted_class(scores, labels, 1.0);
    let (neg, neg_index) = sorted_class(scores, labels, 0.0);
    if pos.is_empty() || neg.is_empty() {
        return out;
    }
    let inv_t = 1.0 / temperature;
    let half_width = WINDOW * temperature;
    let norm = 1.0 / (pos.len() as f64 * neg.len() as f64);

    // Positives: value, ∂/∂s_i and ∂/∂T.
    let per_positive: Vec<(f64, f64, f64)> = pos
        .par_iter()
        .map(|&sp| {
            let (lo, hi) = window(&neg, sp, half_width);
            let (mut value, mut grad_s, mut grad_t) = (lo as f64, 0.0, 0.0);
            for &sn in &neg[lo..hi] {
                let z = (sp - sn) * inv_t;
                let (sigma, slope) = sigmoid_and_slope(z);
                value += sigma;
                grad_s += slope;
                grad_t -= slope * z;
            }
            (value, grad_s * inv_t, grad_t * inv_t)
        })
        .collect();
    // Negatives: ∂/∂s_j = −Σ_i σ'/T over the window of positives.
    let per_negative: Vec<f64> = neg
        .par_iter()
        .map(|&sn| {
            let (lo, hi) = window(&pos, sn, half_width);
            let slope_sum: f64 = pos[lo..hi]
                .iter()
                .map(|&sp| sigmoid_and_slope((sp - sn) * inv_t).1)
                .sum();
            -slope_sum * inv_t
        })
        .collect();

    let (mut value, mut grad_t) = (0.0, 0.0);
    for (&(v, g_s, g_t), &i) in per_positive.iter().zip(&pos_index) {
        value += v;
        grad_t += g_t;
        out[GRAD_SCORES + i] = T::from_f64(g_s * norm);
    }
    for (&g_s, &j) in per_negative.iter().zip(&neg_index) {
        out[GRAD_SCORES + j] = T::from_f64(g_s * norm);
    }
    out[VALUE] = T::from_f64(value * norm);
    out[GRAD_TEMPERATURE] = T::from_f64(grad_t * norm);
    out
}
