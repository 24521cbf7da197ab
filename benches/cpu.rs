//! CPU benchmarks of the fused ops and the exact metric.
//!
//! ```text
//! cargo bench --bench cpu                       # everything (the 65k sizes take minutes)
//! cargo bench --bench cpu -- batch_mixing/4000  # one case
//! ```
//!
//! Throughput is reported per cell (batch mixing), per positive×negative pair (AUROC
//! surrogate), per score (exact AUROC) and per flop (`gemm`, the reference for the
//! distance work: the same `gemm` crate on a plain matrix product).

mod common;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use diffbio::metrics::roc_auc;

fn batch_mixing(c: &mut Criterion) {
    common::batch_mixing(
        c,
        "batch_mixing",
        &Device::Cpu,
        &[32],
        &[1_000, 4_000, 16_000, 65_536],
    );
}

fn auroc_surrogate(c: &mut Criterion) {
    common::auroc_surrogate(
        c,
        "auroc_surrogate",
        &Device::Cpu,
        &[1_000, 4_000, 16_000, 65_536],
    );
}

fn exact_auroc(c: &mut Criterion) {
    let mut group = c.benchmark_group("roc_auc");
    group.sample_size(10);
    for n in [1_000_000usize, 10_000_000] {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let labels: Vec<bool> = (0..n).map(|_| uniform() < 0.3).collect();
        let scores: Vec<f64> = labels
            .iter()
            .map(|&y| uniform() + if y { 0.3 } else { 0.0 })
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("f64", n), &n, |b, _| {
            b.iter(|| roc_auc(&scores, &labels).unwrap())
        });
    }
    group.finish();
}

/// The plain f32 GEMM this CPU reaches with the `gemm` crate: the yardstick for the
/// distance tiles (`k = 32` like the embeddings above, and a square product).
fn gemm_reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    group.sample_size(10);
    for (m, n, k) in [(4096usize, 4096usize, 32usize), (1024, 1024, 1024)] {
        let a = vec![1.0f32; m * k];
        let b = vec![0.5f32; k * n];
        let mut dst = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_function(
            BenchmarkId::new("f32_flops", format!("{m}x{n}x{k}")),
            |bench| {
                bench.iter(|| unsafe {
                    // SAFETY: the buffers hold m×k, k×n and m×n row-major elements.
                    gemm::gemm(
                        m,
                        n,
                        k,
                        dst.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(0),
                    )
                })
            },
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    batch_mixing,
    auroc_surrogate,
    exact_auroc,
    gemm_reference
);
criterion_main!(benches);
