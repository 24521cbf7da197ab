//! Parity of the fused ops' CUDA kernels with their CPU path: values and gradients on
//! random inputs (never all-zero), shapes around the kernels' tile sizes, k = 1 and
//! k = n − 1, B up to 64, duplicate points, extreme temperatures, half-precision inputs, on
//! every kernel device there is: a CUDA GPU (`cuda` feature; without a device the tests say
//! that they skipped) and the CPU emulator of the kernels (`cuda-emu` feature). Kernel
//! outputs are poisoned with NaN before each launch, so an element a kernel forgets to
//! write fails the comparison.
#![cfg(any(feature = "cuda", feature = "cuda-emu"))]

use candle_core::{DType, Device, Tensor, Var};
use diffbio_core::*;
use diffbio_testing::{flat, norm_rel_err, rel_err, scalar, Rng};

const F32_TOL: f64 = 1e-5;

/// The f32 tolerance of batch mixing in `d` dimensions at temperature `t`. The CPU path
/// and the tiled forward form distances as |x_i|² + |x_j|² − 2 x_i·x_j of centred points
/// (in different summation orders), and so does the tiled backward (d ≤ 128); the warp
/// kernels (large k, the backward past d = 128) as
/// Σ (x_i − x_j)²: each rounds differently, by about ε·|x|² ≈ ε·d on these normal inputs,
/// and the loss sees the distances through exp(−D/T), so near-ties and low temperatures
/// amplify the difference by 1/T (at T = 1e-3 and d = 8 it reaches 4·10⁻⁴ in the gradient).
fn mixing_f32_tol(d: usize, t: f64) -> f64 {
    F32_TOL + 4.0 * f32::EPSILON as f64 * d as f64 / t
}
const HALF_TOL: f64 = 1e-2;

/// Where the kernels run.
enum Kernels {
    /// A CUDA GPU.
    #[cfg(feature = "cuda")]
    Cuda(Device),
    /// The emulator, on CPU tensors.
    #[cfg(feature = "cuda-emu")]
    Emulated,
}

impl Kernels {
    /// Every kernel device of this build and machine.
    #[allow(clippy::vec_init_then_push)] // which pushes exist depends on the features
    fn all() -> Vec<Kernels> {
        let mut all = Vec::new();
        #[cfg(feature = "cuda")]
        if let Some(dev) = diffbio_testing::cuda_device() {
            diffbio_core::poison_kernel_outputs(true);
            all.push(Kernels::Cuda(dev));
        }
        #[cfg(feature = "cuda-emu")]
        all.push(Kernels::Emulated);
        all
    }

    /// The device the op's tensors live on.
    fn device(&self) -> Device {
        match self {
            #[cfg(feature = "cuda")]
            Kernels::Cuda(dev) => dev.clone(),
            #[cfg(feature = "cuda-emu")]
            Kernels::Emulated => Device::Cpu,
        }
    }

    /// Runs `f` so that the fused ops on [`Self::device`] run their kernels.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            #[cfg(feature = "cuda")]
            Kernels::Cuda(_) => f(),
            #[cfg(feature = "cuda-emu")]
            Kernels::Emulated => diffbio_core::emulator::with_emulated_kernels(f),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "cuda")]
            Kernels::Cuda(_) => "CUDA",
            #[cfg(feature = "cuda-emu")]
            Kernels::Emulated => "emulated",
        }
    }
}

/// Value and gradient of one loss on one device.
fn run(
    dev: &Device,
    x: &Tensor,
    f: &dyn Fn(&Tensor) -> diffbio_core::Result<Tensor>,
) -> (f64, Vec<f64>) {
    let v = Var::from_tensor(&x.to_device(dev).unwrap()).unwrap();
    let loss = f(v.as_tensor()).unwrap();
    let grad = loss.backward().unwrap().get(&v).unwrap().clone();
    assert_eq!(
        grad.dtype(),
        x.dtype(),
        "the gradient comes back in the input's dtype"
    );
    (scalar(&loss), flat(&grad))
}

/// Value and gradient on the CPU path and through `kernels`, with labels `labels` moved to
/// each device.
fn both(
    kernels: &Kernels,
    x: &Tensor,
    labels: &Tensor,
    f: &dyn Fn(&Tensor, &Tensor) -> diffbio_core::Result<Tensor>,
) -> ((f64, Vec<f64>), (f64, Vec<f64>)) {
    let cpu = run(&Device::Cpu, x, &|x| f(x, labels));
    let dev = kernels.device();
    let on_dev = labels.to_device(&dev).unwrap();
    let kernel = kernels.run(|| run(&dev, x, &|x| f(x, &on_dev)));
    (cpu, kernel)
}

fn assert_parity(
    what: &str,
    kernels: &Kernels,
    (cpu, kernel): ((f64, Vec<f64>), (f64, Vec<f64>)),
    tol: f64,
    check_grad: bool,
) {
    let on = kernels.name();
    assert!(
        kernel.0.is_finite() && kernel.1.iter().all(|g| g.is_finite()),
        "{what}: non-finite {on} output"
    );
    let ve = rel_err(kernel.0, cpu.0, 1e-6);
    assert!(
        ve < tol,
        "{what}: value {} ({on}) vs {} (CPU), rel err {ve:.2e}",
        kernel.0,
        cpu.0
    );
    if check_grad {
        let ge = norm_rel_err(&kernel.1, &cpu.1, 1e-12);
        assert!(ge < tol, "{what}: {on} gradient rel err {ge:.2e}");
        println!("parity {what} [{on}]: value rel err {ve:.1e}, gradient {ge:.1e} (tol {tol:.1e})");
    } else {
        println!("parity {what} [{on}]: value rel err {ve:.1e} (tol {tol:.1e})");
    }
}

fn mixing(k: usize, b: usize, t: f64) -> BatchMixingLoss {
    BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: k,
        n_batches: b,
        temperature: t,
    })
    .unwrap()
}

#[test]
fn batch_mixing_matches_cpu() {
    for kernels in Kernels::all() {
        batch_mixing_cases(&kernels);
    }
}

fn batch_mixing_cases(kernels: &Kernels) {
    let mut rng = Rng::new(100);
    // (n, d, k, B, T): n = 2, n < 32 and odd sizes (no multiple of a warp or block, just
    // below and above one), k = 1, k = n − 1, B = 64, extreme temperatures; k = 128 and 129
    // (per-lane lists), k ≥ 193 (past the lists' shared memory: radix select), k = 1,000,
    // and B = 1,024 (the class sums in chunks). The tiled forward (64 × 64 tiles in f32,
    // 16 dimensions a step): n and d just below, at and above a tile, k = 135 (its largest
    // in f32) and 136 (the warp kernel's lists); d = 129, past the tiled backward's 128,
    // and d = 130 with n = 300: the warp backward's columns in two blocks of 256.
    for &(n, d, k, b, t) in &[
        (63, 17, 5, 3, 1.0),
        (64, 16, 63, 2, 1.0),
        (65, 1, 5, 3, 1.0),
        (129, 15, 10, 7, 0.5),
        (200, 33, 135, 3, 1.0),
        (200, 33, 136, 3, 1.0),
        (70, 129, 5, 3, 1.0),
        (300, 130, 10, 3, 1.0),
        (2, 3, 1, 2, 1.0),
        (5, 3, 2, 2, 1.0),
        (31, 7, 1, 3, 1.0),
        (33, 5, 32, 3, 1.0),
        (257, 32, 15, 3, 1.0),
        (150, 16, 149, 4, 1.0),
        (300, 8, 299, 4, 1.0),
        (400, 6, 128, 3, 1.0),
        (400, 6, 129, 3, 1.0),
        (1001, 4, 1000, 3, 1.0),
        (40, 4, 5, 1024, 1.0),
        (1023, 64, 15, 64, 1.0),
        (500, 8, 30, 5, 1e-3),
        (500, 8, 30, 5, 1e3),
        (2000, 50, 64, 3, 0.5),
    ] {
        let x = Tensor::from_vec(rng.normals(n * d), (n, d), &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let labels: Vec<u32> = (0..n).map(|_| rng.below(b) as u32).collect();
        let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
        let loss = mixing(k, b, t);
        // n = 2: each cell's one neighbour is its κ, the loss does not depend on x and the
        // gradients are rounding (~1e-15) on both paths; only the value is compared.
        assert_parity(
            &format!("batch mixing n={n} d={d} k={k} B={b} T={t}"),
            kernels,
            both(kernels, &x, &labels, &|x, l| loss.forward(x, l)),
            mixing_f32_tol(d, t),
            n > 2,
        );
    }
}

/// d past what the warp kernels once kept in shared memory (x_i and the gradient slots: the
/// backward took d ≤ 6,144 in f32, 3,072 in f64), with k = 150 for the warp forward too.
/// Rows scaled by 1/√d (so |x_i| ≈ 1: at |x|² ≈ d, f32 distances of thousands of terms
/// differ between summation orders by far more than the softmax tolerates at T = 1); the
/// f32 tolerance is `mixing_f32_tol`'s with √d in place of |x|² (the rounding of a sum of
/// d terms grows as √d).
#[test]
fn batch_mixing_any_d_matches_cpu() {
    for kernels in Kernels::all() {
        let mut rng = Rng::new(105);
        let t = 0.05;
        let f32_tol = |d: usize| mixing_f32_tol((d as f64).sqrt().ceil() as usize, t);
        for &(n, d, k, dtype, tol) in &[
            (40, 6500, 5, DType::F32, f32_tol(6500)),
            (160, 6500, 150, DType::F32, f32_tol(6500)),
            (50, 3100, 5, DType::F64, 1e-10),
        ] {
            let scale = 1.0 / (d as f64).sqrt();
            let values = rng.normals(n * d).iter().map(|v| v * scale).collect();
            let x = Tensor::from_vec(values, (n, d), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let labels = (0..n as u32).map(|i| i % 3).collect();
            let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
            let loss = mixing(k, 3, t);
            assert_parity(
                &format!("batch mixing {dtype:?} n={n} d={d} k={k}"),
                &kernels,
                both(&kernels, &x, &labels, &|x, l| loss.forward(x, l)),
                tol,
                true,
            );
        }
    }
}

#[test]
fn batch_mixing_with_duplicate_points_matches_cpu_value() {
    for kernels in Kernels::all() {
        duplicate_points(&kernels);
    }
}

fn duplicate_points(kernels: &Kernels) {
    let mut rng = Rng::new(101);
    let (n, d) = (120, 6);
    let base = rng.normals(40 * d);
    let data: Vec<f64> = (0..n)
        .flat_map(|i| base[(i % 40) * d..(i % 40 + 1) * d].to_vec())
        .collect();
    let x = Tensor::from_vec(data, (n, d), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let labels = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, &Device::Cpu).unwrap();
    let loss = mixing(5, 3, 1.0);
    // Tied k-th distances: the gradient depends on which tied neighbour is chosen.
    assert_parity(
        "batch mixing with duplicates",
        kernels,
        both(kernels, &x, &labels, &|x, l| loss.forward(x, l)),
        F32_TOL,
        false,
    );
}

#[test]
fn batch_mixing_with_near_ties_matches_cpu_value() {
    for kernels in Kernels::all() {
        near_ties(&kernels);
    }
}

/// Lattice points jittered by 1e-6: many neighbours tie to within the rounding of either
/// distance form, so the CPU path and the kernels may rank different ones k-th; the loss
/// is continuous there (κ and its neighbour's distance agree to rounding), so the values
/// agree, and only the gradient's κ term, which follows the chosen j*, may differ.
fn near_ties(kernels: &Kernels) {
    let mut rng = Rng::new(104);
    let (n, d) = (300, 4);
    let data: Vec<f64> = (0..n * d)
        .map(|_| rng.below(4) as f64 + 1e-6 * rng.normals(1)[0])
        .collect();
    let x = Tensor::from_vec(data, (n, d), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
    let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
    for k in [1, 7, 40] {
        let loss = mixing(k, 3, 0.5);
        assert_parity(
            &format!("batch mixing near ties k={k}"),
            kernels,
            both(kernels, &x, &labels, &|x, l| loss.forward(x, l)),
            mixing_f32_tol(d, 0.5),
            false,
        );
    }
}

#[test]
fn batch_mixing_f64_and_half_inputs_match_cpu() {
    for kernels in Kernels::all() {
        f64_and_half_inputs(&kernels);
    }
}

fn f64_and_half_inputs(kernels: &Kernels) {
    let mut rng = Rng::new(102);
    // The f64 tiled forward's 32 × 32 tiles: n just below, at and above one, k = 202 (its
    // largest) and 203 (the warp kernel).
    for &(n, d, k, b) in &[
        (31, 5, 3, 2),
        (32, 16, 31, 3),
        (33, 17, 7, 4),
        (250, 3, 202, 3),
        (250, 3, 203, 3),
    ] {
        let x = Tensor::from_vec(rng.normals(n * d), (n, d), &Device::Cpu).unwrap();
        let labels: Vec<u32> = (0..n).map(|_| rng.below(b) as u32).collect();
        let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
        let loss = mixing(k, b, 1.0);
        assert_parity(
            &format!("batch mixing f64 n={n} d={d} k={k} B={b}"),
            kernels,
            both(kernels, &x, &labels, &|x, l| loss.forward(x, l)),
            1e-10,
            true,
        );
    }
    let (n, d) = (400, 16);
    let x64 = Tensor::from_vec(rng.normals(n * d), (n, d), &Device::Cpu).unwrap();
    let labels = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, &Device::Cpu).unwrap();
    let loss = mixing(15, 3, 1.0);
    let forward = |x: &Tensor, l: &Tensor| loss.forward(x, l);
    let f64_runs = both(kernels, &x64, &labels, &forward);
    assert_parity("batch mixing f64", kernels, f64_runs, 1e-10, true);
    // f16/bf16 read directly by the kernels: the tiled forward and backward (k = 15,
    // d = 16), the warp forward (k = 150) and the warp backward (d = 130).
    for &(n, d, k) in &[(400, 16, 15), (200, 5, 150), (70, 130, 5)] {
        let x = Tensor::from_vec(rng.normals(n * d), (n, d), &Device::Cpu).unwrap();
        let labels =
            Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, &Device::Cpu).unwrap();
        let loss = mixing(k, 3, 1.0);
        for dtype in [DType::F16, DType::BF16] {
            let xh = x.to_dtype(dtype).unwrap();
            assert_parity(
                &format!("batch mixing {dtype:?} n={n} d={d} k={k}"),
                kernels,
                both(kernels, &xh, &labels, &|x, l| loss.forward(x, l)),
                HALF_TOL,
                true,
            );
        }
    }
}

#[test]
fn auroc_surrogate_matches_cpu() {
    for kernels in Kernels::all() {
        auroc_cases(&kernels);
    }
}

fn auroc_cases(kernels: &Kernels) {
    let mut rng = Rng::new(103);
    for &(n, t, frac) in &[
        (2, 1.0, 0.5),
        (33, 0.5, 0.3),
        (1025, 1.0, 0.5),
        (5000, 1e-3, 0.1),
        (5000, 1e3, 0.9),
        (20_000, 0.2, 0.5),
    ] {
        let s = Tensor::from_vec(rng.normals(n), n, &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let mut y: Vec<u8> = (0..n).map(|_| (rng.uniform() < frac) as u8).collect();
        y[0] = 1;
        y[n - 1] = 0;
        let yc = Tensor::from_vec(y, n, &Device::Cpu).unwrap();
        let dev = kernels.device();
        let yg = yc.to_device(&dev).unwrap();
        for dev_t in [false, true] {
            let auroc = |dev: &Device, y: &Tensor| {
                let tv = Var::new(t as f32, dev).unwrap();
                let a = if dev_t {
                    DifferentiableAuroc::with_temperature(tv.as_tensor().clone()).unwrap()
                } else {
                    DifferentiableAuroc::new(t).unwrap()
                };
                let sv = Var::from_tensor(&s.to_device(dev).unwrap()).unwrap();
                let v = a.forward(sv.as_tensor(), y).unwrap();
                let g = v.backward().unwrap();
                let mut grads = flat(g.get(&sv).unwrap());
                if dev_t {
                    grads.push(scalar(g.get(&tv).unwrap()));
                }
                (scalar(&v), grads)
            };
            assert_parity(
                &format!("auroc n={n} T={t} learned={dev_t}"),
                kernels,
                (auroc(&Device::Cpu, &yc), kernels.run(|| auroc(&dev, &yg))),
                F32_TOL,
                true,
            );
        }
    }
}

#[test]
fn auroc_surrogate_half_scores_match_cpu() {
    for kernels in Kernels::all() {
        let mut rng = Rng::new(104);
        let n = 3000;
        let s = Tensor::from_vec(rng.normals(n), n, &Device::Cpu).unwrap();
        let y: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
        let yc = Tensor::from_vec(y, n, &Device::Cpu).unwrap();
        let auroc = DifferentiableAuroc::new(0.5).unwrap();
        for dtype in [DType::F16, DType::BF16] {
            let sh = s.to_dtype(dtype).unwrap();
            assert_parity(
                &format!("auroc {dtype:?}"),
                &kernels,
                both(&kernels, &sh, &yc, &|s, y| auroc.forward(s, y)),
                HALF_TOL,
                true,
            );
        }
    }
}

#[test]
fn auroc_surrogate_degenerate_classes_through_the_kernels() {
    for kernels in Kernels::all() {
        let dev = kernels.device();
        let s = Var::new(&[0.3f32, 0.1, 0.7], &dev).unwrap();
        let y = Tensor::new(&[1u8, 1, 1], &dev).unwrap();
        let (value, grad) = kernels.run(|| {
            let v = DifferentiableAuroc::default()
                .forward(s.as_tensor(), &y)
                .unwrap();
            (scalar(&v), flat(v.backward().unwrap().get(&s).unwrap()))
        });
        assert_eq!(value, 0.0);
        assert!(grad.iter().all(|g| *g == 0.0));
    }
}

#[cfg(feature = "cuda")]
#[test]
fn mismatched_devices_are_an_error() {
    let Some(gpu) = diffbio_testing::cuda_device() else {
        return;
    };
    let x = Tensor::ones((10, 2), DType::F32, &gpu).unwrap();
    let labels = Tensor::from_vec((0..10u32).map(|i| i % 2).collect(), 10, &Device::Cpu).unwrap();
    let e = mixing(3, 2, 1.0).forward(&x, &labels);
    assert!(matches!(e, Err(Error::DeviceMismatch { .. })), "{e:?}");
    let s = Tensor::ones(10, DType::F32, &gpu).unwrap();
    let e = DifferentiableAuroc::default().forward(&s, &labels);
    assert!(matches!(e, Err(Error::DeviceMismatch { .. })), "{e:?}");
}

#[cfg(feature = "cuda")]
#[test]
fn composed_losses_run_on_cuda() {
    let Some(gpu) = diffbio_testing::cuda_device() else {
        return;
    };
    let mut rng = Rng::new(104);
    let a = Tensor::from_vec(rng.simplex_rows(50, 4, 1.0), (50, 4), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let cpu = run(&Device::Cpu, &a, &|a| ShannonDiversityLoss.forward(a));
    let cuda = run(&gpu, &a, &|a| ShannonDiversityLoss.forward(a));
    let kernels = Kernels::Cuda(gpu);
    assert_parity("shannon", &kernels, (cpu, cuda), F32_TOL, true);
}
