//! `diffbio score`: read the inputs, compute every metric, render a table or JSON.

use std::path::PathBuf;

use diffbio_metrics::{benchmark, BenchmarkConfig, PreIntegration, Scores};

use crate::error::{Error, Result};
use crate::input::{read_embedding, read_labels};

/// What to score; the fields mirror the command's options.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    pub embedding: PathBuf,
    pub batch: PathBuf,
    pub labels: Option<PathBuf>,
    /// The embedding before integration, for `pcr_comparison`.
    pub pre: Option<PathBuf>,
    pub config: BenchmarkConfig,
}

/// Reads the files of `request` and computes every metric they allow.
pub fn score(request: &ScoreRequest) -> Result<Scores> {
    let embedding = read_embedding(&request.embedding)?;
    let n = embedding.n_cells();
    let batch = read_labels(&request.batch, n, "batch labels")?;
    let labels = match &request.labels {
        Some(path) => Some(read_labels(path, n, "cell-type labels")?),
        None => None,
    };
    let pre = match &request.pre {
        Some(path) => {
            let pre = read_embedding(path)?;
            if pre.n_cells() != n {
                return Err(Error::Shape {
                    path: path.clone(),
                    what: "the pre-integration embedding",
                    expected: format!("[{n}, dims] (one row per cell of the embedding)"),
                    got: vec![pre.n_cells(), pre.dims],
                });
            }
            Some(pre)
        }
        None => None,
    };
    Ok(benchmark(
        &embedding.values,
        embedding.dims,
        &batch,
        labels.as_deref(),
        pre.as_ref().map(|p| PreIntegration {
            values: &p.values,
            dims: p.dims,
        }),
        request.config,
    )?)
}

/// One JSON object whose keys are the computed metrics' snake_case names.
pub fn to_json(scores: &Scores) -> String {
    let object: serde_json::Map<String, serde_json::Value> = scores
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.into()))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// One `name  value` line per computed metric.
pub fn to_table(scores: &Scores) -> String {
    scores
        .entries()
        .into_iter()
        .map(|(name, value)| format!("{name:<20}{value:>10.6}\n"))
        .collect()
}
