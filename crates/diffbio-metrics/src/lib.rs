//! Exact evaluation metrics for single-cell embeddings and classifiers.
//!
//! Where `diffbio-core` gives smooth surrogates to train with, this crate gives the exact
//! numbers to report: today the tie-aware [`roc_auc`] (equal to scikit-learn's
//! `roc_auc_score`).

mod error;
mod roc_auc;

pub use error::{Error, Result};
pub use roc_auc::{roc_auc, Score};
