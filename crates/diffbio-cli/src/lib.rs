//! The library behind the `diffbio` command: every metric of `diffbio-metrics` for the
//! embeddings of `.npy`, `.safetensors` and AnnData `.h5ad` files (read by `diffbio-io`),
//! as a table, delimited text, JSON or a figure.

mod bars;
mod given_graph;
pub mod plot;
mod render;
mod score;
mod timings;

pub use bars::Bars;
pub use diffbio_io::{Error, Result};
pub use render::{notes, timings_table, to_delimited, to_json, to_per_cell_tsv, to_table};
pub use score::{score, GraphRow, Report, Row, ScoreRequest, Source};
