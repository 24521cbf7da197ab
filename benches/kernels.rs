//! CUDA benchmarks of the fused kernels (built with `--features cuda`), synchronising the
//! device inside every iteration, at the sizes of the performance model in
//! `docs/kernels.md` (n = 65,536 and 262,144, d = 32 and 64; n = 1,000,000 too with
//! `DIFFBIO_BENCH_LARGE=1`, predicted at ~13 s an iteration for batch mixing). Batch mixing
//! reports cells/s, the AUROC surrogate positive×negative pairs/s; `scripts/gpu-run.sh`
//! turns the batch-mixing times into achieved GFLOP/s of the distance work.
//!
//! ```text
//! cargo bench --features cuda --bench kernels
//! ```
//!
//! Without a CUDA device it prints that it skipped.

mod common;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};

fn device() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(dev) => Some(dev),
        Err(e) => {
            eprintln!("SKIPPED: no CUDA device ({e})");
            None
        }
    }
}

/// n = 16,384 (a quick first figure), the model's 65,536 and 262,144, and its 1,000,000
/// when `DIFFBIO_BENCH_LARGE` is set.
fn sizes() -> Vec<usize> {
    let mut sizes = vec![16_384, 65_536, 262_144];
    if std::env::var_os("DIFFBIO_BENCH_LARGE").is_some() {
        sizes.push(1_000_000);
    }
    sizes
}

fn batch_mixing(c: &mut Criterion) {
    let Some(dev) = device() else { return };
    common::batch_mixing(c, "cuda_batch_mixing", &dev, &[32, 64], &sizes());
}

/// The batch-mixing sizes, and n = 100,000: the model's 50k × 50k pairs.
fn auroc_surrogate(c: &mut Criterion) {
    let Some(dev) = device() else { return };
    let mut sizes = sizes();
    sizes.insert(2, 100_000);
    common::auroc_surrogate(c, "cuda_auroc_surrogate", &dev, &sizes);
}

criterion_group!(benches, batch_mixing, auroc_surrogate);
criterion_main!(benches);
