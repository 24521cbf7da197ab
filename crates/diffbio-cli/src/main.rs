//! The `diffbio` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use diffbio_cli::{score, to_json, to_table, Bars, ScoreRequest};
use diffbio_metrics::BenchmarkConfig;

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
    /// Print every metric available for an embedding (.npy or .safetensors inputs; name a
    /// tensor of a multi-tensor file as FILE.safetensors:NAME).
    Score {
        /// Float matrix, cells × dims.
        #[arg(long)]
        embedding: PathBuf,
        /// Integer batch code per cell.
        #[arg(long)]
        batch: PathBuf,
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
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// No progress on stderr (it is drawn only when stderr is a terminal).
        #[arg(long, short)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let Command::Score {
        embedding,
        batch,
        labels,
        pre,
        k,
        json,
        quiet,
    } = Cli::parse().command;
    let request = ScoreRequest {
        embedding,
        batch,
        labels,
        pre,
        config: BenchmarkConfig {
            n_neighbors: k,
            ..BenchmarkConfig::default()
        },
    };
    let scores = if quiet {
        score(&request, &diffbio_metrics::Silent)
    } else {
        score(&request, &Bars::new())
    };
    match scores {
        Ok(scores) if json => println!("{}", to_json(&scores)),
        Ok(scores) => print!("{}", to_table(&scores)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
