//! CUDA benchmarks of the fused kernels (built with `--features cuda`), synchronising the
//! device inside every iteration. Batch mixing reports cells/s, the AUROC surrogate
//! positive×negative pairs/s.
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

const SIZES: [usize; 4] = [4_096, 16_384, 65_536, 262_144];

fn batch_mixing(c: &mut Criterion) {
    let Some(dev) = device() else { return };
    common::batch_mixing(c, "cuda_batch_mixing", &dev, &[32, 64], &SIZES);
}

fn auroc_surrogate(c: &mut Criterion) {
    let Some(dev) = device() else { return };
    common::auroc_surrogate(c, "cuda_auroc_surrogate", &dev, &SIZES);
}

criterion_group!(benches, batch_mixing, auroc_surrogate);
criterion_main!(benches);
