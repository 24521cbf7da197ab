//! Every metric of the crate for one embedding, from one shared kNN graph.

use crate::clustering::nmi_ari_kmeans_of;
use crate::connectivity::graph_connectivity;
use crate::embedding::{Embedding, EmbeddingValue};
use crate::error::{Error, Result};
use crate::kbet::{kbet_connectivities, kbet_of, LabelKbet};
use crate::knn::{knn_of, KnnGraph};
use crate::labels::one_per_cell;
use crate::lisi::LisiWeights;
use crate::neighbourhood::{batch_entropy, knn_accuracy};
use crate::pairwise::tile_count;
use crate::pcr::pcr_comparison_of;
use crate::progress::{step, Progress, Silent};
use crate::silhouette::{
    bras_of, isolated_labels_of, knn_and_silhouettes, rescaled_mean, silhouettes,
};

/// LISI neighbours: scib-metrics' Benchmarker uses 90 counting the cell itself.
const LISI_NEIGHBORS: usize = 89;
/// Graph-connectivity neighbours: scib-metrics' 15 counting the cell itself.
const CONNECTIVITY_NEIGHBORS: usize = 14;
/// kBET neighbours: scib-metrics' 50 counting the cell itself.
const KBET_NEIGHBORS: usize = 49;

/// Neighbourhood sizes of [`benchmark`], and the metrics it leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchmarkConfig {
    /// Neighbours for the batch entropy.
    pub n_neighbors: usize,
    /// Neighbours for the leave-one-out cell-type accuracy.
    pub accuracy_neighbors: usize,
    /// Metrics not to compute (none by default), as scib-metrics' `BioConservation` and
    /// `BatchCorrection` switches turn them off: their work is not done (kBET is most of
    /// it; without the three silhouettes the pass over all pairs finds the graph alone and
    /// skips the tiles it does not need; the graph is only as wide as the metrics left
    /// need), and the aggregates are the means of the metrics computed
    /// ([`Scores::left_out`]).
    pub left_out: MetricSet,
}

impl Default for BenchmarkConfig {
    fn default() -> Self {
        Self {
            n_neighbors: 30,
            accuracy_neighbors: 15,
            left_out: MetricSet::default(),
        }
    }
}

/// A set of the benchmark's metrics (the [`METRICS`] that are not aggregates), by their
/// snake_case names; empty by default.
///
/// ```
/// use diffbio_metrics::MetricSet;
/// let set = MetricSet::of(&["kbet", "nmi_kmeans"]).unwrap();
/// assert!(set.contains("kbet") && !set.contains("ilisi"));
/// assert_eq!(set.names(), ["nmi_kmeans", "kbet"]); // in the table's order
/// assert!(MetricSet::of(&["kBET"]).is_err()); // names as in `Scores::entries`
/// assert!(MetricSet::of(&["total"]).is_err()); // an aggregate
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricSet(u32);

impl MetricSet {
    /// The metrics of these names ([`Error::UnknownMetric`] for any other name).
    pub fn of<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        let chosen = |m: &Metric| m.group != MetricGroup::Aggregate;
        names.iter().try_fold(Self::default(), |set, name| {
            let name = name.as_ref();
            match Self::bit(name).filter(|&bit| chosen(&METRICS[bit])) {
                Some(bit) => Ok(Self(set.0 | 1 << bit)),
                None => Err(Error::UnknownMetric {
                    name: name.to_string(),
                    known: METRICS
                        .iter()
                        .filter(|m| chosen(m))
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            }
        })
    }

    /// The names of its metrics, in [`METRICS`]' order.
    pub fn names(self) -> Vec<&'static str> {
        METRICS
            .iter()
            .enumerate()
            .filter(|&(bit, _)| self.0 & 1 << bit != 0)
            .map(|(_, m)| m.name)
            .collect()
    }

    /// Whether it holds the metric of this name.
    pub fn contains(self, name: &str) -> bool {
        Self::bit(name).is_some_and(|bit| self.0 & 1 << bit != 0)
    }

    /// The metric's index in [`METRICS`], when the name is a metric's.
    fn bit(name: &str) -> Option<usize> {
        METRICS.iter().position(|m| m.name == name)
    }
}

/// The metrics of one embedding; a field is `None` when it was not computed (the
/// cell-type metrics without cell-type labels, `pcr_comparison` without a pre-integration
/// embedding, a metric listed in [`Scores::skipped`], an aggregate without all its parts).
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
    /// Each cell type's kBET (empty when kBET was not computed); not min-max scaled.
    pub kbet_per_label: Vec<LabelKbet>,
    /// Each cell's LISI of the batches, in input order: what iLISI summarises (empty when
    /// iLISI was not computed).
    pub batch_lisi_per_cell: Vec<f64>,
    /// Each cell's LISI of the cell types: what cLISI summarises (empty when not computed).
    pub label_lisi_per_cell: Vec<f64>,
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
    /// The metrics left out, each with its reason: undefined on this input (e.g. kBET when
    /// no cell type has ≥ 10 cells in ≥ 2 batches), or needing more neighbours than a graph
    /// given from elsewhere has ([`benchmark_with_graph`]).
    pub skipped: Vec<Skipped>,
    /// The metrics left out by choice ([`BenchmarkConfig::left_out`]): not computed, and
    /// not parts of the aggregates, which (as scib-metrics' `get_results`) are the means of
    /// the metrics computed.
    pub left_out: MetricSet,
}

impl Scores {
    /// `(snake_case name, value)` of every computed metric, in [`METRICS`]' order.
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        METRICS
            .iter()
            .filter_map(|m| m.value(self).map(|v| (m.name, v)))
            .collect()
    }

    /// The metric of that snake_case name, when computed.
    pub fn get(&self, name: &str) -> Option<f64> {
        METRICS
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.value(self))
    }

    /// The Benchmarker's aggregates (`get_results(min_max_scale=False)`): the mean of each
    /// group's metrics not left out, in [`METRICS`]' order (`None` when one is missing or
    /// all are left out), then the total.
    fn aggregate(&mut self) {
        let mean = |scores: &Self, group: MetricGroup| -> Option<f64> {
            let parts = METRICS
                .iter()
                .filter(|m| m.group == group && !scores.left_out.contains(m.name));
            let values: Option<Vec<f64>> = parts.map(|m| m.value(scores)).collect();
            values
                .filter(|v| !v.is_empty())
                .map(|v| v.iter().sum::<f64>() / v.len() as f64)
        };
        self.batch_correction = mean(self, MetricGroup::BatchCorrection);
        self.bio_conservation = mean(self, MetricGroup::BioConservation);
        self.total = self
            .batch_correction
            .zip(self.bio_conservation)
            .map(|(batch, bio)| 0.4 * batch + 0.6 * bio);
    }
}

/// How scib-metrics' results table groups a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricGroup {
    /// Part of [`Scores::bio_conservation`].
    BioConservation,
    /// Part of [`Scores::batch_correction`].
    BatchCorrection,
    /// An aggregate of the parts.
    Aggregate,
    /// diffbio's own, in no aggregate.
    Additional,
}

/// One metric of [`Scores`]: its field's name, its column title in scib-metrics'
/// `Benchmarker.get_results()` (diffbio's own metrics get titles in the same style), its
/// group, and the field itself.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The field's snake_case name, as in [`Scores::entries`].
    pub name: &'static str,
    /// The column title.
    pub title: &'static str,
    /// Its group.
    pub group: MetricGroup,
    /// Reads its field of [`Scores`].
    read: fn(&Scores) -> Option<f64>,
    /// Its field of [`Scores`], to write.
    field: fn(&mut Scores) -> &mut Option<f64>,
}

impl Metric {
    /// Its value in `scores`, when computed.
    pub fn value(&self, scores: &Scores) -> Option<f64> {
        (self.read)(scores)
    }
}

impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Metric {}

/// The metrics in scib-metrics' column order (bio conservation, batch correction, the
/// aggregates), then diffbio's own: the one list of the metrics' names, titles and groups.
pub const METRICS: [Metric; 16] = {
    use MetricGroup::{Additional, Aggregate, BatchCorrection, BioConservation};
    macro_rules! metric {
        ($field:ident, $title:literal, $group:ident) => {
            Metric {
                name: stringify!($field),
                title: $title,
                group: $group,
                read: |scores| scores.$field,
                field: |scores| &mut scores.$field,
            }
        };
    }
    [
        metric!(isolated_labels, "Isolated labels", BioConservation),
        metric!(nmi_kmeans, "KMeans NMI", BioConservation),
        metric!(ari_kmeans, "KMeans ARI", BioConservation),
        metric!(silhouette_label, "Silhouette label", BioConservation),
        metric!(clisi, "cLISI", BioConservation),
        metric!(bras, "BRAS", BatchCorrection),
        metric!(ilisi, "iLISI", BatchCorrection),
        metric!(kbet, "KBET", BatchCorrection),
        metric!(graph_connectivity, "Graph connectivity", BatchCorrection),
        metric!(pcr_comparison, "PCR comparison", BatchCorrection),
        metric!(batch_correction, "Batch correction", Aggregate),
        metric!(bio_conservation, "Bio conservation", Aggregate),
        metric!(total, "Total", Aggregate),
        metric!(batch_entropy, "Batch entropy", Additional),
        metric!(knn_accuracy, "kNN accuracy", Additional),
        metric!(silhouette_batch, "Silhouette batch", Additional),
    ]
};

/// scib-metrics' `get_results(min_max_scale=True)` over several embeddings' scores: every
/// metric is scaled to `(x − min) / (max − min)` across the embeddings (0 where all are
/// equal, as scikit-learn's `MinMaxScaler`; a metric not computed stays `None`), then the
/// aggregates are recomputed from the scaled parts. diffbio's own metrics are scaled too.
///
/// ```
/// use diffbio_metrics::{min_max_scale, Scores};
/// let a = Scores { ilisi: Some(0.2), kbet: Some(0.5), ..Scores::default() };
/// let b = Scores { ilisi: Some(0.6), kbet: Some(0.5), ..Scores::default() };
/// let scaled = min_max_scale(&[a, b]);
/// assert_eq!((scaled[0].ilisi, scaled[1].ilisi), (Some(0.0), Some(1.0)));
/// assert_eq!((scaled[0].kbet, scaled[1].kbet), (Some(0.0), Some(0.0)));
/// ```
pub fn min_max_scale(scores: &[Scores]) -> Vec<Scores> {
    let mut scaled = scores.to_vec();
    for metric in METRICS.iter().filter(|m| m.group != MetricGroup::Aggregate) {
        let values = scores.iter().filter_map(|s| metric.value(s));
        let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let range = if high > low { high - low } else { 1.0 };
        for row in &mut scaled {
            let value = (metric.field)(row);
            *value = value.map(|v| (v - low) / range);
        }
    }
    scaled.iter_mut().for_each(Scores::aggregate);
    scaled
}

/// The metrics computed from an embedding, not from the kNN graph, in the order
/// [`benchmark_graph`] lists them as skipped: PCR comparison, then those that need the cell
/// types too.
pub const EMBEDDING_METRICS: [&str; 7] = [
    "pcr_comparison",
    "silhouette_label",
    "isolated_labels",
    "silhouette_batch",
    "bras",
    "nmi_kmeans",
    "ari_kmeans",
];

/// An embedding before integration (e.g. the PCA an integration started from), for
/// `pcr_comparison`: row-major `[n × dims]`.
#[derive(Debug, Clone, Copy)]
pub struct PreIntegration<'a, T> {
    /// The values, row-major.
    pub values: &'a [T],
    /// Dimensions per cell.
    pub dims: usize,
}

/// What [`benchmark_with_progress`] and [`benchmark_with_graph`] score: what [`benchmark`]
/// takes as arguments.
#[derive(Debug, Clone, Copy)]
pub struct BenchmarkInputs<'a, T> {
    /// The embedding, row-major `[n × dims]`.
    pub embedding: &'a [T],
    /// Dimensions per cell.
    pub dims: usize,
    /// Each cell's batch.
    pub batches: &'a [u32],
    /// Each cell's type, when known (else only the batch metrics are computed).
    pub labels: Option<&'a [u32]>,
    /// The embedding before integration, for `pcr_comparison`.
    pub pre_integration: Option<PreIntegration<'a, T>>,
}

/// Computes every metric for a row-major `[n × dims]` embedding, its batch labels and,
/// optionally, its cell-type labels and the pre-integration embedding, from one exact kNN
/// graph, with scib-metrics' Benchmarker neighbourhoods (LISI: 90 neighbours counting the
/// cell itself, i.e. 89 here, or n − 1 for fewer cells; kBET: 50; graph connectivity: 15)
/// and its aggregates. Without cell-type labels only the batch metrics are computed; the
/// k-means of NMI/ARI is seeded with 0. A metric that is undefined on the input (kBET or the
/// batch silhouettes when no cell type has cells in two batches, say) is left `None` and
/// listed with its reason in [`Scores::skipped`]; the others are still computed. The
/// metrics `config.left_out` names are not computed ([`BenchmarkConfig::left_out`]). The
/// Euclidean silhouettes cost O(n²·d) (tiled matrix products), the kNN graph as much;
/// everything else is O(n·k) or O(n·d).
///
/// ```
/// use diffbio_metrics::{benchmark, BenchmarkConfig, PreIntegration};
/// // two well-separated cell types, each measured in two interleaved batches; d = 1
/// let x: Vec<f32> = (0..40).map(|i| if i < 20 { i as f32 } else { 100.0 + i as f32 }).collect();
/// let batches: Vec<u32> = (0..40).map(|i| i % 2).collect();
/// let types: Vec<u32> = (0..40).map(|i| u32::from(i >= 20)).collect();
/// // before integration, batch 1 sat 5 units away
/// let pre: Vec<f32> = x.iter().zip(&batches).map(|(v, &b)| v + 5.0 * b as f32).collect();
/// let config = BenchmarkConfig { n_neighbors: 4, accuracy_neighbors: 3, ..Default::default() };
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
    let inputs = BenchmarkInputs {
        embedding,
        dims,
        batches,
        labels,
        pre_integration,
    };
    benchmark_with_progress(inputs, config, &Silent)
}

/// [`benchmark`] reporting to `progress` as it goes: the pass over all pairs of cells (the
/// kNN graph, with the label silhouettes and the batch silhouettes within cell types) tile
/// by tile, then each further metric as one step.
pub fn benchmark_with_progress<T: EmbeddingValue>(
    inputs: BenchmarkInputs<'_, T>,
    config: BenchmarkConfig,
    progress: &dyn Progress,
) -> Result<Scores> {
    score_all(inputs, None, config, progress)
}

/// A metric the benchmark left out, and why ([`Scores::skipped`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The metric's snake_case name, as in [`Scores::entries`].
    pub metric: &'static str,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Why a metric was left out of the benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The neighbour graph given has fewer neighbours per cell than the metric's
    /// neighbourhood: it is never computed on a smaller one.
    TooFewNeighbours {
        /// The neighbours per cell (self excluded) it needs.
        needs: usize,
        /// The neighbours per cell the graph has.
        has: usize,
    },
    /// The metric is undefined on this input ([`Error::Undefined`]'s reason, or a variance
    /// it divides by is zero).
    Undefined(String),
    /// The metric needs an embedding, and only a neighbour graph was scored
    /// ([`benchmark_graph`]).
    NeedsEmbedding,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooFewNeighbours { needs, has } => {
                write!(f, "needs {needs} neighbours per cell; the graph has {has}")
            }
            Self::Undefined(why) => write!(f, "undefined here: {why}"),
            Self::NeedsEmbedding => write!(f, "needs an embedding; only a graph was given"),
        }
    }
}

impl std::fmt::Display for Skipped {
    /// `metric (reason)`, e.g. `kbet (needs 49 neighbours per cell; the graph has 15)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.metric, self.reason)
    }
}

/// `Some` of `metric`'s value; `None` after listing it in `skipped` when it is undefined on
/// this input, valid as it is ([`Error::Undefined`], or a variance it divides by is zero).
/// Any other error is the input's fault and ends the benchmark.
fn unless_undefined<T>(
    skipped: &mut Vec<Skipped>,
    metric: &'static str,
    result: Result<T>,
) -> Result<Option<T>> {
    let why = match result {
        Ok(value) => return Ok(Some(value)),
        Err(Error::Undefined { reason, .. }) => reason,
        Err(Error::ZeroVariance { input }) => format!("`{input}` has no variance"),
        Err(e) => return Err(e),
    };
    skipped.push(Skipped {
        metric,
        reason: SkipReason::Undefined(why),
    });
    Ok(None)
}

/// [`benchmark_with_progress`] on a neighbour graph computed elsewhere (e.g. scanpy's
/// `obsp['distances']`, through [`KnnGraph::from_neighbours`]) instead of the exact one:
/// each graph metric uses a prefix of every cell's neighbours, and one that needs more
/// neighbours than the graph has is left `None` and listed in [`Scores::skipped`] — never
/// computed on a smaller neighbourhood. The silhouettes, k-means and PCR do not use the
/// graph; the Euclidean silhouettes then take their own pass over all pairs.
pub fn benchmark_with_graph<T: EmbeddingValue>(
    inputs: BenchmarkInputs<'_, T>,
    graph: &KnnGraph,
    config: BenchmarkConfig,
    progress: &dyn Progress,
) -> Result<Scores> {
    score_all(inputs, Some(graph), config, progress)
}

/// The scores of an integration that outputs a neighbour graph and no embedding (BBKNN,
/// say): the graph metrics ([`benchmark_with_graph`]'s rules: each on a prefix of every
/// cell's neighbours, skipped and listed when the graph has fewer than it needs), and every
/// metric that needs an embedding (PCR comparison, and with cell types the silhouettes,
/// BRAS, isolated labels and the k-means NMI/ARI) listed in [`Scores::skipped`] as
/// [`SkipReason::NeedsEmbedding`]. So the aggregates are `None`.
///
/// ```
/// use diffbio_metrics::{benchmark_graph, knn, BenchmarkConfig, Silent, SkipReason};
/// let x: Vec<f64> = (0..60).map(|i| i as f64).collect(); // d = 1: a line of cells
/// let graph = knn(&x, 1, 20).unwrap();
/// let batches: Vec<u32> = (0..60).map(|i| i % 2).collect();
/// let config = BenchmarkConfig { n_neighbors: 10, accuracy_neighbors: 5, ..Default::default() };
/// let scores = benchmark_graph(&graph, &batches, None, config, &Silent).unwrap();
/// assert!(scores.batch_entropy.unwrap() > 0.9); // interleaved batches: mixed
/// assert_eq!(scores.skipped[1].reason, SkipReason::NeedsEmbedding);
/// ```
pub fn benchmark_graph(
    graph: &KnnGraph,
    batches: &[u32],
    labels: Option<&[u32]>,
    config: BenchmarkConfig,
    progress: &dyn Progress,
) -> Result<Scores> {
    let mut scores = graph_scores(graph.clone(), (batches, labels), config, progress)?;
    let needs_embedding = match labels {
        Some(_) => &EMBEDDING_METRICS[..],
        None => &EMBEDDING_METRICS[..1],
    };
    let wanted = needs_embedding
        .iter()
        .filter(|&&metric| !config.left_out.contains(metric));
    scores.skipped.extend(wanted.map(|&metric| Skipped {
        metric,
        reason: SkipReason::NeedsEmbedding,
    }));
    scores.aggregate();
    Ok(scores)
}

fn score_all<T: EmbeddingValue>(
    BenchmarkInputs {
        embedding,
        dims,
        batches,
        labels,
        pre_integration,
    }: BenchmarkInputs<'_, T>,
    given: Option<&KnnGraph>,
    config: BenchmarkConfig,
    progress: &dyn Progress,
) -> Result<Scores> {
    // Validated once here; every metric below reads the checked view.
    let embedding = Embedding::new(embedding, dims)?;
    let pre_integration = pre_integration
        .map(|pre| Embedding::new(pre.values, pre.dims))
        .transpose()?;
    let n = embedding.n();
    let wanted = |metric: &str| !config.left_out.contains(metric);
    let silhouettes_wanted = SILHOUETTE_METRICS.iter().any(|m| wanted(m));
    let (graph, silhouettes) = match (given, labels) {
        (Some(graph), labels) => {
            one_per_cell(batches, n, "batches")?;
            if graph.n() != n {
                return Err(Error::LengthMismatch {
                    input: "graph",
                    expected: n,
                    got: graph.n(),
                });
            }
            let silhouettes = labels
                .filter(|_| silhouettes_wanted)
                .map(|labels| {
                    one_per_cell(labels, n, "labels")?;
                    step(progress, "silhouettes", || {
                        silhouettes(embedding, labels, batches)
                    })
                })
                .transpose()?;
            (graph.clone(), silhouettes)
        }
        // With cell types, the Euclidean silhouettes come from the kNN graph's pass over all
        // pairs.
        (None, labels) => {
            let widest = graph_width(config, n);
            match labels.filter(|_| silhouettes_wanted) {
                Some(labels) => {
                    progress.stage("exact kNN graph and silhouettes", tile_count(n));
                    let (graph, silhouettes) =
                        knn_and_silhouettes(embedding, widest, labels, batches, progress)?;
                    (graph, Some(silhouettes))
                }
                None => {
                    progress.stage("exact kNN graph", tile_count(n));
                    (knn_of(embedding, widest, progress)?, None)
                }
            }
        }
    };
    // The graph goes to its metrics, which free it before kBET's diffusion maps: the stages
    // after them read the embedding alone.
    let mut scores = graph_scores(graph, (batches, labels), config, progress)?;
    if let Some(pre) = pre_integration.filter(|_| wanted("pcr_comparison")) {
        let pcr = step(progress, "PCR comparison", || {
            pcr_comparison_of(pre, embedding, batches)
        });
        scores.pcr_comparison = unless_undefined(&mut scores.skipped, "pcr_comparison", pcr)?;
    }
    if let Some(labels) = labels {
        if let Some(silhouettes) = silhouettes {
            let label_scores = &silhouettes.labels;
            scores.silhouette_label =
                wanted("silhouette_label").then(|| rescaled_mean(label_scores));
            scores.isolated_labels = wanted("isolated_labels")
                .then(|| isolated_labels_of(label_scores, labels, batches));
            if wanted("silhouette_batch") {
                let batch = silhouettes.batch;
                scores.silhouette_batch =
                    unless_undefined(&mut scores.skipped, "silhouette_batch", batch)?;
            }
        }
        if wanted("bras") {
            let bras = step(progress, "BRAS", || bras_of(embedding, labels, batches));
            scores.bras = unless_undefined(&mut scores.skipped, "bras", bras)?;
        }
        if wanted("nmi_kmeans") || wanted("ari_kmeans") {
            let clusters = step(progress, "k-means NMI/ARI", || {
                nmi_ari_kmeans_of(embedding, labels, 0)
            })?;
            scores.nmi_kmeans = wanted("nmi_kmeans").then_some(clusters.nmi);
            scores.ari_kmeans = wanted("ari_kmeans").then_some(clusters.ari);
        }
    }
    scores.aggregate();
    Ok(scores)
}

/// The metrics that the pass over all pairs computes beside the kNN graph.
const SILHOUETTE_METRICS: [&str; 3] = ["silhouette_label", "isolated_labels", "silhouette_batch"];

/// Each metric of the kNN graph and the neighbours per cell (the cell left out) it reads
/// among `n` cells, in the order [`graph_scores`] lists them when skipped; the first two
/// need no cell types.
fn graph_neighbourhoods(config: BenchmarkConfig, n: usize) -> [(&'static str, usize); 6] {
    let lisi_k = LISI_NEIGHBORS.min(n.saturating_sub(1));
    [
        ("batch_entropy", config.n_neighbors),
        ("ilisi", lisi_k),
        ("clisi", lisi_k),
        ("knn_accuracy", config.accuracy_neighbors),
        ("graph_connectivity", CONNECTIVITY_NEIGHBORS.min(lisi_k)),
        ("kbet", KBET_NEIGHBORS.min(lisi_k)),
    ]
}

/// The neighbours per cell of the exact graph: the widest neighbourhood of the graph
/// metrics not left out (at least 1).
fn graph_width(config: BenchmarkConfig, n: usize) -> usize {
    graph_neighbourhoods(config, n)
        .into_iter()
        .filter(|(metric, _)| !config.left_out.contains(metric))
        .map(|(_, k)| k)
        .fold(1, usize::max)
}

/// The metrics of a neighbour graph alone (batch entropy, the LISIs, kNN accuracy, graph
/// connectivity, kBET), each on a prefix of every cell's neighbours; one needing more
/// neighbours than the graph has, or undefined on the labels, is listed in `skipped`. The
/// graph's rows are freed (unless shared elsewhere) once kBET has its connectivities.
fn graph_scores(
    graph: KnnGraph,
    (batches, labels): (&[u32], Option<&[u32]>),
    config: BenchmarkConfig,
    progress: &dyn Progress,
) -> Result<Scores> {
    one_per_cell(batches, graph.n(), "batches")?;
    if let Some(labels) = labels {
        one_per_cell(labels, graph.n(), "labels")?;
    }
    let neighbourhoods = graph_neighbourhoods(config, graph.n());
    let mut skipped = Vec::new();
    // The metric's neighbours per cell when the graph has that many, else `None` (and
    // `metric` skipped); `None` for a metric left out.
    let mut within = |metric: &'static str| -> Option<usize> {
        let find = neighbourhoods.iter().find(|(m, _)| *m == metric);
        let (_, k) = *find.expect("a metric of the graph");
        if config.left_out.contains(metric) {
            return None;
        }
        if k > graph.k() {
            let reason = SkipReason::TooFewNeighbours {
                needs: k,
                has: graph.k(),
            };
            skipped.push(Skipped { metric, reason });
            return None;
        }
        Some(k)
    };
    let entropy_k = within("batch_entropy");
    let ilisi_k = within("ilisi");
    let (clisi_k, accuracy_k, connectivity_k, kbet_k) = match labels {
        Some(_) => (
            within("clisi"),
            within("knn_accuracy"),
            within("graph_connectivity"),
            within("kbet"),
        ),
        None => (None, None, None, None),
    };
    // Each metric's prefix of the graph shares the graph's rows.
    let prefix = |k: usize| graph.truncate(k);
    let lisi_graph = ilisi_k.or(clisi_k).map(prefix).transpose()?;
    let lisi_weights = lisi_graph
        .as_ref()
        .map(|g| step(progress, "LISI weights", || LisiWeights::new(g)))
        .transpose()?;
    let mut scores = step(progress, "batch entropy and iLISI", || -> Result<Scores> {
        let (ilisi, batch_lisi_per_cell) = match lisi_weights.as_ref().filter(|_| ilisi_k.is_some())
        {
            Some(w) => w
                .ilisi_and_per_cell(batches)
                .map(|(s, cells)| (Some(s), cells))?,
            None => (None, Vec::new()),
        };
        Ok(Scores {
            batch_entropy: entropy_k
                .map(|k| batch_entropy(&prefix(k)?, batches).map(|e| e.mean))
                .transpose()?,
            ilisi,
            batch_lisi_per_cell,
            ..Scores::default()
        })
    })?;
    if let Some(labels) = labels {
        step(
            progress,
            "kNN accuracy, cLISI, graph connectivity",
            || -> Result<()> {
                scores.knn_accuracy = accuracy_k
                    .map(|k| knn_accuracy(&prefix(k)?, labels).map(|a| a.mean))
                    .transpose()?;
                if let Some(w) = lisi_weights.as_ref().filter(|_| clisi_k.is_some()) {
                    let (clisi, per_cell) = w.clisi_and_per_cell(labels)?;
                    (scores.clisi, scores.label_lisi_per_cell) = (Some(clisi), per_cell);
                }
                scores.graph_connectivity = connectivity_k
                    .map(|k| graph_connectivity(&prefix(k)?, labels))
                    .transpose()?;
                Ok(())
            },
        )?;
        // Done with the LISI weights (and their share of the graph's rows); kBET's diffusion
        // maps, the pipeline's peak of memory, read only its connectivities, so the graph is
        // freed once they are built.
        drop(lisi_weights);
        drop(lisi_graph);
        if let Some(k) = kbet_k {
            let result = step(progress, "kBET", || {
                let connectivities = kbet_connectivities(&graph.truncate(k)?, batches, labels)?;
                drop(graph);
                kbet_of(&connectivities, batches, labels)
            });
            if let Some(result) = unless_undefined(&mut skipped, "kbet", result)? {
                scores.kbet = Some(result.score);
                scores.kbet_per_label = result.per_label;
            }
        }
    }
    scores.skipped = skipped;
    scores.left_out = config.left_out;
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::{EMBEDDING_METRICS, METRICS};

    #[test]
    fn the_embedding_metrics_are_metrics_of_the_table() {
        for name in EMBEDDING_METRICS {
            assert!(METRICS.iter().any(|m| m.name == name), "{name}");
        }
    }
}
