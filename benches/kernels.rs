//! CUDA benchmarks of the fused kernels (built with `--features cuda`), synchronising the
//! device inside every iteration. Batch mixing reports cells/s, the AUROC surrogate
//! positive×negative pairs/s.
//!
//! ```text
//! cargo bench --features cuda --bench kernels
//! ```
//!
//! Without a CUDA device it prints that it skipped.

use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use diffbio::{BatchMixingConfig, BatchMixingLoss, DifferentiableAuroc};

fn device() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(dev) => Some(dev),
        Err(e) => {
            eprintln!("SKIPPED: no CUDA device ({e})");
            None
        }
    }
}

fn batch_mixing(c: &mut Criterion) {
    let Some(dev) = device() else { return };
    let mut group = c.benchmark_group("cuda_batch_mixing");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 15,
        n_batches: 3,
        temperature: 1.0,
    })
    .unwrap();
    for d in [32usize, 64] {
        for n in [4_096usize, 16_384, 65_536, 262_144] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, d), &dev).unwrap()).unwrap();
            let labels = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, &dev).unwrap();
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("forward_backward_f32_d{d}"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        loss.forward(x.as_tensor(), &labels)
                            .unwrap()
                            .backward()
                            .unwrap();
                        dev.synchronize().unwrap();
                    })
                },
            );
        }
    }
    group.finish();
}

fn auroc_surrogate(c: &mut Criterion) {
    let Some(dev) = device() else { return };
    let mut group = c.benchmark_group("cuda_auroc_surrogate");
    group.sample_size(10);
    let auroc = DifferentiableAuroc::new(1.0).unwrap();
    for n in [4_096usize, 16_384, 65_536, 262_144] {
        let s = Var::from_tensor(&Tensor::randn(0f32, 1.0, n, &dev).unwrap()).unwrap();
        let labels = Tensor::from_vec((0..n as u32).map(|i| i % 2).collect(), n, &dev).unwrap();
        group.throughput(Throughput::Elements((n / 2 * (n - n / 2)) as u64));
        group.bench_with_input(
            BenchmarkId::new("forward_backward_f32_pairs", n),
            &n,
            |b, _| {
                b.iter(|| {
                    auroc
                        .forward(s.as_tensor(), &labels)
                        .unwrap()
                        .backward()
                        .unwrap();
                    dev.synchronize().unwrap();
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, batch_mixing, auroc_surrogate);
criterion_main!(benches);
