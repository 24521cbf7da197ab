//! CPU-vs-CUDA parity of the fused ops: values and gradients on random inputs (never
//! all-zero), shapes around the kernels' tile sizes, k = 1 and k = n − 1, B up to 64,
//! duplicate points, extreme temperatures, half-precision inputs. CUDA outputs are poisoned
//! with NaN before each kernel (DIFFBIO_POISON_OUTPUTS), so an element a kernel forgets to
//! write fails the comparison. Without a CUDA device every test says that it skipped.
#![cfg(feature = "cuda")]

use candle_core::{DType, Device, Tensor, Var};
use diffbio_core::*;
use diffbio_testing::{cuda_device, flat, norm_rel_err, rel_err, scalar, Rng};

const F32_TOL: f64 = 1e-5;
const HALF_TOL: f64 = 1e-2;

/// Value and gradient of one loss on one device.
fn run(
    dev: &Device,
    x: &Tensor,
    f: &dyn Fn(&Tensor) -> diffbio_core::Result<Tensor>,
) -> (f64, Vec<f64>) {
    let v = Var::from_tensor(&x.to_device(dev).unwrap()).unwrap();
    let loss = f(v.as_tensor()).unwrap();
    let grads = loss.backward().unwrap();
    (scalar(&loss), flat(grads.get(&v).unwrap()))
}

fn assert_parity(
    what: &str,
    cpu: (f64, Vec<f64>),
    gpu: (f64, Vec<f64>),
    tol: f64,
    check_grad: bool,
) {
    assert!(
        gpu.0.is_finite() && gpu.1.iter().all(|g| g.is_finite()),
        "{what}: non-finite CUDA output"
    );
    let ve = rel_err(gpu.0, cpu.0, 1e-6);
    assert!(
        ve < tol,
        "{what}: value {} (CUDA) vs {} (CPU), rel err {ve:.2e}",
        gpu.0,
        cpu.0
    );
    if check_grad {
        let ge = norm_rel_err(&gpu.1, &cpu.1, 1e-12);
        assert!(ge < tol, "{what}: gradient rel err {ge:.2e}");
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
    let Some(gpu) = cuda_device() else { return };
    let mut rng = Rng::new(100);
    // (n, d, k, B, T): n < 32 and odd sizes (no multiple of a warp or block), k = 1,
    // k = n − 1, B = 64, extreme temperatures.
    for &(n, d, k, b, t) in &[
        (5, 3, 2, 2, 1.0),
        (31, 7, 1, 3, 1.0),
        (257, 32, 15, 3, 1.0),
        (300, 16, 299, 4, 1.0),
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
        let lc = Tensor::from_vec(labels.clone(), n, &Device::Cpu).unwrap();
        let lg = lc.to_device(&gpu).unwrap();
        let loss = mixing(k, b, t);
        let cpu = run(&Device::Cpu, &x, &|x| loss.forward(x, &lc));
        let cuda = run(&gpu, &x, &|x| loss.forward(x, &lg));
        assert_parity(
            &format!("batch mixing n={n} d={d} k={k} B={b} T={t}"),
            cpu,
            cuda,
            F32_TOL,
            true,
        );
    }
}

#[test]
fn batch_mixing_with_duplicate_points_matches_cpu_value() {
    let Some(gpu) = cuda_device() else { return };
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
    let lc = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, &Device::Cpu).unwrap();
    let lg = lc.to_device(&gpu).unwrap();
    let loss = mixing(5, 3, 1.0);
    // Tied k-th distances: the gradient depends on which tied neighbour is chosen.
    let cpu = run(&Device::Cpu, &x, &|x| loss.forward(x, &lc));
    let cuda = run(&gpu, &x, &|x| loss.forward(x, &lg));
    assert_parity("batch mixing with duplicates", cpu, cuda, F32_TOL, false);
}

#[test]
fn batch_mixing_f64_and_half_inputs_match_cpu() {
    let Some(gpu) = cuda_device() else { return };
    let mut rng = Rng::new(102);
    let (n, d) = (400, 16);
    let x64 = Tensor::from_vec(rng.normals(n * d), (n, d), &Device::Cpu).unwrap();
    let lc = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, &Device::Cpu).unwrap();
    let lg = lc.to_device(&gpu).unwrap();
    let loss = mixing(15, 3, 1.0);
    let cpu = run(&Device::Cpu, &x64, &|x| loss.forward(x, &lc));
    let cuda = run(&gpu, &x64, &|x| loss.forward(x, &lg));
    assert_parity("batch mixing f64", cpu, cuda, 1e-10, true);
    for dtype in [DType::F16, DType::BF16] {
        let xh = x64.to_dtype(dtype).unwrap();
        let cpu = run(&Device::Cpu, &xh, &|x| loss.forward(x, &lc));
        let cuda = run(&gpu, &xh, &|x| loss.forward(x, &lg));
        assert_parity(
            &format!("batch mixing {dtype:?}"),
            cpu,
            cuda,
            HALF_TOL,
            true,
        );
    }
}

#[test]
fn auroc_surrogate_matches_cpu() {
    let Some(gpu) = cuda_device() else { return };
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
        let yg = yc.to_device(&gpu).unwrap();
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
                auroc(&Device::Cpu, &yc),
                auroc(&gpu, &yg),
                F32_TOL,
                true,
            );
        }
    }
}

#[test]
fn auroc_surrogate_degenerate_classes_on_cuda() {
    let Some(gpu) = cuda_device() else { return };
    let s = Var::new(&[0.3f32, 0.1, 0.7], &gpu).unwrap();
    let y = Tensor::new(&[1u8, 1, 1], &gpu).unwrap();
    let v = DifferentiableAuroc::default()
        .forward(s.as_tensor(), &y)
        .unwrap();
    assert_eq!(scalar(&v), 0.0);
    assert!(flat(v.backward().unwrap().get(&s).unwrap())
        .iter()
        .all(|g| *g == 0.0));
}

#[test]
fn mismatched_devices_are_an_error() {
    let Some(gpu) = cuda_device() else { return };
    let x = Tensor::ones((10, 2), DType::F32, &gpu).unwrap();
    let labels = Tensor::from_vec((0..10u32).map(|i| i % 2).collect(), 10, &Device::Cpu).unwrap();
    let e = mixing(3, 2, 1.0).forward(&x, &labels);
    assert!(matches!(e, Err(Error::DeviceMismatch { .. })), "{e:?}");
    let s = Tensor::ones(10, DType::F32, &gpu).unwrap();
    let e = DifferentiableAuroc::default().forward(&s, &labels);
    assert!(matches!(e, Err(Error::DeviceMismatch { .. })), "{e:?}");
}

#[test]
fn composed_losses_run_on_cuda() {
    let Some(gpu) = cuda_device() else { return };
    let mut rng = Rng::new(104);
    let a = Tensor::from_vec(rng.simplex_rows(50, 4, 1.0), (50, 4), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let cpu = run(&Device::Cpu, &a, &|a| ShannonDiversityLoss.forward(a));
    let cuda = run(&gpu, &a, &|a| ShannonDiversityLoss.forward(a));
    assert_parity("shannon", cpu, cuda, F32_TOL, true);
}
