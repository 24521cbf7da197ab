//! Exact evaluation metrics for single-cell embeddings and classifiers.
//!
//! Where `diffbio-core` gives smooth surrogates to train with, this crate gives the exact
//! numbers to report: the tie-aware [`roc_auc()`] (equal to scikit-learn's `roc_auc_score`)
//! and [`average_precision()`] (equal to `average_precision_score`), and scib-metrics'
//! integration metrics on one exact, tiled [`knn()`] graph: per-cell [`batch_entropy`],
//! [`knn_accuracy`] and [`lisi()`] ([`ilisi`], [`clisi`]), [`graph_connectivity`], the
//! silhouettes ([`silhouette_label`], [`silhouette_batch`], [`bras`], [`isolated_labels`]),
//! [`kbet()`], [`nmi_ari_kmeans`] (deterministic [`kmeans`], [`nmi`], [`ari`]),
//! [`pcr_comparison`], and [`benchmark()`], which computes them all with the Benchmarker's
//! aggregates. Memory is linear in the number of cells throughout (no n × n buffer).

#![warn(missing_docs)]

mod average_precision;
mod benchmark;
mod clustering;
mod connectivity;
mod diffusion;
mod eigen;
mod embedding;
mod error;
mod kbet;
mod knn;
mod labels;
mod lisi;
mod neighbourhood;
mod pairwise;
mod pcr;
mod progress;
mod ranking;
mod roc_auc;
mod silhouette;
mod sliced_ell;
mod sparse_graph;
mod umap;

pub use average_precision::average_precision;
pub use benchmark::{
    benchmark, benchmark_graph, benchmark_with_graph, benchmark_with_progress, min_max_scale,
    BenchmarkConfig, BenchmarkInputs, Metric, MetricGroup, MetricSet, PreIntegration, Scores,
    SkipReason, Skipped, EMBEDDING_METRICS, METRICS,
};
pub use clustering::{ari, kmeans, nmi, nmi_ari_kmeans, KMeans, NmiAri, KMEANS_STARTS};
pub use connectivity::graph_connectivity;
pub use embedding::EmbeddingValue;
pub use error::{Error, Result};
pub use kbet::{kbet, Kbet, LabelKbet, KBET_ALPHA};
pub use knn::{knn, KnnGraph};
pub use lisi::{clisi, ilisi, lisi, LisiWeights};
pub use neighbourhood::{batch_entropy, knn_accuracy, PerCell};
pub use pcr::{pcr, pcr_comparison};
pub use progress::{Progress, Silent};
pub use ranking::Score;
pub use roc_auc::roc_auc;
pub use silhouette::{
    bras, isolated_labels, silhouette_batch, silhouette_label, silhouette_samples, Between,
    Distance,
};
