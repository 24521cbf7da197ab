//! `diffbio score`: read the inputs, compute every metric for every embedding, render the
//! results as scib-metrics' table (text, CSV, TSV) or JSON.

use std::path::{Path, PathBuf};

use diffbio_metrics::{
    benchmark_graph, benchmark_with_graph, benchmark_with_progress, min_max_scale, BenchmarkConfig,
    BenchmarkInputs, Metric, PreIntegration, Progress, Scores, SkipReason, METRICS,
};

use crate::error::{Error, Result};
use crate::h5ad::{AnnData, ObspGraph};
use crate::input::{read_embedding, read_labels, Embedding};
use crate::timings::StageTimer;

/// Where the embeddings and labels come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One embedding and its integer codes in `.npy`/`.safetensors` files.
    Arrays {
        embedding: PathBuf,
        batch: PathBuf,
        labels: Option<PathBuf>,
        /// The embedding before integration, for `pcr_comparison`.
        pre: Option<PathBuf>,
    },
    /// Embeddings in `obsm` of an AnnData file and label columns of its `obs`.
    H5ad {
        file: PathBuf,
        obsm: Vec<String>,
        batch_key: String,
        label_key: Option<String>,
        pre_obsm: Option<String>,
        /// Take the neighbours from `obsp[key]` instead of the exact kNN graph.
        knn_obsp: Option<String>,
        /// Score `obsp[key]` alone, as a row named `name`: the output of an integration
        /// that gives a graph and no embedding (BBKNN).
        graph_obsp: Option<GraphRow>,
    },
}

/// A neighbour graph scored alone ([`Source::H5ad`]'s `graph_obsp`).
#[derive(Debug, Clone)]
pub struct GraphRow {
    /// The obsp key of the graph.
    pub key: String,
    /// The row's name in the report.
    pub name: String,
}

/// What to score; the fields mirror the command's options.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    pub source: Source,
    pub config: BenchmarkConfig,
}

/// One embedding's scores, and where its neighbourhoods came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The embedding's name (its obsm key, or its file's stem).
    pub name: String,
    pub scores: Scores,
    /// The neighbour graph used, in words.
    pub neighbours: String,
    /// Each stage's name and wall time in seconds, in the order they ran (the first row's
    /// begin with reading the inputs, shared by every row).
    pub timings: Vec<(&'static str, f64)>,
}

/// The scores of every embedding, in the order asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rows: Vec<Row>,
    /// The name of each cell-type code (the categories of an `.h5ad` column; empty for
    /// arrays, whose codes name themselves), for the per-label results.
    pub label_names: Vec<String>,
    /// Whether the metrics were min-max scaled across the embeddings.
    pub scaled: bool,
    /// Whether the outputs show each row's stage times ([`Row::timings`]).
    pub show_timings: bool,
}

impl Report {
    /// scib-metrics' `get_results(min_max_scale=True)`: see [`min_max_scale`].
    pub fn min_max_scaled(mut self) -> Self {
        let scores: Vec<Scores> = self.rows.iter().map(|r| r.scores.clone()).collect();
        for (row, scaled) in self.rows.iter_mut().zip(min_max_scale(&scores)) {
            row.scores = scaled;
        }
        self.scaled = true;
        self
    }
}

/// Reads the inputs of `request` and computes every metric they allow for each embedding,
/// reporting the stages to `progress`.
pub fn score(request: &ScoreRequest, progress: &dyn Progress) -> Result<Report> {
    let reading = StageTimer::new(progress);
    reading.stage("reading the inputs", 1);
    let read = |reading: StageTimer<'_>| {
        progress.advance(1);
        reading.finish()
    };
    let (mut rows, label_names, read_time) = match &request.source {
        Source::Arrays {
            embedding,
            batch,
            labels,
            pre,
        } => {
            let name = embedding
                .file_stem()
                .map_or("embedding".into(), |s| s.to_string_lossy().into_owned());
            let embedding = read_embedding(embedding)?;
            let n = embedding.n_cells();
            let batch = read_labels(batch, n, "batch labels")?;
            let labels = match labels {
                Some(path) => Some(read_labels(path, n, "cell-type labels")?),
                None => None,
            };
            let pre = match pre {
                Some(path) => Some(read_pre(path, n)?),
                None => None,
            };
            let read_time = read(reading);
            let inputs = inputs(&embedding, &batch, labels.as_deref(), pre.as_ref());
            let (scores, timings) = timed(progress, |p| {
                benchmark_with_progress(inputs, request.config, p)
            })?;
            let row = Row {
                name,
                scores,
                neighbours: EXACT.into(),
                timings,
            };
            // A code names itself: no names to keep (sample ids up to 4·10⁹ allowed).
            (vec![row], Vec::new(), read_time)
        }
        Source::H5ad {
            file,
            obsm,
            batch_key,
            label_key,
            pre_obsm,
            knn_obsp,
            graph_obsp,
        } => {
            let file = AnnData::open(file)?;
            let batch = file.obs(batch_key)?.codes;
            let (labels, label_names) = match label_key {
                Some(key) => {
                    let labels = file.obs(key)?;
                    (Some(labels.codes), labels.names)
                }
                None => (None, Vec::new()),
            };
            let pre = pre_obsm.as_ref().map(|key| file.obsm(key)).transpose()?;
            let graph = knn_obsp.as_ref().map(|key| file.obsp(key)).transpose()?;
            if let Some(graph) = &graph {
                check_graph_is_of(graph, obsm, &file)?;
            }
            let read_time = read(reading);
            let mut rows = Vec::new();
            for key in obsm {
                let embedding = file.obsm(key)?;
                let inputs = inputs(&embedding, &batch, labels.as_deref(), pre.as_ref());
                let given = graph.as_ref().filter(|g| is_of(g, key, obsm));
                let (scores, timings) = timed(progress, |p| match given {
                    Some(given) => benchmark_with_graph(inputs, &given.graph, request.config, p),
                    None => benchmark_with_progress(inputs, request.config, p),
                })?;
                let row = Row {
                    name: key.clone(),
                    scores,
                    neighbours: given.map_or_else(|| exact_words(graph.as_ref()), obsp_words),
                    timings,
                };
                rows.push(row);
            }
            if let Some(GraphRow { key, name }) = graph_obsp {
                let given = file.obsp(key)?;
                let (scores, timings) = timed(progress, |p| {
                    benchmark_graph(&given.graph, &batch, labels.as_deref(), request.config, p)
                })?;
                rows.push(Row {
                    name: name.clone(),
                    scores,
                    neighbours: format!(
                        "obsp['{key}'] of the file, scored alone (no embedding), {} neighbours \
                         per cell (the fewest any cell has)",
                        given.graph.k()
                    ),
                    timings,
                });
            }
            (rows, label_names, read_time)
        }
    };
    if let Some(first) = rows.first_mut() {
        first.timings.splice(0..0, read_time);
    }
    Ok(Report {
        rows,
        label_names,
        scaled: false,
        show_timings: false,
    })
}

/// `compute`'s result and the wall time of each stage it reported (passed on to `progress`).
fn timed<R>(
    progress: &dyn Progress,
    compute: impl FnOnce(&dyn Progress) -> diffbio_metrics::Result<R>,
) -> Result<(R, Vec<(&'static str, f64)>)> {
    let timer = StageTimer::new(progress);
    let result = compute(&timer)?;
    Ok((result, timer.finish()))
}

/// Whether the graph serves embedding `key`: the one it records as computed on, or the
/// only embedding scored when it records none.
fn is_of(graph: &ObspGraph, key: &str, scored: &[String]) -> bool {
    match &graph.use_rep {
        Some(rep) => rep == key,
        None => scored.len() == 1,
    }
}

/// A graph is used only for the embedding it was computed on: refused when that is none
/// of the embeddings scored, or unknown while several are.
fn check_graph_is_of(graph: &ObspGraph, scored: &[String], file: &AnnData) -> Result<()> {
    if scored.iter().any(|key| is_of(graph, key, scored)) {
        return Ok(());
    }
    let reason = match &graph.use_rep {
        Some(rep) => format!(
            "is a graph of obsm['{rep}'] (uns[...]['params']['use_rep']), which is not \
             among the embeddings scored: its neighbours would be the wrong ones"
        ),
        None => "does not record the representation it was computed on \
                 (uns[...]['params']['use_rep']); with --knn-obsp, score one embedding"
            .into(),
    };
    Err(Error::H5ad {
        path: file.path().to_path_buf(),
        object: format!("obsp/{}", graph.key),
        reason,
    })
}

const EXACT: &str = "exact kNN graph (all pairs)";

/// The exact graph, and why a given graph was not used (it is of another embedding).
fn exact_words(given: Option<&ObspGraph>) -> String {
    match given.and_then(|g| Some((&g.key, g.use_rep.as_ref()?))) {
        Some((key, rep)) => format!("{EXACT}: obsp['{key}'] is of {rep}"),
        None => EXACT.into(),
    }
}

fn obsp_words(given: &ObspGraph) -> String {
    let of = match &given.use_rep {
        Some(rep) => format!("computed on {rep}"),
        None => "the file does not say on which representation".into(),
    };
    format!(
        "obsp['{}'] of the file ({of}), {} neighbours per cell (the fewest any cell has)",
        given.key,
        given.graph.k()
    )
}

fn read_pre(path: &Path, n: usize) -> Result<Embedding> {
    let pre = read_embedding(path)?;
    if pre.n_cells() != n {
        return Err(Error::Shape {
            path: path.to_path_buf(),
            what: "the pre-integration embedding",
            expected: format!("[{n}, dims] (one row per cell of the embedding)"),
            got: vec![pre.n_cells(), pre.dims],
        });
    }
    Ok(pre)
}

fn inputs<'a>(
    embedding: &'a Embedding,
    batch: &'a [u32],
    labels: Option<&'a [u32]>,
    pre: Option<&'a Embedding>,
) -> BenchmarkInputs<'a, f32> {
    let pre = pre.map(|p| PreIntegration {
        values: &p.values,
        dims: p.dims,
    });
    (&embedding.values[..], embedding.dims, batch, labels, pre)
}

/// The metric columns any embedding of the report has, in scib-metrics' order.
fn columns(report: &Report) -> Vec<&'static Metric> {
    METRICS
        .iter()
        .filter(|m| report.rows.iter().any(|r| r.scores.get(m.name).is_some()))
        .collect()
}

/// An object keyed by embedding name; each holds its computed metrics by snake_case name,
/// `kbet_per_label` (each cell type by name: its cells and acceptance rate, `null` when
/// skipped), `neighbours` (the graph used), `skipped` (when any: each left-out metric's
/// `metric` and `reason`, with `needs` and `has` when the graph had too few neighbours) and
/// `min_max_scaled: true` when scaled, and `timings` (stage → wall seconds) when shown.
pub fn to_json(report: &Report) -> String {
    use serde_json::{json, Map, Value};
    let rows: Map<String, Value> = report
        .rows
        .iter()
        .map(|r| {
            let mut row: Map<String, Value> = r
                .scores
                .entries()
                .into_iter()
                .map(|(metric, value)| (metric.to_string(), value.into()))
                .collect();
            if !r.scores.kbet_per_label.is_empty() {
                let per_label = r.scores.kbet_per_label.iter().map(|l| {
                    let name = report.label_names.get(l.label as usize);
                    let name = name.cloned().unwrap_or_else(|| l.label.to_string());
                    (name, json!({"cells": l.cells, "acceptance": l.acceptance}))
                });
                row.insert(
                    "kbet_per_label".into(),
                    per_label.collect::<Map<_, _>>().into(),
                );
            }
            row.insert("neighbours".into(), r.neighbours.clone().into());
            if !r.scores.skipped.is_empty() {
                let skipped = r.scores.skipped.iter().map(|s| {
                    let mut entry = json!({"metric": s.metric, "reason": s.reason.to_string()});
                    if let SkipReason::TooFewNeighbours { needs, has } = s.reason {
                        entry["needs"] = needs.into();
                        entry["has"] = has.into();
                    }
                    entry
                });
                row.insert("skipped".into(), skipped.collect());
            }
            if report.show_timings {
                let timings = r
                    .timings
                    .iter()
                    .map(|&(stage, t)| (stage.to_string(), t.into()));
                row.insert("timings".into(), timings.collect::<Map<_, _>>().into());
            }
            if report.scaled {
                row.insert("min_max_scaled".into(), true.into());
            }
            (r.name.clone(), Value::Object(row))
        })
        .collect();
    Value::Object(rows).to_string()
}

/// scib-metrics' results table: one row per embedding, a column per metric (its title),
/// values to 4 decimals, `-` where not computed; then the neighbour graph used.
pub fn to_table(report: &Report) -> String {
    let columns = columns(report);
    let name_width = report
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .chain([9])
        .max()
        .unwrap_or(9);
    let mut out = format!("{:<name_width$}", "Embedding");
    for metric in &columns {
        out += &format!("  {:>w$}", metric.title, w = metric.title.len().max(6));
    }
    out.push('\n');
    for row in &report.rows {
        out += &format!("{:<name_width$}", row.name);
        for metric in &columns {
            let cell = row
                .scores
                .get(metric.name)
                .map_or("-".into(), |v| format!("{v:.4}"));
            out += &format!("  {cell:>w$}", w = metric.title.len().max(6));
        }
        out.push('\n');
    }
    out.push('\n');
    out += &notes(report);
    out
}

/// One header line of the metric titles, then a row per embedding, fields separated by
/// `separator` (values in full precision, empty where not computed).
pub fn to_delimited(report: &Report, separator: char) -> String {
    let columns = columns(report);
    let quote = |field: &str| {
        if field.contains([separator, '"', '\n']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_string()
        }
    };
    let mut lines = vec![std::iter::once("Embedding")
        .chain(columns.iter().map(|m| m.title))
        .map(quote)
        .collect::<Vec<_>>()
        .join(&separator.to_string())];
    for row in &report.rows {
        let value = |m: &&Metric| {
            row.scores
                .get(m.name)
                .map_or(String::new(), |v| v.to_string())
        };
        let fields = std::iter::once(quote(&row.name)).chain(columns.iter().map(value));
        lines.push(fields.collect::<Vec<_>>().join(&separator.to_string()));
    }
    lines.join("\n") + "\n"
}

/// Each cell's LISI, tab-separated: a header (`cell`, then `EMBEDDING:batch_lisi` and
/// `EMBEDDING:label_lisi` for every embedding that has them), then one line per cell in
/// input order (`cell` = its row, from 0): what iLISI and cLISI summarise, per cell.
pub fn to_per_cell_tsv(report: &Report) -> String {
    let columns: Vec<(String, &[f64])> = (report.rows.iter())
        .flat_map(|row| {
            [
                ("batch_lisi", &row.scores.batch_lisi_per_cell),
                ("label_lisi", &row.scores.label_lisi_per_cell),
            ]
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .map(|(what, values)| (format!("{}:{what}", row.name), values.as_slice()))
        })
        .collect();
    let n = columns.first().map_or(0, |(_, values)| values.len());
    let mut out = std::iter::once("cell")
        .chain(columns.iter().map(|(name, _)| name.as_str()))
        .collect::<Vec<_>>()
        .join("\t");
    out.push('\n');
    for cell in 0..n {
        out += &cell.to_string();
        for (_, values) in &columns {
            out += &format!("\t{}", values[cell]);
        }
        out.push('\n');
    }
    out
}

/// The lines under the table: the graphs used, what they left out, the scaling.
pub fn notes(report: &Report) -> String {
    let mut notes = String::new();
    let shared = report
        .rows
        .windows(2)
        .all(|w| w[0].neighbours == w[1].neighbours);
    for (i, row) in report.rows.iter().enumerate() {
        if !shared {
            notes += &format!("neighbours of {}: {}\n", row.name, row.neighbours);
        } else if i == 0 {
            notes += &format!("neighbours: {}\n", row.neighbours);
        }
        for skipped in &row.scores.skipped {
            notes += &format!("{}: skipped {skipped}\n", row.name);
        }
    }
    if report.scaled {
        notes += "min-max scaled across the embeddings (scib-metrics' min_max_scale=True)\n";
    }
    notes
}

/// Each row's stage times, a line per stage and the total, when [`Report::show_timings`].
pub fn timings_table(report: &Report) -> String {
    if !report.show_timings {
        return String::new();
    }
    let width = (report.rows.iter().flat_map(|r| &r.timings))
        .map(|(stage, _)| stage.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for row in &report.rows {
        out += &format!("stage times of {} (wall seconds):\n", row.name);
        for (stage, seconds) in &row.timings {
            out += &format!("  {stage:<width$}  {seconds:>9.3}\n");
        }
        let total: f64 = row.timings.iter().map(|(_, t)| t).sum();
        out += &format!("  {:<width$}  {total:>9.3}\n", "total");
    }
    out
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
        // Drawn now and twice a second, not only when a unit of work completes (the first
        // round of the all-pairs pass takes seconds at 10⁶ cells).
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
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
