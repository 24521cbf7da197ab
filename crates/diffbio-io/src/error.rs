//! Why a file could not be read or written.

use std::path::PathBuf;

/// A file that could not be read or written or does not hold what it must, or data the
/// metrics refuse (an `obsp` graph, or the embeddings and labels a caller scores: the
/// `diffbio` command reports both kinds as this one type).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },

    #[error("{}: is a directory, not a file", path.display())]
    NotAFile { path: PathBuf },

    #[error("{}: cannot read it as {format}: {reason}", path.display())]
    Unreadable {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },

    #[error("{}: unsupported file type (expected .npy, .safetensors or .h5ad)", path.display())]
    UnknownFormat { path: PathBuf },

    #[error("{}: holds tensors {names:?}; name one as FILE.safetensors:NAME", path.display())]
    AmbiguousTensor { path: PathBuf, names: Vec<String> },

    #[error("{}: has no tensor named `{name}` (it holds {names:?})", path.display())]
    MissingTensor {
        path: PathBuf,
        name: String,
        names: Vec<String>,
    },

    #[error("{}: {what} must have shape {expected}, got {got:?}", path.display())]
    Shape {
        path: PathBuf,
        what: &'static str,
        expected: String,
        got: Vec<usize>,
    },

    #[error("{}: {what} must be {expected}, got {got}", path.display())]
    DType {
        path: PathBuf,
        what: &'static str,
        expected: &'static str,
        got: String,
    },

    #[error("{}: {what} holds the negative label {value} at index {index}", path.display())]
    NegativeLabel {
        path: PathBuf,
        what: &'static str,
        value: i64,
        index: usize,
    },

    #[error("{}: {object} {reason}", path.display())]
    H5ad {
        path: PathBuf,
        object: String,
        reason: String,
    },

    #[error("{}: {group} has no `{key}` (it holds {available:?})", path.display())]
    MissingKey {
        path: PathBuf,
        group: String,
        key: String,
        available: Vec<String>,
    },

    #[error(
        "{}: obs['{column}'] has no value for {count} cells (category code -1 or masked); \
         drop or fill them first",
        path.display()
    )]
    MissingValues {
        path: PathBuf,
        column: String,
        count: usize,
    },

    #[error("{}: cannot write it: {reason}", path.display())]
    Unwritable { path: PathBuf, reason: String },

    #[error(transparent)]
    Metric(#[from] diffbio_metrics::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// `Ok` when `path` is a file (or a link to one); else why not, in words that say which.
pub(crate) fn check_is_file(path: &std::path::Path) -> Result<()> {
    let path_buf = || path.to_path_buf();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(Error::NotAFile { path: path_buf() }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::NotFound { path: path_buf() })
        }
        Err(e) => Err(Error::Unreadable {
            path: path_buf(),
            format: "a file",
            reason: e.to_string(),
        }),
    }
}
