//! The benchmark bodies shared by the CPU (`cpu.rs`) and CUDA (`kernels.rs`) benches: the
//! same ops on the same kind of inputs, forward + backward, synchronising the device inside
//! every iteration (a no-op on the CPU).

use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use diffbio::{BatchMixingConfig, BatchMixingLoss, DifferentiableAuroc};

/// Batch mixing (k = 15, B = 3, T = 1) on random f32 embeddings; throughput in cells.
pub fn batch_mixing(c: &mut Criterion, group: &str, dev: &Device, dims: &[usize], sizes: &[usize]) {
    let mut group = c.benchmark_group(group);
    // Flat sampling: 10 samples of equal iteration counts, so an iteration of a second or
    // more costs ~10 iterations rather than the 55 of linear sampling.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(10));
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 15,
        n_batches: 3,
        temperature: 1.0,
    })
    .unwrap();
    for &d in dims {
        for &n in sizes {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, d), dev).unwrap()).unwrap();
            let labels = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, dev).unwrap();
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

/// The AUROC surrogate (T = 1) on random f32 scores, half positives; throughput in pairs.
pub fn auroc_surrogate(c: &mut Criterion, group: &str, dev: &Device, sizes: &[usize]) {
    let mut group = c.benchmark_group(group);
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let auroc = DifferentiableAuroc::new(1.0).unwrap();
    for &n in sizes {
        let s = Var::from_tensor(&Tensor::randn(0f32, 1.0, n, dev).unwrap()).unwrap();
        let labels = Tensor::from_vec((0..n as u32).map(|i| i % 2).collect(), n, dev).unwrap();
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
