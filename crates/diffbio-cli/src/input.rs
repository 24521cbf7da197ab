//! Embeddings and labels from `.npy` or `.safetensors` files.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// A row-major `[n_cells × dims]` embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub values: Vec<f32>,
    pub dims: usize,
}

impl Embedding {
    pub fn n_cells(&self) -> usize {
        self.values.len() / self.dims
    }
}

/// Reads a float (f16, bf16, f32, f64) matrix `[cells, dims]` from `.npy`, or from
/// `.safetensors` (its only tensor, or `FILE.safetensors:NAME`); values are kept as f32.
pub fn read_embedding(path: &Path) -> Result<Embedding> {
    let (path, tensor) = read_tensor(path)?;
    let &[n, dims] = tensor.dims() else {
        return Err(Error::Shape {
            path,
            what: "the embedding",
            expected: "[cells, dims]".into(),
            got: tensor.dims().to_vec(),
        });
    };
    if !tensor.dtype().is_float() {
        return Err(Error::DType {
            path,
            what: "the embedding",
            expected: "a float array (f16, bf16, f32 or f64)",
            got: format!("{:?}", tensor.dtype()),
        });
    }
    if n == 0 || dims == 0 {
        return Err(Error::Shape {
            path,
            what: "the embedding",
            expected: "[cells, dims] with at least one cell and one dimension".into(),
            got: vec![n, dims],
        });
    }
    let values = tensor
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .map_err(|e| unreadable(&path, "an embedding", e))?;
    Ok(Embedding { values, dims })
}

/// Reads integer codes (u8, u32, i16, i32, i64), one per cell (`[n_cells]` or
/// `[n_cells, 1]`), as non-negative `u32` labels; `what` names them in errors.
pub fn read_labels(path: &Path, n_cells: usize, what: &'static str) -> Result<Vec<u32>> {
    let (path, tensor) = read_tensor(path)?;
    let expected = || format!("[{n_cells}] (one per cell of the embedding)");
    let flat = match tensor.dims() {
        [n] | [n, 1] if *n == n_cells => tensor.flatten_all(),
        got => {
            return Err(Error::Shape {
                path,
                what,
                expected: expected(),
                got: got.to_vec(),
            })
        }
    };
    if tensor.dtype().is_float() {
        return Err(Error::DType {
            path,
            what,
            expected: "integer codes (u8, u32, i16, i32 or i64)",
            got: format!("{:?}", tensor.dtype()),
        });
    }
    let codes = flat
        .and_then(|t| t.to_dtype(DType::I64)?.to_vec1::<i64>())
        .map_err(|e| unreadable(&path, "labels", e))?;
    codes
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            u32::try_from(value).map_err(|_| Error::NegativeLabel {
                path: path.clone(),
                what,
                value,
                index,
            })
        })
        .collect()
}

/// The tensor a path names, and the file it came from.
fn read_tensor(spec: &Path) -> Result<(PathBuf, Tensor)> {
    let (path, name) = split_tensor_name(spec);
    if !path.is_file() {
        return Err(Error::NotFound { path });
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            let tensor = Tensor::read_npy(&path).map_err(|e| unreadable(&path, ".npy", e))?;
            Ok((path, tensor))
        }
        Some("safetensors") => {
            let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu)
                .map_err(|e| unreadable(&path, ".safetensors", e))?;
            let mut names: Vec<String> = tensors.keys().cloned().collect();
            names.sort();
            let name = match name {
                Some(name) => name,
                None if names.len() == 1 => names[0].clone(),
                None => return Err(Error::AmbiguousTensor { path, names }),
            };
            match tensors.remove(&name) {
                Some(tensor) => Ok((path, tensor)),
                None => Err(Error::MissingTensor { path, name, names }),
            }
        }
        _ => Err(Error::UnknownFormat { path }),
    }
}

/// `FILE.safetensors:NAME` → (`FILE.safetensors`, `NAME`) unless the whole path exists.
fn split_tensor_name(spec: &Path) -> (PathBuf, Option<String>) {
    let text = spec.to_string_lossy();
    match text.rsplit_once(':') {
        Some((file, name)) if !spec.exists() && file.ends_with(".safetensors") => {
            (PathBuf::from(file), Some(name.to_string()))
        }
        _ => (spec.to_path_buf(), None),
    }
}

fn unreadable(path: &Path, format: &'static str, e: candle_core::Error) -> Error {
    Error::Unreadable {
        path: path.to_path_buf(),
        format,
        reason: e.to_string(),
    }
}
