//! Average precision (area under the precision–recall step curve), as scikit-learn's
//! `average_precision_score`.

use crate::error::{Error, Result};
use crate::ranking::{Score, SortedClasses};

/// Average precision of a ranking, equal to scikit-learn's `average_precision_score`:
///
/// ```text
/// AP = Σ_t (R_t − R_{t−1}) · P_t
/// ```
///
/// over the distinct score thresholds t in decreasing order, where P_t and R_t are the
/// precision and recall of "score ≥ t". Tied scores form one threshold, as in scikit-learn,
/// so the result does not depend on their order. O(n log n); infinite scores are allowed;
/// NaN, empty input, unequal lengths and no positive label are errors.
///
/// ```
/// use diffbio_metrics::average_precision;
/// // ranks: pos, neg, pos  ->  AP = ½·1 + ½·⅔
/// let ap = average_precision(&[0.9f64, 0.8, 0.7], &[true, false, true]).unwrap();
/// assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-15);
/// assert_eq!(average_precision(&[3.0f32, 2.0, 1.0], &[true, true, false]).unwrap(), 1.0);
/// ```
pub fn average_precision<S: Score>(scores: &[S], labels: &[bool]) -> Result<f64> {
    let SortedClasses {
        positives,
        negatives,
    } = SortedClasses::new(scores, labels)?;
    if positives.is_empty() {
        return Err(Error::SingleClass {
            positives: 0,
            negatives: negatives.len(),
        });
    }
    let n_pos = positives.len() as f64;
    // Walk the positive tie groups from the top; every negative scoring at least as high as
    // the group counts as a false positive at that threshold.
    let (mut i, mut j) = (positives.len(), negatives.len());
    let (mut true_pos, mut false_pos, mut ap) = (0u64, 0u64, 0.0);
    while i > 0 {
        let key = positives[i - 1];
        let group_start = i;
        while i > 0 && positives[i - 1] == key {
            i -= 1;
        }
        while j > 0 && negatives[j - 1] >= key {
            j -= 1;
            false_pos += 1;
        }
        let group = (group_start - i) as u64;
        true_pos += group;
        ap += group as f64 / n_pos * (true_pos as f64 / (true_pos + false_pos) as f64);
    }
    Ok(ap)
}
