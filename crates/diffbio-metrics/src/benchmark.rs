//! Every metric of the crate for one embedding, from one shared kNN graph.

use crate::clustering::nmi_ari_kmeans_of;
use crate::connectivity::graph_connectivity;
use crate::embedding::{Embedding, EmbeddingValue};
use crate::error::{Error, Result};
use crate::kbet::kbet;
use crate::knn::knn_of;
use crate::labels::one_per_cell;
use crate::lisi::LisiWeights;
use crate::neighbourhood::{batch_entropy, knn_accuracy};
use crate::pairwise::tile_count;
use crate::pcr::pcr_comparison_of;
use crate::progress::{step, Progress, Silent};
use crate::silhouette::{
    bras_of, isolated_labels_of, knn_and_label_silhouettes, rescaled_mean, silhouette_batch_of,
};

/// LISI neighbours: scib-metrics' Benchmarker uses 90 counting the cell itself.
const LISI_NEIGHBORS: usize = 89;
/// Graph-connectivity neighbours: scib-metrics' 15 counting the cell itself.
const CONNECTIVITY_NEIGHBORS: usize = 14;
/// kBET neighbours: scib-metrics' 50 counting the cell itself.
const KBET_NEIGHBORS: usize = 49;

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

/// The metrics of one embedding; a field is `None` when it was not computed (the
/// cell-type metrics without cell-type labels, `pcr_comparison` without a pre-integration
/// embedding, kBET when no label has ≥ 10 cells in ≥ 2 batches, an aggregate without all
/// its parts).
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
    /// kBET acceptance rate per cell type (scib's `kbet_per_label`).
    pub kbet: Option<f64>,
    /// NMI of a k-means clustering (k = number of cell types) with the cell types.
    pub nmi_kmeans: Option<f64>,
    /// ARI of that clustering with the cell types.
    pub ari_kmeans: Option<f64>,
    /// Relative drop of the batch-explained variance from the pre-integration embedding.
    pub pcr_comparison: Option<f64>,
    /// scib's batch-correction score: mean of bras, iLISI, kBET, graph connectivity and
    /// PCR comparison.
    pub batch_correction: Option<f64>,
    /// scib's bio-conservation score: mean of isolated labels, NMI, ARI, label silhouette
    /// and cLISI.
    pub bio_conservation: Option<f64>,
    /// `0.4 · batch_correction + 0.6 · bio_conservation`.
    pub total: Option<f64>,
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
            ("kbet", self.kbet),
            ("nmi_kmeans", self.nmi_kmeans),
            ("ari_kmeans", self.ari_kmeans),
            ("pcr_comparison", self.pcr_comparison),
            ("batch_correction", self.batch_correction),
            ("bio_conservation", self.bio_conservation),
            ("total", self.total),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }

    /// The Benchmarker's aggregates (`get_results(min_max_scale=False)`) of the parts present.
    fn aggregate(&mut self) {
        let mean = |parts: &[Option<f64>]| -> Option<f64> {
            let values: Option<Vec<f64>> = parts.iter().copied().collect();
            values.map(|v| v.iter().sum::<f64>() / v.len() as f64)
        };
        self.batch_correction = mean(&[
            self.bras,
            self.ilisi,
            self.kbet,
            self.graph_connectivity,
            self.pcr_comparison,
        ]);
        self.bio_conservation = mean(&[
            self.isolated_labels,
            self.nmi_kmeans,
            self.ari_kmeans,
            self.silhouette_label,
            self.clisi,
        ]);
        self.total = self
            .batch_correction
            .zip(self.bio_conservation)
            .map(|(batch, bio)| 0.4 * batch + 0.6 * bio);
    }
}

/// An embedding before integration (e.g. the PCA an integration started from), for
/// `pcr_comparison`: row-major `[n × dims]`.
#[derive(Debug, Clone, Copy)]
pub struct PreIntegration<'a, T> {
    /// The values, row-major.
    pub values: &'a [T],
    /// Dimensions per cell.
    pub dims: usize,
}

/// What [`benchmark_with_progress`] scores: the embedding (row-major), its dims, the batch
/// labels, the cell-type labels and the pre-integration embedding, as [`benchmark`] takes them.
pub type BenchmarkInputs<'a, T> = (
    &'a [T],
    usize,
    &'a [u32],
    Option<&'a [u32]>,
    Option<PreIntegration<'a, T>>,
);

/// Computes every metric for a row-major `[n × dims]` embedding, its batch labels and,
/// optionally, its cell-type labels and the pre-integration embedding, from one exact kNN
/// graph, with scib-metrics' Benchmarker neighbourhoods (LISI: 90 neighbours counting the
/// cell itself, i.e. 89 here, or n − 1 for fewer cells; kBET: 50; graph connectivity: 15)
/// and its aggregates. Without cell-type labels only the batch metrics are computed; the
/// k-means of NMI/ARI is seeded with 0. The Euclidean silhouettes cost O(n²·d) (tiled
/// matrix products), the kNN graph as much; everything else is O(n·k) or O(n·d).
///
/// ```
/// use diffbio_metrics::{benchmark, BenchmarkConfig, PreIntegration};
/// // two well-separated cell types, each measured in two interleaved batches; d = 1
/// let x: Vec<f32> = (0..40).map(|i| if i < 20 { i as f32 } else { 100.0 + i as f32 }).collect();
/// let batches: Vec<u32> = (0..40).map(|i| i % 2).collect();
/// let types: Vec<u32> = (0..40).map(|i| u32::from(i >= 20)).collect();
/// // before integration, batch 1 sat 5 units away
/// let pre: Vec<f32> = x.iter().zip(&batches).map(|(v, &b)| v + 5.0 * b as f32).collect();
/// let config = BenchmarkConfig { n_neighbors: 4, accuracy_neighbors: 3 };
/// let pre = PreIntegration { values: &pre, dims: 1 };
/// let scores = benchmark(&x, 1, &batches, Some(&types), Some(pre), config).unwrap();
/// assert_eq!(scores.knn_accuracy, Some(1.0));
/// assert_eq!(scores.graph_connectivity, Some(1.0));
/// assert_eq!((scores.nmi_kmeans, scores.ari_kmeans), (Some(1.0), Some(1.0)));
/// assert!(scores.batch_entropy.unwrap() > 0.9);
/// assert!(scores.total.is_some());
/// ```
pub fn benchmark<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    batches: &[u32],
    labels: Option<&[u32]>,
    pre_integration: Option<PreIntegration<'_, T>>,
    config: BenchmarkConfig,
) -> Result<Scores> {
    let inputs = (embedding, dims, batches, labels, pre_integration);
    benchmark_with_progress(inputs, config, &Silent)
}

/// [`benchmark`] reporting to `progress` as it goes: the pass over all pairs of cells (the
/// kNN graph, with the label silhouettes) tile by tile, then each further metric as one
/// step.
pub fn benchmark_with_progress<T: EmbeddingValue>(
    (embedding, dims, batches, labels, pre_integration): BenchmarkInputs<'_, T>,
    config: BenchmarkConfig,
    progress: &dyn Progress,
) -> Result<Scores> {
    // Validated once here; every metric below reads the checked view.
    let embedding = Embedding::new(embedding, dims)?;
    let pre_integration = pre_integration
        .map(|pre| Embedding::new(pre.values, pre.dims))
        .transpose()?;
    let n = embedding.n();
    let lisi_k = LISI_NEIGHBORS.min(n.saturating_sub(1));
    let widest = config
        .n_neighbors
        .max(config.accuracy_neighbors)
        .max(lisi_k);
    // With cell types, the label silhouettes come from the kNN graph's pass over all pairs.
    let (graph, silhouettes) = match labels {
        Some(labels) => {
            progress.stage("exact kNN graph and label silhouettes", tile_count(n));
            let (graph, silhouettes) =
                knn_and_label_silhouettes(embedding, widest, labels, progress)?;
            (graph, Some(silhouettes))
        }
        None => {
            progress.stage("exact kNN graph", tile_count(n));
            (knn_of(embedding, widest, progress)?, None)
        }
    };
    one_per_cell(batches, graph.n(), "batches")?;
    let lisi_graph = graph.truncate(lisi_k)?;
    let lisi_weights = step(progress, "LISI weights", || LisiWeights::new(&lisi_graph))?;
    let mut scores = step(progress, "batch entropy and iLISI", || -> Result<Scores> {
        Ok(Scores {
            batch_entropy: Some(batch_entropy(&graph.truncate(config.n_neighbors)?, batches)?.mean),
            ilisi: Some(lisi_weights.ilisi(batches)?),
            ..Scores::default()
        })
    })?;
    if let Some(pre) = pre_integration {
        scores.pcr_comparison = Some(step(progress, "PCR comparison", || {
            pcr_comparison_of(pre, embedding, batches)
        })?);
    }
    let (Some(labels), Some(silhouettes)) = (labels, silhouettes) else {
        scores.aggregate();
        return Ok(scores);
    };
    let connectivity_graph = graph.truncate(CONNECTIVITY_NEIGHBORS.min(lisi_k))?;
    step(
        progress,
        "kNN accuracy, cLISI, graph connectivity",
        || -> Result<()> {
            scores.knn_accuracy =
                Some(knn_accuracy(&graph.truncate(config.accuracy_neighbors)?, labels)?.mean);
            scores.clisi = Some(lisi_weights.clisi(labels)?);
            scores.graph_connectivity = Some(graph_connectivity(&connectivity_graph, labels)?);
            Ok(())
        },
    )?;
    scores.silhouette_label = Some(rescaled_mean(&silhouettes));
    scores.isolated_labels = Some(isolated_labels_of(&silhouettes, labels, batches));
    step(progress, "batch silhouettes and BRAS", || -> Result<()> {
        scores.silhouette_batch = Some(silhouette_batch_of(embedding, labels, batches)?);
        scores.bras = Some(bras_of(embedding, labels, batches)?);
        Ok(())
    })?;
    let kbet_graph = graph.truncate(KBET_NEIGHBORS.min(lisi_k))?;
    scores.kbet = match step(progress, "kBET", || kbet(&kbet_graph, batches, labels)) {
        Ok(result) => Some(result.score),
        Err(Error::TooFewLabels { .. }) => None,
        Err(other) => return Err(other),
    };
    let clusters = step(progress, "k-means NMI/ARI", || {
        nmi_ari_kmeans_of(embedding, labels, 0)
    })?;
    scores.nmi_kmeans = Some(clusters.nmi);
    scores.ari_kmeans = Some(clusters.ari);
    scores.aggregate();
    Ok(scores)
}
