//! AnnData `.h5ad` files (anndata ≥ 0.8's on-disk layout) through `hdf5-pure`, a pure-Rust
//! HDF5 library: embeddings from `obsm`, label columns from `obs`, scanpy's neighbour graph
//! from `obsp`, and a copy of a file with one more `obsm` entry.
//!
//! Files are read as a stream (regions on demand, never the whole file), so a file whose
//! expression matrix is larger than memory still opens; only what is asked for is decoded.
//! Datasets may be uncompressed or gzip/LZF compressed (what `write_h5ad` offers); any
//! other filter, the pre-0.8 layout and a sparse matrix where a dense one is needed are
//! one-line errors.

mod obs;
mod obsp;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdf5_pure::{AttrValue, DType};

use crate::arrays::Embedding;
use crate::error::{check_is_file, Error, Result};

pub use obs::Labels;
pub use obsp::ObspGraph;
pub use write::write_with_obsm;

/// An open `.h5ad` file.
pub struct AnnData {
    file: hdf5_pure::File,
    path: PathBuf,
    n_obs: usize,
}

impl std::fmt::Debug for AnnData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnData")
            .field("path", &self.path)
            .field("n_obs", &self.n_obs)
            .finish()
    }
}

impl AnnData {
    /// Opens `path`, checking that it is an AnnData file of the current layout, and reads
    /// the number of cells from the `obs` index.
    pub fn open(path: &Path) -> Result<Self> {
        check_is_file(path)?;
        let unreadable = |reason: String| Error::Unreadable {
            path: path.to_path_buf(),
            format: ".h5ad",
            reason,
        };
        if !hdf5_pure::is_hdf5(path).map_err(|e| unreadable(e.to_string()))? {
            return Err(unreadable("not an HDF5 file".into()));
        }
        let file = hdf5_pure::File::open_streaming(path).map_err(|e| unreadable(one_line(e)))?;
        let mut anndata = Self {
            file,
            path: path.to_path_buf(),
            n_obs: 0,
        };
        let old_layout = |what: &str| {
            anndata.refused(
                "the file",
                &format!(
                    "is in the pre-0.8 AnnData layout ({what}); re-write it with anndata ≥ 0.8 \
                     (anndata.read_h5ad(f).write_h5ad(f))"
                ),
            )
        };
        let root = anndata
            .file
            .root()
            .attrs()
            .map_err(|e| anndata.broken("/", e))?;
        if let Err(e) = anndata.file.group("obs") {
            return Err(match anndata.file.dataset("obs") {
                Ok(_) => old_layout("obs is a compound dataset"),
                Err(_) => anndata.broken("obs", e),
            });
        }
        let obs = anndata.attrs_of_group("obs")?;
        if !root.contains_key("encoding-type") {
            // anndata 0.7 wrote obs as a group, a dataframe of encoding version 0.1.0, and
            // nothing at the root; without that evidence the root's attributes were lost.
            let version = obs.get("encoding-version").and_then(text);
            return Err(match version.as_deref() {
                Some("0.1.0") => old_layout("no encoding attributes at the root"),
                _ => anndata.refused(
                    "the file",
                    "is damaged or was not written by anndata: its root group has no \
                     `encoding-type` attribute",
                ),
            });
        }
        let index = match obs.get("_index") {
            Some(name) => format!("obs/{}", text(name).unwrap_or_default()),
            None => return Err(anndata.refused("obs", "has no `_index` attribute")),
        };
        anndata.n_obs = anndata.length_of(&index)?;
        Ok(anndata)
    }

    /// The number of cells (rows of `obs`).
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names in `obsm`, sorted.
    pub fn obsm_keys(&self) -> Vec<String> {
        self.members("obsm")
    }

    /// `obsm[key]`: a dense float (f32 or f64) matrix, one row per cell, as f32.
    pub fn obsm(&self, key: &str) -> Result<Embedding> {
        let path = format!("obsm/{key}");
        if self.file.dataset(&path).is_err() {
            return Err(self.not_dense_or_missing("obsm", key));
        }
        let dataset = self.dataset(&path)?;
        let shape = dataset.shape().map_err(|e| self.broken(&path, e))?;
        let &[n, dims] = &shape[..] else {
            return Err(self.refused(&path, &format!("has shape {shape:?}, not [cells, dims]")));
        };
        let (n, dims) = (n as usize, dims as usize);
        if n != self.n_obs || dims == 0 {
            return Err(self.refused(
                &path,
                &format!(
                    "has shape [{n}, {dims}]; it must be [{}, dims ≥ 1] (one row per cell)",
                    self.n_obs
                ),
            ));
        }
        let values = match dataset.dtype().map_err(|e| self.broken(&path, e))? {
            DType::F32 => dataset.read_f32(),
            DType::F64 => dataset
                .read_f64()
                .map(|v| v.into_iter().map(|x| x as f32).collect()),
            other => {
                return Err(self.refused(
                    &path,
                    &format!("holds {other} values; an embedding must be float32 or float64"),
                ))
            }
        }
        .map_err(|e| self.broken(&path, e))?;
        Ok(Embedding { values, dims })
    }

    /// `obs[column]` as labels: see [`Labels`] for the column kinds read.
    pub fn obs(&self, column: &str) -> Result<Labels> {
        obs::read(self, column)
    }

    /// `obsp[key]` (scanpy's `distances`) as a kNN graph, each row cut to the fewest
    /// neighbours any cell has, with the representation it was computed on.
    pub fn obsp(&self, key: &str) -> Result<ObspGraph> {
        obsp::read(self, key)
    }

    /// The members of a group, sorted (none when it is missing).
    fn members(&self, group: &str) -> Vec<String> {
        let Ok(group) = self.file.group(group) else {
            return Vec::new();
        };
        let mut names = group.datasets().unwrap_or_default();
        names.extend(group.groups().unwrap_or_default());
        names.sort();
        names
    }

    /// The error for `group[key]` that is not a dense dataset: a sparse matrix, a data
    /// frame or a missing key (naming the keys there are).
    fn not_dense_or_missing(&self, group: &str, key: &str) -> Error {
        let path = format!("{group}/{key}");
        match self.encoding_of_group(&path) {
            Some(kind) if kind.ends_with("_matrix") => self.refused(
                &path,
                &format!(
                    "is a sparse matrix ({kind}); a dense array is needed \
                     (adata.{group}['{key}'] = adata.{group}['{key}'].toarray())"
                ),
            ),
            Some(kind) => self.refused(&path, &format!("is a {kind}, not an array")),
            None => self.missing_or_damaged(group, key, self.members(group)),
        }
    }

    /// The error for `group[key]` that is neither a dataset nor a group of a known
    /// encoding: missing (naming the keys `available`), or there but without a readable
    /// `encoding-type` (a damaged file, or one not written by anndata).
    fn missing_or_damaged(&self, group: &str, key: &str, available: Vec<String>) -> Error {
        if self.members(group).iter().any(|member| member == key) {
            return self.refused(
                &format!("{group}/{key}"),
                "has no readable `encoding-type` attribute: the file is damaged or was not \
                 written by anndata",
            );
        }
        Error::MissingKey {
            path: self.path.clone(),
            group: group.to_string(),
            key: key.to_string(),
            available,
        }
    }

    /// `encoding-type` of the group at `path`, if there is one.
    fn encoding_of_group(&self, path: &str) -> Option<String> {
        let attrs = self.file.group(path).ok()?.attrs().ok()?;
        attrs.get("encoding-type").and_then(text)
    }

    fn attrs_of_group(&self, path: &str) -> Result<HashMap<String, AttrValue>> {
        let group = self.file.group(path).map_err(|e| self.broken(path, e))?;
        group.attrs().map_err(|e| self.broken(path, e))
    }

    /// The dataset at `path`, refused with the filter's name when its compression is not
    /// one this reader decodes.
    fn dataset(&self, path: &str) -> Result<hdf5_pure::Dataset> {
        let dataset = self.file.dataset(path).map_err(|e| self.broken(path, e))?;
        if let Some(&filter) = dataset
            .filters()
            .iter()
            .find(|f| !READABLE_FILTERS.contains(f))
        {
            return Err(self.refused(
                path,
                &format!(
                    "is compressed with HDF5 filter {filter} ({}), which diffbio cannot read; \
                     write the file with compression='gzip' or 'lzf', or none",
                    filter_name(filter)
                ),
            ));
        }
        Ok(dataset)
    }

    /// The number of entries of a column: a dataset's first dimension, or that of the
    /// codes of a categorical or the values of a nullable array (pandas 3 writes even the
    /// index as a `nullable-string-array`).
    fn length_of(&self, path: &str) -> Result<usize> {
        let data = match self.encoding_of_group(path).as_deref() {
            None => path.to_string(),
            Some("categorical") => format!("{path}/codes"),
            Some(_) => format!("{path}/values"),
        };
        match self.shape_of(&data)?.first() {
            Some(&n) => Ok(n),
            None => Err(self.refused(&data, "is a scalar, not a column")),
        }
    }

    fn shape_of(&self, path: &str) -> Result<Vec<usize>> {
        let shape = self
            .dataset(path)?
            .shape()
            .map_err(|e| self.broken(path, e))?;
        Ok(shape.into_iter().map(|d| d as usize).collect())
    }

    /// An object the reader does not take, with why.
    fn refused(&self, object: &str, why: &str) -> Error {
        Error::H5ad {
            path: self.path.clone(),
            object: object.to_string(),
            reason: why.to_string(),
        }
    }

    /// An object the HDF5 library could not read.
    fn broken(&self, object: &str, e: hdf5_pure::Error) -> Error {
        self.refused(object, &format!("cannot be read: {}", one_line(e)))
    }
}

/// Filters decoded here: deflate (gzip), shuffle, Fletcher-32 and h5py's LZF.
const READABLE_FILTERS: [u16; 4] = [1, 2, 3, 32000];

/// The registered name of an HDF5 filter id (The HDF Group's filter registry).
fn filter_name(id: u16) -> &'static str {
    match id {
        4 => "szip",
        5 => "nbit",
        6 => "scale-offset",
        307 => "bzip2",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32015 => "zstd",
        32026 => "blosc2",
        _ => "unregistered here",
    }
}

/// A string attribute's text, whichever string encoding it was stored with.
fn text(value: &AttrValue) -> Option<String> {
    match value {
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => Some(s.clone()),
        AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => {
            Some(value.clone())
        }
        _ => None,
    }
}

fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}
