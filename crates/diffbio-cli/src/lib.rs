//! The library behind the `diffbio` command: reading embeddings and labels from `.npy`,
//! `.safetensors` and AnnData `.h5ad` files, and reporting every metric of
//! `diffbio-metrics` for them.

mod error;
pub mod h5ad;
mod input;
pub mod plot;
mod score;
mod timings;

pub use error::{Error, Result};
pub use input::{read_embedding, read_labels, Embedding};
pub use score::{
    notes, score, timings_table, to_delimited, to_json, to_per_cell_tsv, to_table, Bars, GraphRow,
    Report, Row, ScoreRequest, Source,
};
