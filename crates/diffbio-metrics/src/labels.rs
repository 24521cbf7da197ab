//! Checks and counts of per-cell integer labels (batches, cell types).

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
