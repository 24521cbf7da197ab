//! `diffbio score`: read the inputs, compute every metric, render a table or JSON.

use std::path::PathBuf;

use diffbio_metrics::{benchmark_with_progress, BenchmarkConfig, PreIntegration, Progress, Scores};

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

/// Reads the files of `request` and computes every metric they allow, reporting the
/// stages to `progress`.
pub fn score(request: &ScoreRequest, progress: &dyn Progress) -> Result<Scores> {
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
    let pre = pre.as_ref().map(|p| PreIntegration {
        values: &p.values,
        dims: p.dims,
    });
    let inputs = (
        &embedding.values[..],
        embedding.dims,
        &batch[..],
        labels.as_deref(),
        pre,
    );
    Ok(benchmark_with_progress(inputs, request.config, progress)?)
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

/// Progress drawn on stderr: a bar per stage with its count, rate and time left. Nothing is
/// drawn when stderr is not a terminal (indicatif's stderr target hides itself there).
pub struct Bars {
    current: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            current: std::sync::Mutex::new(None),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Bars {
    fn stage(&self, name: &'static str, total: u64) {
        let style = indicatif::ProgressStyle::with_template(
            "{msg:40} {bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
        )
        .expect("a valid template");
        let bar = indicatif::ProgressBar::new(total)
            .with_style(style)
            .with_message(name);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = current.replace(bar) {
            done.finish();
        }
    }

    fn advance(&self, units: u64) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = current.as_ref() {
            bar.inc(units);
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(bar) = self.current.get_mut().ok().and_then(|b| b.take()) {
            bar.finish_and_clear();
        }
    }
}
