//! scanpy's neighbour graph in `obsp`: a CSR matrix of distances, self excluded.

use diffbio_metrics::KnnGraph;
use hdf5_pure::DType;

use super::AnnData;
use crate::error::{Error, Result};

/// `obsp[key]` as a kNN graph, and the obsm key it was computed on when the file records
/// it (scanpy's `uns[...]['params']['use_rep']` beside `distances_key = key`).
#[derive(Debug, Clone)]
pub struct ObspGraph {
    /// The obsp key.
    pub key: String,
    /// The neighbours.
    pub graph: KnnGraph,
    /// The representation it is of, if recorded.
    pub use_rep: Option<String>,
}

/// `obsp[key]` as a kNN graph: a `csr_matrix` of shape `[cells, cells]` whose row `i`
/// holds cell `i`'s neighbours and their Euclidean distances (what `sc.pp.neighbors`
/// stores as `obsp['distances']`). Rows are cut to the fewest neighbours any cell has
/// ([`KnnGraph::from_neighbours`]).
pub(super) fn read(file: &AnnData, key: &str) -> Result<ObspGraph> {
    let path = format!("obsp/{key}");
    match file.encoding_of_group(&path).as_deref() {
        Some("csr_matrix") => {}
        Some(other) => {
            return Err(file.refused(&path, &format!("is a {other}; a csr_matrix is needed")))
        }
        None if file.file.dataset(&path).is_ok() => {
            return Err(file.refused(&path, "is a dense array; a csr_matrix is needed"))
        }
        None => {
            return Err(Error::MissingKey {
                path: file.path.clone(),
                group: "obsp".into(),
                key: key.to_string(),
                available: file.members("obsp"),
            })
        }
    }
    let n = file.n_obs;
    let indices = integers(file, &format!("{path}/indices"))?;
    let indptr = integers(file, &format!("{path}/indptr"))?;
    let data_path = format!("{path}/data");
    let data = file
        .dataset(&data_path)?
        .read_f64()
        .map_err(|e| file.broken(&data_path, e))?;
    let well_formed = indptr.len() == n + 1
        && indptr.first() == Some(&0)
        && indptr.windows(2).all(|w| w[0] <= w[1])
        && indptr[n] == indices.len()
        && indices.len() == data.len();
    if !well_formed {
        return Err(file.refused(
            &path,
            &format!("is not a well-formed CSR matrix with {n} rows"),
        ));
    }
    let rows = indptr
        .windows(2)
        .map(|w| {
            (w[0]..w[1])
                .map(|e| (indices[e], data[e]))
                .collect::<Vec<_>>()
        })
        .collect();
    let graph = KnnGraph::from_neighbours(rows).map_err(|e| file.refused(&path, &e.to_string()))?;
    Ok(ObspGraph {
        key: key.to_string(),
        graph,
        use_rep: use_rep(file, key),
    })
}

/// `uns[g]['params']['use_rep']` of the `uns` entry whose `distances_key` is `key`.
fn use_rep(file: &AnnData, key: &str) -> Option<String> {
    let scalar = |path: &str| {
        let strings = file.file.dataset(path).ok()?.read_string().ok()?;
        strings.into_iter().next()
    };
    file.members("uns")
        .into_iter()
        .find(|g| scalar(&format!("uns/{g}/distances_key")).as_deref() == Some(key))
        .and_then(|g| scalar(&format!("uns/{g}/params/use_rep")))
}

/// A dataset of non-negative integers as indices.
fn integers(file: &AnnData, path: &str) -> Result<Vec<usize>> {
    let dataset = file.dataset(path)?;
    match dataset.dtype().map_err(|e| file.broken(path, e))? {
        DType::I32 | DType::I64 | DType::U32 | DType::U64 => {}
        other => return Err(file.refused(path, &format!("holds {other}, not integers"))),
    }
    let values = dataset.read_i64().map_err(|e| file.broken(path, e))?;
    values
        .into_iter()
        .map(|v| usize::try_from(v).map_err(|_| file.refused(path, "holds a negative index")))
        .collect()
}
