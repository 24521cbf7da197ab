//! Times one op on inputs read from `.npy` files and prints one JSON line: the driver that
//! `benches/side-by-side/compare.sh` runs beside the JAX and scikit-learn versions, on the same files.
//!
//! ```text
//! cargo run --release --example bench_ops -- batch-mixing X.npy batch.npy K B T REPS
//! cargo run --release --example bench_ops -- auroc-surrogate scores.npy labels.npy T REPS
//! cargo run --release --example bench_ops -- roc-auc scores.npy labels.npy REPS
//! ```
//!
//! Each run times `REPS` calls (forward + backward for the losses) after one warm-up call
//! and reports the median; peak memory is measured by the caller (the process's max RSS).

use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use diffbio::metrics::roc_auc;
use diffbio::{BatchMixingConfig, BatchMixingLoss, DifferentiableAuroc};

fn median_seconds(reps: usize, mut run: impl FnMut() -> f64) -> (f64, f64) {
    let mut value = run();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            value = run();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], value)
}

fn read(path: &str) -> Tensor {
    Tensor::read_npy(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or("missing argument: see the usage in the source")
    };
    let (seconds, value, n) = match arg(0)? {
        "batch-mixing" => {
            let x = Var::from_tensor(&read(arg(1)?).to_dtype(DType::F32)?)?;
            let batch = read(arg(2)?).to_dtype(DType::I64)?;
            let loss = BatchMixingLoss::new(BatchMixingConfig {
                n_neighbors: arg(3)?.parse()?,
                n_batches: arg(4)?.parse()?,
                temperature: arg(5)?.parse()?,
            })?;
            let n = x.dim(0)?;
            let (s, v) = median_seconds(arg(6)?.parse()?, || {
                let l = loss.forward(x.as_tensor(), &batch).unwrap();
                l.backward().unwrap();
                l.to_scalar::<f32>().unwrap() as f64
            });
            (s, v, n)
        }
        "auroc-surrogate" => {
            let s = Var::from_tensor(&read(arg(1)?).to_dtype(DType::F32)?)?;
            let y = read(arg(2)?);
            let auroc = DifferentiableAuroc::new(arg(3)?.parse()?)?;
            let n = s.dim(0)?;
            let (t, v) = median_seconds(arg(4)?.parse()?, || {
                let a = auroc.forward(s.as_tensor(), &y).unwrap();
                a.backward().unwrap();
                a.to_scalar::<f32>().unwrap() as f64
            });
            (t, v, n)
        }
        "roc-auc" => {
            let scores = read(arg(1)?).to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let labels: Vec<bool> = read(arg(2)?)
                .to_dtype(DType::U8)?
                .to_vec1::<u8>()?
                .iter()
                .map(|&y| y == 1)
                .collect();
            let n = scores.len();
            let (t, v) = median_seconds(arg(3)?.parse()?, || roc_auc(&scores, &labels).unwrap());
            (t, v, n)
        }
        other => return Err(format!("unknown op {other}").into()),
    };
    println!("{{\"n\": {n}, \"seconds\": {seconds:.6}, \"value\": {value:.12}}}");
    Ok(())
}
