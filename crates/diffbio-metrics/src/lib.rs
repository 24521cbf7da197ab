//! Exact evaluation metrics for single-cell embeddings and classifiers.
//!
//! Where `diffbio-core` gives smooth surrogates to train with, this crate gives the exact
//! numbers to report: the tie-aware [`roc_auc`] (equal to scikit-learn's `roc_auc_score`)
//! and [`average_precision`] (equal to `average_precision_score`), and, on an exact
//! [`knn`] graph, the per-cell [`batch_entropy`] and leave-one-out [`knn_accuracy`].

mod average_precision;
mod benchmark;
mod connectivity;
mod error;
mod lisi;
mod neighbours;
mod pairwise;
mod ranking;
mod roc_auc;
mod silhouette;

pub use average_precision::average_precision;
pub use benchmark::{benchmark, BenchmarkConfig, Scores};
pub use connectivity::graph_connectivity;
pub use error::{Error, Result};
pub use lisi::{clisi, ilisi, lisi};
pub use neighbours::{batch_entropy, knn, knn_accuracy, KnnGraph, PerCell};
pub use ranking::Score;
pub use roc_auc::roc_auc;
pub use silhouette::{
    bras, isolated_labels, silhouette_batch, silhouette_label, silhouette_samples, Between,
    Distance,
};
