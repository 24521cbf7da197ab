//! Every metric of the crate for one embedding, from one shared kNN graph.

use crate::error::{Error, Result};
use crate::neighbours::{batch_entropy, knn, knn_accuracy};

/// Neighbourhood sizes of [`benchmark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchmarkConfig {
    /// Neighbours for the batch entropy.
    pub n_neighbors: usize,
    /// Neighbours for the leave-one-out cell-type accuracy.
    pub accuracy_neighbors: usize,
}

impl Default for BenchmarkConfig {
    fn default() -> Self {
        Self {
            n_neighbors: 30,
            accuracy_neighbors: 15,
        }
    }
}

/// The metrics of one embedding; a field is `None` when it was not computed (e.g. the
/// cell-type metrics without cell-type labels).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// Mean normalised batch entropy of each cell's `n_neighbors` neighbours (1 = mixed).
    pub batch_entropy: Option<f64>,
    /// Leave-one-out `accuracy_neighbors`-NN cell-type accuracy.
    pub knn_accuracy: Option<f64>,
}

impl Scores {
    /// `(snake_case name, value)` of every computed metric, in a fixed order.
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        [
            ("batch_entropy", self.batch_entropy),
            ("knn_accuracy", self.knn_accuracy),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }
}

/// Computes every metric for a row-major `[n × dims]` embedding, its batch labels and,
/// optionally, its cell-type labels, from one exact kNN graph.
///
/// ```
/// use diffbio_metrics::{benchmark, BenchmarkConfig};
/// // two well-separated cell types, each measured in two interleaved batches; d = 1
/// let x: Vec<f32> = (0..40).map(|i| if i < 20 { i as f32 } else { 100.0 + i as f32 }).collect();
/// let batches: Vec<u32> = (0..40).map(|i| i % 2).collect();
/// let types: Vec<u32> = (0..40).map(|i| u32::from(i >= 20)).collect();
/// let config = BenchmarkConfig { n_neighbors: 4, accuracy_neighbors: 3 };
/// let scores = benchmark(&x, 1, &batches, Some(&types), config).unwrap();
/// assert_eq!(scores.knn_accuracy, Some(1.0));
/// assert!(scores.batch_entropy.unwrap() > 0.9);
/// ```
pub fn benchmark<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    batches: &[u32],
    labels: Option<&[u32]>,
    config: BenchmarkConfig,
) -> Result<Scores> {
    let widest = config.n_neighbors.max(config.accuracy_neighbors);
    let graph = knn(embedding, dims, widest)?;
    if let Some(labels) = labels {
        if labels.len() != graph.n() {
            return Err(Error::LengthMismatch {
                input: "labels",
                expected: graph.n(),
                got: labels.len(),
            });
        }
    }
    let batch_entropy = batch_entropy(&graph.truncate(config.n_neighbors)?, batches)?.mean;
    let knn_accuracy = labels
        .map(|labels| knn_accuracy(&graph.truncate(config.accuracy_neighbors)?, labels))
        .transpose()?
        .map(|a| a.mean);
    Ok(Scores {
        batch_entropy: Some(batch_entropy),
        knn_accuracy,
    })
}
