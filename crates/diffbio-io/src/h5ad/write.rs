//! A copy of an `.h5ad` file with one more (or a replaced) `obsm` entry.

use std::path::{Path, PathBuf};

use hdf5_pure::AttrValue;

use super::AnnData;
use crate::arrays::Embedding;
use crate::error::{Error, Result};

/// Writes a copy of `input` to `output` with `embedding` as `obsm[key]` (float32, with
/// AnnData's `encoding-type = array` attributes; an existing `obsm[key]` is replaced).
/// `input` is left untouched: the copy is edited under a temporary name beside `output`
/// and renamed into place once complete, so a failure leaves no half-written `output`.
pub fn write_with_obsm(
    input: &Path,
    output: &Path,
    key: &str,
    embedding: &Embedding,
) -> Result<()> {
    let source = AnnData::open(input)?;
    if embedding.n_cells() != source.n_obs() {
        return Err(source.refused(
            &format!("obsm/{key}"),
            &format!(
                "cannot hold an embedding of {} rows: the file has {} cells",
                embedding.n_cells(),
                source.n_obs()
            ),
        ));
    }
    let failed = |reason: String| Error::Unwritable {
        path: output.to_path_buf(),
        reason,
    };
    if same_file(input, output) {
        return Err(failed(
            "is the input file; write the result to a new file".into(),
        ));
    }
    let partial = partial_name(output);
    std::fs::copy(input, &partial).map_err(|e| failed(e.to_string()))?;
    let edited = add_obsm(&partial, key, embedding).map_err(|e| failed(super::one_line(e)));
    let renamed =
        edited.and_then(|()| std::fs::rename(&partial, output).map_err(|e| failed(e.to_string())));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    renamed
}

fn add_obsm(
    path: &Path,
    key: &str,
    embedding: &Embedding,
) -> std::result::Result<(), hdf5_pure::Error> {
    let file = hdf5_pure::File::open_rw(path)?;
    let name = format!("obsm/{key}");
    if file.dataset(&name).is_ok() || file.group(&name).is_ok() {
        file.root().delete(&name)?;
    }
    let shape = [embedding.n_cells() as u64, embedding.dims as u64];
    file.root().create_dataset(&name, |dataset| {
        dataset
            .with_f32_data(&embedding.values)
            .with_shape(&shape)
            .set_attr("encoding-type", AttrValue::VarLenString("array".into()))
            .set_attr("encoding-version", AttrValue::VarLenString("0.2.0".into()));
    })?;
    file.commit()?;
    file.close()
}

/// `OUT.h5ad` → `OUT.h5ad.partial` (same directory, so the rename stays on one disk).
fn partial_name(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    output.with_file_name(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
