//! Embeddings and labels from `.npy` or `.safetensors` files.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{check_is_file, Error, Result};

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
    check_is_file(&path)?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            let tensor = read_npy(&path)?;
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

/// A `.npy` file as a CPU tensor, in either byte order and in C or Fortran order (what
/// `np.save` writes for a transposed array), returned in C order. Floats keep their
/// type (f16, f32, f64), u8 and u32 theirs; the other integer types become i64.
fn read_npy(path: &Path) -> Result<Tensor> {
    use npyz::{DType as NpyType, Order, TypeChar};
    // One line: the header parser's messages draw the offending text over several.
    let bad = |reason: String| Error::Unreadable {
        path: path.to_path_buf(),
        format: ".npy",
        reason: reason.lines().next().unwrap_or_default().to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == Order::Fortran;
    let NpyType::Plain(ty) = npy.dtype() else {
        return Err(bad(
            "a structured array (a plain numeric array is needed)".into()
        ));
    };
    // The elements in storage order: C order of the shape, or of the reversed shape.
    let stored: Vec<usize> = if fortran {
        shape.iter().rev().copied().collect()
    } else {
        shape.clone()
    };
    let tensor = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 2) => elements::<half::f16, _>(npy, stored),
        (TypeChar::Float, 4) => elements::<f32, _>(npy, stored),
        (TypeChar::Float, 8) => elements::<f64, _>(npy, stored),
        (TypeChar::Uint, 1) => elements::<u8, _>(npy, stored),
        (TypeChar::Uint, 4) => elements::<u32, _>(npy, stored),
        (TypeChar::Int | TypeChar::Uint, 1 | 2 | 4 | 8) => {
            let codes = read_integers(npy, &ty).map_err(bad)?;
            Tensor::from_vec(codes, stored, &Device::Cpu).map_err(|e| e.to_string())
        }
        _ => return Err(bad(format!("unsupported dtype {ty}"))),
    }
    .map_err(bad)?;
    if !fortran || shape.len() < 2 {
        return Ok(tensor);
    }
    let axes: Vec<usize> = (0..shape.len()).rev().collect();
    tensor
        .permute(axes)
        .and_then(|t| t.contiguous())
        .map_err(|e| unreadable(path, ".npy", e))
}

/// The file's elements as `T` (either byte order) in a tensor of the storage-order shape.
fn elements<T, R>(npy: npyz::NpyFile<R>, stored: Vec<usize>) -> std::result::Result<Tensor, String>
where
    T: npyz::Deserialize + candle_core::WithDType,
    R: std::io::Read,
{
    let values = npy.into_vec::<T>().map_err(|e| e.to_string())?;
    Tensor::from_vec(values, stored, &Device::Cpu).map_err(|e| e.to_string())
}

/// Integers of any width and sign as i64 (a u64 above i64::MAX is refused).
fn read_integers<R: std::io::Read>(
    npy: npyz::NpyFile<R>,
    ty: &npyz::TypeStr,
) -> std::result::Result<Vec<i64>, String> {
    use npyz::TypeChar::{Int, Uint};
    fn widened<T, R>(npy: npyz::NpyFile<R>) -> std::result::Result<Vec<i64>, String>
    where
        T: npyz::Deserialize + Into<i64>,
        R: std::io::Read,
    {
        let values = npy.into_vec::<T>().map_err(|e| e.to_string())?;
        Ok(values.into_iter().map(Into::into).collect())
    }
    match (ty.type_char(), ty.size_field()) {
        (Int, 1) => widened::<i8, _>(npy),
        (Int, 2) => widened::<i16, _>(npy),
        (Int, 4) => widened::<i32, _>(npy),
        (Int, 8) => widened::<i64, _>(npy),
        (Uint, 2) => widened::<u16, _>(npy),
        (Uint, 8) => npy
            .into_vec::<u64>()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|v| i64::try_from(v).map_err(|_| format!("the integer {v} does not fit in i64")))
            .collect(),
        _ => Err(format!("unsupported dtype {ty}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An `.npy` file (format 1.0) with the header's `descr` (a Python literal), order and
    /// shape, then `data`.
    fn npy(
        dir: &Path,
        name: &str,
        descr: &str,
        fortran: bool,
        shape: &str,
        data: &[u8],
    ) -> PathBuf {
        let order = if fortran { "True" } else { "False" };
        let mut header =
            format!("{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    // The 2 × 3 matrix [[1, 2, 3], [4, 5, 6]] in C order, and its columns (Fortran order).
    const ROWS: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    const COLUMNS: [f64; 6] = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];

    #[test]
    fn fortran_order_and_big_endian_arrays_read_as_their_c_order_equivalents() {
        let dir = tempfile::tempdir().unwrap();
        let le: Vec<u8> = ROWS.iter().flat_map(|v| v.to_le_bytes()).collect();
        let be_columns: Vec<u8> = COLUMNS.iter().flat_map(|v| v.to_be_bytes()).collect();
        let f4_columns: Vec<u8> = COLUMNS
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect();
        let want = Embedding {
            values: ROWS.iter().map(|&v| v as f32).collect(),
            dims: 3,
        };
        for path in [
            npy(dir.path(), "c.npy", "'<f8'", false, "(2, 3)", &le),
            npy(dir.path(), "f_be.npy", "'>f8'", true, "(2, 3)", &be_columns),
            npy(dir.path(), "f.npy", "'<f4'", true, "(2, 3)", &f4_columns),
        ] {
            assert_eq!(read_embedding(&path).unwrap(), want, "{}", path.display());
        }
    }

    #[test]
    fn integer_codes_of_any_width_and_byte_order_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let codes = [2i64, 0, 1, 4_000_000_000];
        let cases = [
            (
                "be_i8.npy",
                "'>i8'",
                codes
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect::<Vec<u8>>(),
            ),
            (
                "be_u4.npy",
                "'>u4'",
                codes
                    .iter()
                    .flat_map(|&v| (v as u32).to_be_bytes())
                    .collect(),
            ),
            (
                "le_u8.npy",
                "'<u8'",
                codes
                    .iter()
                    .flat_map(|&v| (v as u64).to_le_bytes())
                    .collect(),
            ),
        ];
        for (name, descr, data) in cases {
            let path = npy(dir.path(), name, descr, false, "(4,)", &data);
            assert_eq!(
                read_labels(&path, 4, "batches").unwrap(),
                [2, 0, 1, 4_000_000_000],
                "{name}"
            );
        }
        let column = npy(
            dir.path(),
            "col.npy",
            "'<i2'",
            true,
            "(4, 1)",
            &[2, 0, 0, 0, 1, 0, 3, 0],
        );
        assert_eq!(read_labels(&column, 4, "batches").unwrap(), [2, 0, 1, 3]);
    }

    #[test]
    fn unsupported_arrays_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let structured = npy(
            dir.path(),
            "s.npy",
            "[('a', '<f4')]",
            false,
            "(1,)",
            &[0; 4],
        );
        let booleans = npy(dir.path(), "b.npy", "'|b1'", false, "(2,)", &[0, 1]);
        let too_big = npy(
            dir.path(),
            "u.npy",
            "'<u8'",
            false,
            "(1,)",
            &u64::MAX.to_le_bytes(),
        );
        for (path, says) in [
            (structured, "structured"),
            (booleans, "unsupported dtype"),
            (too_big, "does not fit"),
        ] {
            let message = read_labels(&path, 1, "batches").unwrap_err().to_string();
            assert!(
                message.contains(says) && !message.contains('\n'),
                "{message}"
            );
        }
    }
}
