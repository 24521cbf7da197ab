//! The integrate example's model trained data-parallel: every minibatch is sharded over W
//! ranks, each rank computes its share of the objective (the batch-mixing loss through
//! `BatchMixingLoss::forward_sharded`, the centring statistics through `sum_over_ranks`),
//! the parameter gradients are summed over the ranks, and every rank takes the same AdamW
//! step. The loss curve is printed beside single-process training's, step for step.
//!
//! ```text
//! cargo run --release --example data_parallel                      # 4 thread ranks, CPU
//! cargo run --release --example data_parallel -- --ranks 7 --steps 100
//! cargo run --release --features cuda --example data_parallel -- --cuda   # ranks share GPU 0
//! ```
//!
//! With `--features nccl`, one process per GPU, rank and world size from the environment
//! as torchrun sets them (see the README's "Data-parallel training"):
//!
//! ```text
//! RANK=0 WORLD_SIZE=2 target/release/examples/data_parallel --nccl-id-file /tmp/diffbio.id &
//! RANK=1 WORLD_SIZE=2 target/release/examples/data_parallel --nccl-id-file /tmp/diffbio.id
//! ```

use std::time::Instant;

use candle_core::{Device, Tensor};
use clap::Parser;
use diffbio::dist::{Communicator, ThreadComm};
use diffbio_integrate::data::{Dataset, Simulation};
use diffbio_integrate::model::{Losses, TrainConfig, Trainer};

#[derive(Parser, Debug)]
#[command(about = "Data-parallel training of the integrate model, against single-process training")]
struct Args {
    /// Thread ranks (each one a shard of every minibatch).
    #[arg(long, default_value_t = 4)]
    ranks: usize,
    /// Training steps.
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Cells per minibatch (sharded over the ranks).
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    /// Seed of the simulation, the parameters and the minibatches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Put every rank on CUDA device 0 (needs `--features cuda`).
    #[arg(long)]
    cuda: bool,
    /// With `--features nccl` and RANK/WORLD_SIZE set: the file through which rank 0 hands
    /// the NCCL id to the others (remove it before a new run).
    #[arg(long, default_value = "diffbio-nccl.id")]
    nccl_id_file: std::path::PathBuf,
}

type LossResult<T> = Result<T, diffbio::LossError>;

/// One step's losses of the whole minibatch: (mixing, reconstruction, objective).
type Curve = Vec<(f32, f32, f32)>;

fn point(losses: &Losses, weight: f64) -> (f32, f32, f32) {
    let objective = losses.reconstruction + weight as f32 * losses.mixing;
    (losses.mixing, losses.reconstruction, objective)
}

fn trainer(data: &Dataset, config: TrainConfig, device: &Device) -> LossResult<Trainer> {
    let x = Tensor::from_vec(data.standardised(), (data.n_cells(), data.dims), device)?;
    let batch = Tensor::new(data.batch.as_slice(), device)?;
    Trainer::new(x, batch, data.n_batches(), config)
}

fn single_process(data: &Dataset, config: TrainConfig, device: &Device) -> LossResult<Curve> {
    let mut trainer = trainer(data, config, device)?;
    (0..config.steps)
        .map(|_| Ok(point(&trainer.step()?, config.mixing_weight)))
        .collect()
}

/// Every rank trains its own replica on its shards; returns rank 0's curve.
fn data_parallel<C>(
    comm: &C,
    data: &Dataset,
    config: TrainConfig,
    device: &Device,
) -> LossResult<Curve>
where
    C: Communicator + Clone + Send + Sync + 'static,
{
    let mut trainer = trainer(data, config, device)?;
    (0..config.steps)
        .map(|_| Ok(point(&trainer.step_sharded(comm)?, config.mixing_weight)))
        .collect()
}

fn on_thread_ranks(
    ranks: usize,
    data: &Dataset,
    config: TrainConfig,
    device: &Device,
) -> LossResult<Curve> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadComm::group(ranks)
            .into_iter()
            .map(|comm| s.spawn(move || data_parallel(&comm, data, config, device)))
            .collect();
        let mut curves = handles
            .into_iter()
            .map(|h| h.join().expect("a rank panicked"))
            .collect::<LossResult<Vec<_>>>()?;
        Ok(curves.swap_remove(0))
    })
}

fn print_curves(single: &Curve, sharded: &Curve, ranks: usize) {
    println!("step   single process: mixing  recon.  objective | {ranks} ranks: mixing  recon.  objective | difference");
    let mut worst = 0.0f32;
    for (step, (a, b)) in single.iter().zip(sharded).enumerate() {
        let diff = (a.2 - b.2).abs();
        worst = worst.max(diff);
        if step % 5 == 0 || step + 1 == single.len() {
            println!(
                "{step:>4}   {:>22.5} {:>7.4} {:>10.5} | {:>15.5} {:>7.4} {:>10.5} | {diff:.1e}",
                a.0, a.1, a.2, b.0, b.1, b.2
            );
        }
    }
    println!(
        "largest difference of the objective over {} steps: {worst:.1e} (f32 rounding: the sums run in another order)",
        single.len()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let data = Simulation {
        seed: args.seed,
        ..Simulation::default()
    }
    .generate();
    let config = TrainConfig {
        steps: args.steps,
        batch_size: args.batch_size,
        seed: args.seed,
        mixing: diffbio::BatchMixingConfig {
            n_batches: data.n_batches(),
            ..TrainConfig::default().mixing
        },
        ..TrainConfig::default()
    };

    #[cfg(feature = "nccl")]
    if let (Ok(rank), Ok(world)) = (std::env::var("RANK"), std::env::var("WORLD_SIZE")) {
        return nccl::run(rank.parse()?, world.parse()?, &args, &data, config);
    }

    let device = if args.cuda {
        Device::new_cuda(0)?
    } else {
        Device::Cpu
    };
    println!(
        "{} cells × {} dims, {} batches; minibatches of {} over {} ranks ({:?})",
        data.n_cells(),
        data.dims,
        data.n_batches(),
        config.batch_size.min(data.n_cells()),
        args.ranks,
        device.location(),
    );
    let started = Instant::now();
    let single = single_process(&data, config, &device)?;
    let single_time = started.elapsed();
    let started = Instant::now();
    let sharded = on_thread_ranks(args.ranks, &data, config, &device)?;
    let sharded_time = started.elapsed();
    print_curves(&single, &sharded, args.ranks);
    println!(
        "{} steps: single process {:.1} s, {} thread ranks {:.1} s (the ranks share this machine's cores)",
        config.steps,
        single_time.as_secs_f64(),
        args.ranks,
        sharded_time.as_secs_f64()
    );
    Ok(())
}

/// One process per GPU over NCCL.
#[cfg(feature = "nccl")]
mod nccl {
    use std::time::Duration;

    use candle_core::Device;
    use diffbio::dist::{NcclComm, NcclId};
    use diffbio_integrate::data::Dataset;
    use diffbio_integrate::model::TrainConfig;

    pub fn run(
        rank: usize,
        world: usize,
        args: &super::Args,
        data: &Dataset,
        config: TrainConfig,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let local: usize = std::env::var("LOCAL_RANK").map_or(Ok(rank), |v| v.parse())?;
        let device = Device::new_cuda(local)?;
        let id = NcclId::through_file(&args.nccl_id_file, rank, Duration::from_secs(120))?;
        let comm = NcclComm::new(&device, rank, world, id)?;
        let sharded = super::data_parallel(&comm, data, config, &device)?;
        if rank == 0 {
            let single = super::single_process(data, config, &device)?;
            super::print_curves(&single, &sharded, world);
        }
        Ok(())
    }
}
