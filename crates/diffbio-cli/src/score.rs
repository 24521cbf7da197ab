//! `diffbio score`'s request and report: read the inputs, compute every metric for every
//! embedding (rendered by `render`).

use std::path::{Path, PathBuf};

use diffbio_metrics::{
    benchmark_graph, benchmark_with_graph, benchmark_with_progress, min_max_scale, BenchmarkConfig,
    BenchmarkInputs, PreIntegration, Progress, Scores,
};

use diffbio_io::h5ad::AnnData;
use diffbio_io::{read_embedding, read_labels, Embedding, Error, Result};

use crate::given_graph::{check_graph_is_of, exact_words, is_of, obsp_words};
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
                neighbours: exact_words(None),
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
    BenchmarkInputs {
        embedding: &embedding.values,
        dims: embedding.dims,
        batches: batch,
        labels,
        pre_integration: pre.map(|p| PreIntegration {
            values: &p.values,
            dims: p.dims,
        }),
    }
}
