//! Every metric of the crate for one embedding, from one shared kNN graph.

use crate::connectivity::graph_connectivity;
use crate::error::Result;
use crate::lisi::{clisi, ilisi};
use crate::neighbours::{batch_entropy, knn, knn_accuracy, one_per_cell};
use crate::silhouette::{bras, isolated_labels, silhouette_batch, silhouette_label};

/// LISI neighbours: scib-metrics' Benchmarker uses 90 counting the cell itself.
const LISI_NEIGHBORS: usize = 89;
/// Graph-connectivity neighbours: scib-metrics' 15 counting the cell itself.
const CONNECTIVITY_NEIGHBORS: usize = 14;

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
    /// Scaled iLISI (scib-metrics; 1 = mixed).
    pub ilisi: Option<f64>,
    /// Scaled cLISI (scib-metrics; 1 = cell types apart).
    pub clisi: Option<f64>,
    /// Graph connectivity of the cell types.
    pub graph_connectivity: Option<f64>,
    /// Rescaled cell-type silhouette.
    pub silhouette_label: Option<f64>,
    /// scib's batch silhouette within cell types.
    pub silhouette_batch: Option<f64>,
    /// Batch-removal adapted silhouette (the Benchmarker's batch silhouette).
    pub bras: Option<f64>,
    /// Isolated-label silhouette score.
    pub isolated_labels: Option<f64>,
}

impl Scores {
    /// `(snake_case name, value)` of every computed metric, in a fixed order.
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        [
            ("batch_entropy", self.batch_entropy),
            ("knn_accuracy", self.knn_accuracy),
            ("ilisi", self.ilisi),
            ("clisi", self.clisi),
            ("graph_connectivity", self.graph_connectivity),
            ("silhouette_label", self.silhouette_label),
            ("silhouette_batch", self.silhouette_batch),
            ("bras", self.bras),
            ("isolated_labels", self.isolated_labels),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }
}

/// Computes every metric for a row-major `[n × dims]` embedding, its batch labels and,
/// optionally, its cell-type labels, from one exact kNN graph, with scib-metrics'
/// neighbourhoods (LISI: 90 neighbours counting the cell itself, i.e. 89 here, or n − 1 for
/// fewer cells; graph connectivity: 15 counting the cell itself). Without cell-type labels
/// only the batch metrics are computed. The silhouettes cost O(n²·d).
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
/// assert_eq!(scores.graph_connectivity, Some(1.0));
/// assert!(scores.batch_entropy.unwrap() > 0.9);
/// ```
pub fn benchmark<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    batches: &[u32],
    labels: Option<&[u32]>,
    config: BenchmarkConfig,
) -> Result<Scores> {
    let n = embedding.len() / dims.max(1);
    let lisi_k = LISI_NEIGHBORS.min(n.saturating_sub(1));
    let widest = config
        .n_neighbors
        .max(config.accuracy_neighbors)
        .max(lisi_k);
    let graph = knn(embedding, dims, widest)?;
    one_per_cell(batches, graph.n(), "batches")?;
    let lisi_graph = graph.truncate(lisi_k)?;
    let mut scores = Scores {
        batch_entropy: Some(batch_entropy(&graph.truncate(config.n_neighbors)?, batches)?.mean),
        ilisi: Some(ilisi(&lisi_graph, batches)?),
        ..Scores::default()
    };
    let Some(labels) = labels else {
        return Ok(scores);
    };
    one_per_cell(labels, graph.n(), "labels")?;
    let connectivity_graph = graph.truncate(CONNECTIVITY_NEIGHBORS.min(lisi_k))?;
    scores.knn_accuracy =
        Some(knn_accuracy(&graph.truncate(config.accuracy_neighbors)?, labels)?.mean);
    scores.clisi = Some(clisi(&lisi_graph, labels)?);
    scores.graph_connectivity = Some(graph_connectivity(&connectivity_graph, labels)?);
    scores.silhouette_label = Some(silhouette_label(embedding, dims, labels)?);
    scores.silhouette_batch = Some(silhouette_batch(embedding, dims, labels, batches)?);
    scores.bras = Some(bras(embedding, dims, labels, batches)?);
    scores.isolated_labels = Some(isolated_labels(embedding, dims, labels, batches)?);
    Ok(scores)
}
