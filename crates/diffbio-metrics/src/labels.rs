//! Checks and counts of per-cell integer labels (batches, cell types).

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::knn::KnnGraph;

pub(crate) fn check_labels(graph: &KnnGraph, labels: &[u32], input: &'static str) -> Result<()> {
    one_per_cell(labels, graph.n(), input)
}

/// `values` must hold one entry per cell of an `n`-cell embedding.
pub(crate) fn one_per_cell(values: &[u32], n: usize, input: &'static str) -> Result<()> {
    if values.len() != n {
        return Err(Error::LengthMismatch {
            input,
            expected: n,
            got: values.len(),
        });
    }
    Ok(())
}

pub(crate) fn distinct(labels: &[u32]) -> usize {
    sorted_distinct(labels).len()
}

/// The distinct labels, ascending.
pub(crate) fn sorted_distinct(labels: &[u32]) -> Vec<u32> {
    let mut seen = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// The number of distinct labels, or an error when there are fewer than two.
pub(crate) fn at_least_two(labels: &[u32], input: &'static str) -> Result<usize> {
    match distinct(labels) {
        found @ 0..=1 => Err(Error::TooFewLabels {
            input,
            found,
            needed: 2,
        }),
        found => Ok(found),
    }
}

/// Labels re-coded to `0..count` in the order of their values, so that a metric allocates
/// by the number of distinct labels, never by the largest code (sample ids such as
/// 4,000,000,000 beside 0, 1, 2). Equality and order are kept, so every score is the same.
pub(crate) struct Dense<'a> {
    /// The re-coded labels (the input itself when it already is `0..count`).
    pub codes: Cow<'a, [u32]>,
    /// The number of distinct labels.
    pub count: usize,
}

pub(crate) fn dense(labels: &[u32]) -> Dense<'_> {
    let values = sorted_distinct(labels);
    let count = values.len();
    // Distinct values all below their count are exactly 0..count.
    if values
        .last()
        .is_none_or(|&largest| (largest as usize) < count)
    {
        return Dense {
            codes: Cow::Borrowed(labels),
            count,
        };
    }
    let codes = labels
        .iter()
        .map(|label| values.partition_point(|v| v < label) as u32)
        .collect();
    Dense {
        codes: Cow::Owned(codes),
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::dense;

    #[test]
    fn sparse_codes_are_re_coded_in_order_and_dense_ones_borrowed() {
        let sparse = [4_000_000_000, 7, 0, 7, 4_000_000_000];
        let d = dense(&sparse);
        assert_eq!((d.codes.as_ref(), d.count), (&[2, 1, 0, 1, 2][..], 3));
        let already = [1, 0, 2, 1];
        let d = dense(&already);
        assert!(matches!(d.codes, std::borrow::Cow::Borrowed(_)));
        assert_eq!(d.count, 3);
        let gap = [0, 2, 2];
        assert_eq!(dense(&gap).codes.as_ref(), &[0, 1, 1]);
    }
}
