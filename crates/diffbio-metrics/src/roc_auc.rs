//! Exact, tie-aware area under the ROC curve (SPEC.md §7).

use crate::error::{Error, Result};
use crate::ranking::{Score, SortedClasses};

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
    let SortedClasses {
        positives,
        negatives,
    } = SortedClasses::new(scores, labels)?;
    if positives.is_empty() || negatives.is_empty() {
        return Err(Error::SingleClass {
            positives: positives.len(),
            negatives: negatives.len(),
        });
    }
    let twice_u = twice_mann_whitney_u(&positives, &negatives);
    Ok(twice_u as f64 / (2.0 * positives.len() as f64 * negatives.len() as f64))
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
