//! Reading and writing what diffbio scores: embeddings and integer labels from `.npy` and
//! `.safetensors` files, and AnnData `.h5ad` files (embeddings from `obsm`, label columns
//! from `obs`, scanpy's neighbour graph from `obsp`, a copy with one more `obsm` entry).
//! Every refused file is a one-line [`Error`] naming it.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let anndata = diffbio_io::h5ad::AnnData::open(Path::new("atlas.h5ad"))?;
//! let embedding = anndata.obsm("X_scVI")?;
//! let batches = anndata.obs("batch")?;
//! assert_eq!(batches.codes.len(), embedding.n_cells());
//! # Ok::<(), diffbio_io::Error>(())
//! ```

mod arrays;
mod error;
mod font;
pub mod h5ad;

pub use arrays::{read_embedding, read_labels, Embedding};
pub use error::{Error, Result};
pub use font::read_font;
