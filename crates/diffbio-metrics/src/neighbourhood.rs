//! Per-cell neighbourhood metrics of a kNN graph: batch entropy and kNN accuracy.

use rayon::prelude::*;

use crate::error::Result;
use crate::knn::KnnGraph;
use crate::labels::{at_least_two, check_labels, dense, Dense};

/// A per-cell metric and its mean over cells.
#[derive(Debug, Clone, PartialEq)]
pub struct PerCell {
    /// The value of every cell, in input order.
    pub per_cell: Vec<f64>,
    /// Their mean.
    pub mean: f64,
}

impl PerCell {
    pub(crate) fn new(per_cell: Vec<f64>) -> Self {
        let mean = per_cell.iter().sum::<f64>() / per_cell.len() as f64;
        Self { per_cell, mean }
    }
}

/// Normalised Shannon entropy of the batch labels among each cell's k neighbours (the
/// metric twin of `BatchMixingLoss`): `H_i = −Σ_c p_ic ln p_ic / ln B`, `p_ic` the fraction
/// of the neighbours in batch c and B the number of distinct batches; 1 = perfectly mixed.
///
/// ```
/// use diffbio_metrics::{batch_entropy, knn};
/// let x = [0.0f64, 0.1, 0.2, 0.3]; // d = 1, alternating batches
/// let g = knn(&x, 1, 2).unwrap();
/// let h = batch_entropy(&g, &[0, 1, 0, 1]).unwrap();
/// assert!((h.per_cell[0] - 1.0).abs() < 1e-12); // cell 0's neighbours 1, 2: one per batch
/// assert_eq!(h.per_cell[1], 0.0); // cell 1's neighbours 0, 2: both batch 0
/// ```
pub fn batch_entropy(graph: &KnnGraph, batches: &[u32]) -> Result<PerCell> {
    check_labels(graph, batches, "batches")?;
    let n_batches = at_least_two(batches, "batches")?;
    let norm = (n_batches as f64).ln();
    let k = graph.k() as f64;
    let per_cell = per_cell_label_counts(graph, &dense(batches), |_, counts| {
        let plogp: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| c as f64 / k * (c as f64 / k).ln())
            .sum();
        0.0 - plogp / norm // 0 − (+0) is +0: a pure neighbourhood prints as 0, not −0
    });
    Ok(PerCell::new(per_cell))
}

/// Leave-one-out k-NN classification accuracy: each cell is given the most frequent label
/// among its k neighbours (ties to the smallest label, like `scipy.stats.mode`); the
/// per-cell values are 1 (correct) or 0.
///
/// ```
/// use diffbio_metrics::{knn, knn_accuracy};
/// let x = [0.0f32, 0.1, 0.2, 5.0, 5.1, 5.2]; // d = 1: two clusters
/// let g = knn(&x, 1, 2).unwrap();
/// assert_eq!(knn_accuracy(&g, &[0, 0, 0, 1, 1, 1]).unwrap().mean, 1.0);
/// ```
pub fn knn_accuracy(graph: &KnnGraph, labels: &[u32]) -> Result<PerCell> {
    check_labels(graph, labels, "labels")?;
    let labels = dense(labels);
    let per_cell = per_cell_label_counts(graph, &labels, |i, counts| {
        // max_by_key keeps the last maximum; scan in reverse so ties go to the smallest label.
        let vote = (0..counts.len())
            .rev()
            .max_by_key(|&c| counts[c])
            .expect("labels");
        f64::from(vote == labels.codes[i] as usize)
    });
    Ok(PerCell::new(per_cell))
}

/// `score(i, counts)` for every cell, in parallel, where `counts[c]` is the number of cell
/// i's neighbours with (re-coded) label c.
fn per_cell_label_counts(
    graph: &KnnGraph,
    labels: &Dense<'_>,
    score: impl Fn(usize, &[usize]) -> f64 + Sync,
) -> Vec<f64> {
    let (codes, n_labels) = (&labels.codes, labels.count);
    (0..graph.n())
        .into_par_iter()
        .map_init(
            || vec![0usize; n_labels],
            |counts, i| {
                counts.iter_mut().for_each(|c| *c = 0);
                graph
                    .neighbors(i)
                    .iter()
                    .for_each(|&j| counts[codes[j as usize] as usize] += 1);
                score(i, counts)
            },
        )
        .collect()
}
