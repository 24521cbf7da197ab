//! Exact, tie-aware area under the ROC curve (SPEC.md §7).

use rayon::prelude::*;

use crate::error::{Error, Result};

/// A score type that sorts by an order-preserving integer key.
pub trait Score: Copy + Send + Sync {
    fn is_nan(self) -> bool;
    /// An unsigned key with the order of the float (−0.0 and +0.0 share one key).
    fn order_key(self) -> u64;
}

impl Score for f64 {
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn order_key(self) -> u64 {
        let bits = (self + 0.0).to_bits(); // −0.0 + 0.0 = +0.0
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }
    }
}

impl Score for f32 {
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn order_key(self) -> u64 {
        let bits = (self + 0.0).to_bits();
        u64::from(if bits >> 31 == 1 {
            !bits
        } else {
            bits | (1 << 31)
        })
    }
}

/// Below this many scores, a sequential sort beats rayon's start-up.
const PARALLEL_SORT_MIN: usize = 1 << 16;

fn sort_keys(keys: &mut [u64]) {
    if keys.len() >= PARALLEL_SORT_MIN {
        keys.par_sort_unstable();
    } else {
        keys.sort_unstable();
    }
}

/// Area under the ROC curve, ties given half credit: equal to scikit-learn's
/// `roc_auc_score` and to the Mann–Whitney U statistic with mid-ranks,
///
/// ```text
/// AUROC = #{(i, j) ∈ P×N : s_i > s_j} + ½ #{(i, j) ∈ P×N : s_i = s_j}
///         ─────────────────────────────────────────────────────────────
///                                |P| · |N|
/// ```
///
/// O(n log n): the scores of each class are sorted by an order-preserving integer key and
/// merged once; the pair counts are exact integers, so the only rounding is the final division.
/// Infinite scores are allowed; NaN, empty input, unequal lengths and a single class are errors.
///
/// ```
/// use diffbio_metrics::roc_auc;
/// let auc = roc_auc(&[0.1f32, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
/// assert_eq!(auc, 0.75);
/// let tied = roc_auc(&[0.5f64, 0.5], &[true, false]).unwrap();
/// assert_eq!(tied, 0.5);
/// ```
pub fn roc_auc<S: Score>(scores: &[S], labels: &[bool]) -> Result<f64> {
    if labels.len() != scores.len() {
        return Err(Error::LengthMismatch {
            input: "labels",
            expected: scores.len(),
            got: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(Error::Empty { input: "scores" });
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(Error::NaN {
            input: "scores",
            index,
        });
    }
    let n_pos = labels.iter().filter(|&&y| y).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(Error::SingleClass {
            positives: n_pos,
            negatives: n_neg,
        });
    }
    let mut pos = Vec::with_capacity(n_pos);
    let mut neg = Vec::with_capacity(n_neg);
    for (s, &y) in scores.iter().zip(labels) {
        if y { &mut pos } else { &mut neg }.push(s.order_key());
    }
    rayon::join(|| sort_keys(&mut pos), || sort_keys(&mut neg));
    let twice_u = twice_mann_whitney_u(&pos, &neg);
    Ok(twice_u as f64 / (2.0 * n_pos as f64 * n_neg as f64))
}

/// `2U = Σ over positive tie groups of 2·p·(negatives below) + p·(negatives tied)`, exact,
/// by one linear merge of the two sorted key lists.
fn twice_mann_whitney_u(pos: &[u64], neg: &[u64]) -> u128 {
    let (mut i, mut j, mut twice_u) = (0, 0, 0u128);
    while i < pos.len() {
        let key = pos[i];
        let group_start = i;
        while i < pos.len() && pos[i] == key {
            i += 1;
        }
        while j < neg.len() && neg[j] < key {
            j += 1;
        }
        let below = j;
        while j < neg.len() && neg[j] == key {
            j += 1;
        }
        let p = (i - group_start) as u128;
        twice_u += 2 * p * below as u128 + p * (j - below) as u128;
    }
    twice_u
}
