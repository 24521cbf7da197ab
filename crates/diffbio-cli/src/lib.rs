//! The library behind the `diffbio` command: reading embeddings and labels from `.npy` and
//! `.safetensors` files, and reporting every metric of `diffbio-metrics` for them.

mod error;
mod input;
mod score;

pub use error::{Error, Result};
pub use input::{read_embedding, read_labels, Embedding};
pub use score::{score, to_json, to_table, Bars, ScoreRequest};
