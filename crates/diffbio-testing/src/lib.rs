//! Test support shared by the diffbio crates' tests: a seeded generator, tensor helpers,
//! error measures, finite differences, and [`test_device!`], which runs one test body on
//! every device available (as Candle's own `test_device!` does).
#![warn(missing_docs)]

use candle_core::{DType, Device, Tensor};

/// Turns `fn NAME(dev: &Device)` into the tests `NAME::cpu`; when the calling crate is
/// built with its `cuda` feature, `NAME::cuda` (kernel outputs poisoned with NaN), which
/// reports that it skipped when there is no CUDA device or fails under
/// `DIFFBIO_REQUIRE_CUDA=1` ([`cuda_device`]); and when it is diffbio-core built with `cuda-emu`,
/// `NAME::emu`, the body on the CPU with the fused ops' CUDA kernels run by the emulator
/// (`diffbio_core::emulator`). `test_device!(NAME, not_emulated = "why")` leaves the
/// emulator out (too slow for it, or a size the current kernels refuse), saying why.
///
/// ```
/// use candle_core::{Device, Tensor};
/// fn doubles(dev: &Device) {
///     let t = Tensor::new(&[1f32, 2.0], dev).unwrap();
///     assert_eq!((&t + &t).unwrap().to_vec1::<f32>().unwrap(), [2.0, 4.0]);
/// }
/// diffbio_testing::test_device!(doubles);
/// ```
#[macro_export]
macro_rules! test_device {
    ($body:ident) => {
        #[allow(non_snake_case)]
        mod $body {
            $crate::test_device!(@cpu_and_cuda $body);

            #[cfg(feature = "cuda-emu")]
            #[test]
            pub fn emu() {
                diffbio_core::emulator::with_emulated_kernels(|| {
                    super::$body(&candle_core::Device::Cpu)
                })
            }
        }
    };
    ($body:ident, not_emulated = $why:literal) => {
        #[allow(non_snake_case)]
        #[doc = $why]
        mod $body {
            $crate::test_device!(@cpu_and_cuda $body);
        }
    };
    (@cpu_and_cuda $body:ident) => {
        #[test]
        pub fn cpu() {
            super::$body(&candle_core::Device::Cpu)
        }

        #[cfg(feature = "cuda")]
        #[test]
        pub fn cuda() {
            if let Some(dev) = $crate::cuda_device() {
                // Kernel outputs start as NaN: an element a kernel forgets to write shows.
                diffbio_core::poison_kernel_outputs(true);
                super::$body(&dev)
            }
        }
    };
}

/// The first CUDA device, or `None` after reporting the skip. The report is written to
/// the stderr handle directly, which the test harness does not capture, so CI logs show it.
/// Under `DIFFBIO_REQUIRE_CUDA=1` ([`cuda_required`]) an absent device panics instead, so a
/// GPU run cannot pass by skipping; each device handed out writes `CUDA case: device 0`
/// there too, which `scripts/gpu-run.sh` counts. Callers in diffbio-core's tests also turn
/// on `diffbio_core::poison_kernel_outputs`, as [`test_device!`] does.
pub fn cuda_device() -> Option<Device> {
    use std::io::Write;
    match Device::new_cuda(0) {
        Ok(dev) => {
            let _ = writeln!(std::io::stderr(), "CUDA case: device 0");
            Some(dev)
        }
        Err(e) if cuda_required() => {
            panic!("DIFFBIO_REQUIRE_CUDA=1 and no CUDA device could be opened: {e}")
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED (no CUDA device: {e})");
            None
        }
    }
}

/// Whether the CUDA tests must find a device: `DIFFBIO_REQUIRE_CUDA=1` in the environment,
/// read once per process. `scripts/gpu-run.sh` sets it; CI checks that it fails there.
pub fn cuda_required() -> bool {
    static REQUIRED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REQUIRED.get_or_init(|| std::env::var("DIFFBIO_REQUIRE_CUDA").is_ok_and(|v| v == "1"))
}

/// Deterministic pseudo-random numbers (SplitMix64), so tests need no extra crate and
/// every failure reproduces.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// `len` standard normals.
    pub fn normals(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.normal()).collect()
    }
    /// Rows on the probability simplex (softmax of normals scaled by `sharpness`).
    pub fn simplex_rows(&mut self, n: usize, k: usize, sharpness: f64) -> Vec<f64> {
        let mut out = Vec::with_capacity(n * k);
        for _ in 0..n {
            let logits: Vec<f64> = (0..k).map(|_| self.normal() * sharpness).collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            out.extend(exps.iter().map(|e| e / sum));
        }
        out
    }
}

/// The value of a one-element tensor, as f64.
pub fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

/// Every element of a tensor, row-major, as f64.
pub fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// `|got − want| / max(|want|, floor)`.
pub fn rel_err(got: f64, want: f64, floor: f64) -> f64 {
    (got - want).abs() / want.abs().max(floor)
}

/// `‖got − want‖ / max(‖want‖, floor)`: the gradient error relative to the gradient's norm.
pub fn norm_rel_err(got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "gradient length");
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = want.iter().map(|b| b * b).sum::<f64>().sqrt();
    diff / norm.max(floor)
}

/// Central finite differences of a scalar function of a flat parameter vector, in f64.
pub fn finite_diff(f: impl Fn(&[f64]) -> f64, at: &[f64], step: f64) -> Vec<f64> {
    let mut x = at.to_vec();
    (0..at.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + step;
            let plus = f(&x);
            x[i] = orig - step;
            let minus = f(&x);
            x[i] = orig;
            (plus - minus) / (2.0 * step)
        })
        .collect()
}
