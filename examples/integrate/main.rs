//! Batch integration in a Candle training loop: an MLP encoder learns a latent space in
//! which batches mix (`BatchMixingLoss`) while a batch-conditioned decoder keeps the biology.
//!
//! ```text
//! cargo run --release --example integrate                      # simulated data
//! cargo run --release --example integrate -- --data ../shared/data/pbmc-3chem --out z.npy
//! cargo run --release --example integrate -- --h5ad in.h5ad --obsm X_pca \
//!     --batch-key batch --label-key cell_type --out out.h5ad   # adds obsm['X_diffbio']
//! ```

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use clap::Parser;
use diffbio::metrics::{benchmark, BenchmarkConfig, PreIntegration};
use indicatif::{ProgressBar, ProgressStyle};

use diffbio_integrate::data::{self, Dataset, Simulation};
use diffbio_integrate::model::{TrainConfig, Trainer};
use diffbio_integrate::plot;

#[derive(Parser, Debug)]
#[command(about = "Train an encoder that removes batch effects with diffbio's BatchMixingLoss")]
struct Args {
    /// Directory with X_pca.npy, batch.npy and celltype.npy (default: simulated data).
    #[arg(long, conflicts_with = "h5ad")]
    data: Option<PathBuf>,
    /// AnnData file to integrate: the embedding is obsm[--obsm], the batches obs[--batch-key].
    #[arg(long, requires_all = ["obsm", "batch_key"])]
    h5ad: Option<PathBuf>,
    /// The obsm key of the embedding to correct (e.g. X_pca).
    #[arg(long, requires = "h5ad")]
    obsm: Option<String>,
    /// The obs column of the batches.
    #[arg(long, requires = "h5ad")]
    batch_key: Option<String>,
    /// The obs column of the cell types (enables the before/after biology scores).
    #[arg(long, requires = "h5ad")]
    label_key: Option<String>,
    /// Write the corrected embedding here: OUT.npy (float32, cells × latent dims, row order
    /// kept) or, with --h5ad, OUT.h5ad (a copy of the input with obsm['X_diffbio']).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory for the PNG plots (loss curves, PCA before/after).
    #[arg(long, default_value = "integrate-plots")]
    plots: PathBuf,
    /// Train on the first CUDA device (needs the `cuda` feature).
    #[arg(long)]
    cuda: bool,
    #[arg(long, default_value_t = TrainConfig::default().steps)]
    steps: usize,
    #[arg(long, default_value_t = TrainConfig::default().mixing_weight)]
    mixing_weight: f64,
    #[arg(long, default_value_t = TrainConfig::default().mixing.temperature)]
    temperature: f64,
    #[arg(long, default_value_t = TrainConfig::default().latent_dims)]
    latent_dims: usize,
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    learning_rate: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// No progress bar (it is drawn only when stderr is a terminal).
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = if args.cuda {
        Device::new_cuda(0)?
    } else {
        Device::Cpu
    };
    let (dataset, source) = match (&args.data, &args.h5ad) {
        (Some(dir), _) => (Dataset::read_dir(dir)?, dir.display().to_string()),
        (None, Some(file)) => {
            let obsm = args
                .obsm
                .as_deref()
                .expect("clap requires --obsm with --h5ad");
            let batch_key = args
                .batch_key
                .as_deref()
                .expect("clap requires --batch-key");
            let dataset = Dataset::read_h5ad(file, obsm, batch_key, args.label_key.as_deref())?;
            (dataset, format!("{} obsm['{obsm}']", file.display()))
        }
        (None, None) => (Simulation::default().generate(), "simulated".into()),
    };
    if let Some(out) = &args.out {
        let h5ad_out = out.extension().is_some_and(|e| e == "h5ad");
        if h5ad_out != args.h5ad.is_some() {
            return Err("--out: write OUT.h5ad with an --h5ad input, OUT.npy otherwise".into());
        }
    }
    let n_batches = dataset.n_batches();
    let celltypes = dataset
        .celltype
        .as_deref()
        .map_or("unknown".into(), |t| data::label_count(t).to_string());
    println!(
        "{} cells × {} dims, {} batches, {celltypes} cell types ({source})",
        dataset.n_cells(),
        dataset.dims,
        n_batches,
    );

    let defaults = TrainConfig::default();
    let config = TrainConfig {
        steps: args.steps,
        mixing_weight: args.mixing_weight,
        latent_dims: args.latent_dims,
        learning_rate: args.learning_rate,
        seed: args.seed,
        mixing: diffbio::BatchMixingConfig {
            temperature: args.temperature,
            ..defaults.mixing
        },
        ..defaults
    };
    let x = Tensor::from_vec(
        dataset.standardised(),
        (dataset.n_cells(), dataset.dims),
        &device,
    )?;
    let batch = Tensor::new(dataset.batch.as_slice(), &device)?;
    let mut trainer = Trainer::new(x, batch, n_batches, config)?;

    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.steps as u64)
    }
    .with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
    )?);
    let mut history = Vec::with_capacity(config.steps);
    for _ in 0..config.steps {
        let losses = trainer.step()?;
        progress.set_message(format!(
            "mixing {:.4}  reconstruction {:.4}",
            losses.mixing, losses.reconstruction
        ));
        progress.inc(1);
        history.push((losses.mixing, losses.reconstruction));
    }
    progress.finish();
    let last = trainer.evaluate()?;
    println!(
        "losses on all cells after {} steps: mixing {:.4}, reconstruction {:.4}",
        config.steps, last.mixing, last.reconstruction
    );

    let corrected = trainer.embed_all()?;
    let latent: Vec<f32> = corrected.flatten_all()?.to_vec1()?;
    let config_scores = BenchmarkConfig::default();
    // pcr_comparison measures both against the input (0 for the input itself, as scib).
    let input = PreIntegration {
        values: &dataset.x,
        dims: dataset.dims,
    };
    let score = |x: &[f32], dims| {
        benchmark(
            x,
            dims,
            &dataset.batch,
            dataset.celltype.as_deref(),
            Some(input),
            config_scores,
        )
    };
    let (before, after) = (
        score(&dataset.x, dataset.dims)?,
        score(&latent, config.latent_dims)?,
    );
    println!(
        "\n{:<20}{:>10}{:>10}   (all: higher = better; batch_entropy k = {}, knn_accuracy k = {})",
        "metric", "before", "after", config_scores.n_neighbors, config_scores.accuracy_neighbors
    );
    for ((name, b), (_, a)) in before.entries().into_iter().zip(after.entries()) {
        println!("{name:<20}{b:>10.4}{a:>10.4}");
    }

    match (&args.out, &args.h5ad) {
        (Some(out), Some(input)) => {
            let embedding = diffbio_io::Embedding {
                values: latent.clone(),
                dims: config.latent_dims,
            };
            diffbio_io::h5ad::write_with_obsm(input, out, "X_diffbio", &embedding)?;
            println!("wrote {} (obsm['X_diffbio'] added)", out.display());
        }
        (Some(out), None) => {
            corrected.to_device(&Device::Cpu)?.write_npy(out)?;
            println!("wrote {}", out.display());
        }
        (None, _) => {}
    }
    plot::write_all(&args.plots, &history, &dataset, &latent, config.latent_dims)?;
    println!("plots in {}", args.plots.display());
    Ok(())
}
