//! What the ranking metrics share: order-preserving integer keys for float scores, and the
//! validated split of the scores into sorted positive and negative keys.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// A score type that sorts by an order-preserving integer key.
pub trait Score: Copy + Send + Sync {
    /// Whether the score is NaN (refused by the metrics).
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

pub(crate) fn sort_keys(keys: &mut [u64]) {
    if keys.len() >= PARALLEL_SORT_MIN {
        keys.par_sort_unstable();
    } else {
        keys.sort_unstable();
    }
}

/// The scores of each class as sorted order keys (ascending).
pub(crate) struct SortedClasses {
    pub positives: Vec<u64>,
    pub negatives: Vec<u64>,
}

impl SortedClasses {
    /// Splits and sorts, refusing unequal lengths, empty input and NaN scores.
    pub(crate) fn new<S: Score>(scores: &[S], labels: &[bool]) -> Result<Self> {
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
        let mut positives = Vec::with_capacity(n_pos);
        let mut negatives = Vec::with_capacity(labels.len() - n_pos);
        for (s, &y) in scores.iter().zip(labels) {
            if y { &mut positives } else { &mut negatives }.push(s.order_key());
        }
        rayon::join(|| sort_keys(&mut positives), || sort_keys(&mut negatives));
        Ok(Self {
            positives,
            negatives,
        })
    }
}
