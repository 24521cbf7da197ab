//! Label columns of `obs`: categorical, string, nullable and integer columns.

use hdf5_pure::DType;

use super::{text, AnnData};
use crate::error::{Error, Result};

/// A column of `obs` as labels: `codes[i]` indexes `names` (0..names.len(), every name
/// used or not, in the column's own category order).
///
/// Read: categoricals (their codes and categories, strings or numbers), string arrays,
/// nullable string/integer/boolean arrays, and integer or boolean arrays; string and number
/// columns get their distinct values sorted as names (as pandas' `astype("category")`
/// orders them). A missing value (code −1, a masked entry) is an error naming the column
/// and how many cells lack a value; a float column is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// One code per cell.
    pub codes: Vec<u32>,
    /// The name of each code.
    pub names: Vec<String>,
}

pub(super) fn read(file: &AnnData, column: &str) -> Result<Labels> {
    let path = format!("obs/{column}");
    if file.file.dataset(&path).is_ok() {
        return values(file, &path);
    }
    let kind = file
        .encoding_of_group(&path)
        .ok_or_else(|| file.missing_or_damaged("obs", column, columns(file)))?;
    match kind.as_str() {
        "categorical" => categorical(file, &path, column),
        "nullable-string-array" | "nullable-integer" | "nullable-boolean" => {
            let mask = file
                .dataset(&format!("{path}/mask"))?
                .read_u8()
                .map_err(|e| file.broken(&path, e))?;
            let masked = mask.iter().filter(|&&m| m != 0).count();
            if masked > 0 {
                return Err(missing_values(file, column, masked));
            }
            values(file, &format!("{path}/values"))
        }
        other => Err(file.refused(&path, &format!("is a {other}, not a label column"))),
    }
}

/// A categorical: its codes (−1 = missing) and categories.
fn categorical(file: &AnnData, path: &str, column: &str) -> Result<Labels> {
    let codes_path = format!("{path}/codes");
    let codes = file
        .dataset(&codes_path)?
        .read_i64()
        .map_err(|e| file.broken(&codes_path, e))?;
    check_length(file, &codes_path, codes.len())?;
    let names = strings_or_numbers(file, &format!("{path}/categories"))?;
    let missing = codes.iter().filter(|&&c| c < 0).count();
    if missing > 0 {
        return Err(missing_values(file, column, missing));
    }
    let codes = codes
        .into_iter()
        .map(|code| match u32::try_from(code) {
            Ok(code) if (code as usize) < names.len() => Ok(code),
            _ => Err(file.refused(
                &codes_path,
                &format!(
                    "holds the code {code}, but there are {} categories",
                    names.len()
                ),
            )),
        })
        .collect::<Result<_>>()?;
    Ok(Labels { codes, names })
}

/// A plain column (strings, integers or booleans): its distinct values become the names.
fn values(file: &AnnData, path: &str) -> Result<Labels> {
    let dataset = file.dataset(path)?;
    let dtype = dataset.dtype().map_err(|e| file.broken(path, e))?;
    let labels = match dtype {
        DType::String | DType::VariableLengthString => {
            let strings = dataset.read_string().map_err(|e| file.broken(path, e))?;
            factorize(strings)
        }
        DType::Enum(names) if names == ["FALSE", "TRUE"] => {
            let flags = dataset.read_u8().map_err(|e| file.broken(path, e))?;
            factorize(flags.into_iter().map(|f| f != 0).collect())
        }
        DType::I8 | DType::I16 | DType::I32 | DType::I64 | DType::U8 | DType::U16 | DType::U32 => {
            factorize(dataset.read_i64().map_err(|e| file.broken(path, e))?)
        }
        DType::U64 => factorize(dataset.read_u64().map_err(|e| file.broken(path, e))?),
        other => {
            return Err(file.refused(
                path,
                &format!(
                    "holds {other} values; a batch or label column must be categorical, \
                     string, integer or boolean"
                ),
            ))
        }
    };
    check_length(file, path, labels.codes.len())?;
    Ok(labels)
}

/// Categories, as text whatever their type.
fn strings_or_numbers(file: &AnnData, path: &str) -> Result<Vec<String>> {
    let dataset = file.dataset(path)?;
    let read = match dataset.dtype().map_err(|e| file.broken(path, e))? {
        DType::String | DType::VariableLengthString => dataset.read_string(),
        DType::F32 | DType::F64 => dataset
            .read_f64()
            .map(|v| v.iter().map(f64::to_string).collect()),
        _ => dataset
            .read_i64()
            .map(|v| v.iter().map(i64::to_string).collect()),
    };
    read.map_err(|e| file.broken(path, e))
}

/// Codes into the sorted distinct values.
fn factorize<T: Ord + Clone + ToString>(values: Vec<T>) -> Labels {
    let mut distinct = values.clone();
    distinct.sort();
    distinct.dedup();
    let codes = values
        .iter()
        .map(|v| distinct.binary_search(v).expect("a value of the column") as u32)
        .collect();
    Labels {
        codes,
        names: distinct.iter().map(ToString::to_string).collect(),
    }
}

fn check_length(file: &AnnData, path: &str, len: usize) -> Result<()> {
    if len == file.n_obs {
        return Ok(());
    }
    Err(file.refused(path, &format!("has {len} values for {} cells", file.n_obs)))
}

fn missing_values(file: &AnnData, column: &str, count: usize) -> Error {
    Error::MissingValues {
        path: file.path.clone(),
        column: column.to_string(),
        count,
    }
}

/// The columns of `obs`, in the data frame's order.
fn columns(file: &AnnData) -> Vec<String> {
    let order = file
        .attrs_of_group("obs")
        .ok()
        .and_then(|attrs| match attrs.get("column-order") {
            Some(hdf5_pure::AttrValue::VarLenStringArray(names))
            | Some(hdf5_pure::AttrValue::StringArray(names)) => Some(names.clone()),
            Some(single) => text(single).map(|name| vec![name]),
            None => None,
        });
    order.unwrap_or_else(|| file.members("obs"))
}
