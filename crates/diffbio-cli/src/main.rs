//! The `diffbio` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use diffbio_cli::{
    notes, score, timings_table, to_delimited, to_json, to_per_cell_tsv, to_table, Bars, GraphRow,
    ScoreRequest, Source,
};
use diffbio_metrics::{BenchmarkConfig, MetricSet};

#[derive(Parser, Debug)]
#[command(
    name = "diffbio",
    version,
    about = "Exact single-cell integration metrics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print every metric for embeddings: from an AnnData file (--h5ad, one or more obsm
    /// keys) or from arrays (--embedding, --batch: .npy or .safetensors; name a tensor of a
    /// multi-tensor file as FILE.safetensors:NAME).
    Score(ScoreArgs),
}

#[derive(clap::Args, Debug)]
struct ScoreArgs {
    /// AnnData file (.h5ad) holding the embeddings in obsm and the labels in obs.
    #[arg(long, requires = "batch_key", conflicts_with_all = ["embedding", "batch", "labels", "pre"])]
    h5ad: Option<PathBuf>,
    /// The obsm keys to score, comma-separated (e.g. X_pca,X_scVI): one row each.
    #[arg(long, value_delimiter = ',', requires = "h5ad", required_unless_present_any = ["graph_obsp", "embedding"])]
    obsm: Vec<String>,
    /// The obs column of the batches (categorical, string or integer).
    #[arg(long, requires = "h5ad")]
    batch_key: Option<String>,
    /// The obs column of the cell types (enables the biology-conservation metrics).
    #[arg(long, requires = "h5ad")]
    label_key: Option<String>,
    /// The obsm key of the embedding before integration (e.g. X_pca); enables
    /// `pcr_comparison` and, with --label-key, the aggregate scores.
    #[arg(long, requires = "h5ad")]
    pre_obsm: Option<String>,
    /// Take the neighbours from this obsp key (scanpy's `distances`) instead of the exact
    /// kNN graph; metrics needing more neighbours than it has are skipped.
    #[arg(long, requires = "h5ad")]
    knn_obsp: Option<String>,
    /// Also score this obsp graph alone, as a row of its own (an integration that outputs a
    /// neighbour graph and no embedding, e.g. BBKNN's `distances`): the graph metrics; the
    /// metrics that need an embedding are skipped and listed.
    #[arg(long, requires = "h5ad")]
    graph_obsp: Option<String>,
    /// The row name of --graph-obsp's graph (default: obsp:KEY).
    #[arg(long, requires = "graph_obsp")]
    graph_name: Option<String>,
    /// Float matrix, cells × dims.
    #[arg(long, required_unless_present = "h5ad")]
    embedding: Option<PathBuf>,
    /// Integer batch code per cell.
    #[arg(long, required_unless_present = "h5ad")]
    batch: Option<PathBuf>,
    /// Integer cell-type code per cell (enables the biology-conservation metrics).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// The embedding before integration (e.g. the PCA the integration started from),
    /// same cells and order; enables `pcr_comparison` and, with --labels, the
    /// aggregate scores.
    #[arg(long)]
    pre: Option<PathBuf>,
    /// Neighbours per cell for the batch entropy.
    #[arg(long, default_value_t = BenchmarkConfig::default().n_neighbors)]
    k: usize,
    /// Metrics not to compute, comma-separated, named as in --format json (e.g.
    /// kbet,nmi_kmeans,ari_kmeans), as scib-metrics' BioConservation and BatchCorrection
    /// switches turn them off: their work is not done, and the aggregates are the means of
    /// the metrics computed.
    #[arg(long, value_delimiter = ',', value_name = "METRICS")]
    skip: Vec<String>,
    /// Output: scib-metrics' table (one row per embedding), JSON, CSV or TSV.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Min-max scale every metric across the embeddings before the aggregates, as
    /// scib-metrics' get_results(min_max_scale=True).
    #[arg(long)]
    min_max_scale: bool,
    /// Also draw the results table as scib-metrics' plot_results_table does (FILE.svg, or
    /// FILE.png with a TrueType font: DIFFBIO_FONT or a system DejaVu Sans).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Also write each cell's LISI of the batches and of the cell types (what iLISI and
    /// cLISI summarise) for every embedding, as a tab-separated file.
    #[arg(long, value_name = "FILE.tsv")]
    per_cell: Option<PathBuf>,
    /// Report each stage's wall time per embedding: on stderr, or as a `timings` object
    /// in each row of --format json.
    #[arg(long)]
    timings: bool,
    /// No progress on stderr (it is drawn only when stderr is a terminal).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
    Tsv,
}

fn main() -> ExitCode {
    let Command::Score(args) = Cli::parse().command;
    let source = match args.h5ad {
        Some(file) => Source::H5ad {
            file,
            obsm: args.obsm,
            batch_key: args
                .batch_key
                .expect("clap requires --batch-key with --h5ad"),
            label_key: args.label_key,
            pre_obsm: args.pre_obsm,
            knn_obsp: args.knn_obsp,
            graph_obsp: args.graph_obsp.map(|key| GraphRow {
                name: args.graph_name.unwrap_or_else(|| format!("obsp:{key}")),
                key,
            }),
        },
        None => Source::Arrays {
            embedding: args.embedding.expect("clap requires --embedding"),
            batch: args.batch.expect("clap requires --batch"),
            labels: args.labels,
            pre: args.pre,
        },
    };
    let left_out = match MetricSet::of(&args.skip) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: --skip: {e}");
            return ExitCode::FAILURE;
        }
    };
    let request = ScoreRequest {
        source,
        config: BenchmarkConfig {
            n_neighbors: args.k,
            left_out,
            ..BenchmarkConfig::default()
        },
    };
    let report = if args.quiet {
        score(&request, &diffbio_metrics::Silent)
    } else {
        score(&request, &Bars::new())
    };
    let mut report = match report {
        Ok(report) if args.min_max_scale => report.min_max_scaled(),
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.plot {
        if let Err(e) = diffbio_cli::plot::write_plot(&report, path) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    report.show_timings = args.timings;
    if let Some(path) = &args.per_cell {
        if let Err(e) = std::fs::write(path, to_per_cell_tsv(&report)) {
            eprintln!("error: {}: cannot write it: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let format = if args.json { Format::Json } else { args.format };
    match format {
        Format::Table => print!("{}", to_table(&report)),
        Format::Json => println!("{}", to_json(&report)),
        Format::Csv => print!("{}", to_delimited(&report, ',')),
        Format::Tsv => print!("{}", to_delimited(&report, '\t')),
    }
    // The table carries these lines and JSON the same facts; CSV/TSV stay pure data.
    if matches!(format, Format::Csv | Format::Tsv) && !args.quiet {
        eprint!("{}", notes(&report));
    }
    if format != Format::Json {
        eprint!("{}", timings_table(&report));
    }
    ExitCode::SUCCESS
}
