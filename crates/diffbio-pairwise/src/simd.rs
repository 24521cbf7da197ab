//! Loops compiled for the CPU's SIMD width ([`dispatch`]) and the lane-wise sums inside them.

use crate::Real;

/// Work that [`dispatch`] compiles for the CPU's SIMD width. Its `run` must be
/// `#[inline(always)]`, and so must the functions its loops call: only code inlined into
/// the dispatched function is compiled for that width. (A closure would be compiled on its
/// own, for the x86-64 baseline, once its body is too large to inline; closures cannot be
/// marked always-inline.)
pub trait Vectorised {
    /// What the work returns.
    type Output;
    /// The work itself.
    fn run(self) -> Self::Output;
    /// The same work where the CPU fuses multiply-adds (the AVX2 + FMA and AVX-512 paths),
    /// for loops that call `mul_add` (e.g. [`crate::FastExp::fast_exp_fused`]): elsewhere
    /// that is a libm call, so [`dispatch`] runs [`Self::run`] there.
    #[inline(always)]
    fn run_fused(self) -> Self::Output
    where
        Self: Sized,
    {
        self.run()
    }
}

/// Runs `work` compiled for the instruction set of [`simd_level`] (AVX-512, AVX2 + FMA, or
/// the x86-64 baseline), with denormals flushed to zero ([`crate::FlushDenormals`]): its
/// [`Vectorised::run_fused`] where that has FMA, else its [`Vectorised::run`].
#[inline(always)]
pub fn dispatch<W: Vectorised>(work: W) -> W::Output {
    struct Dispatched<W>(W);
    impl<W: Vectorised> pulp::WithSimd for Dispatched<W> {
        type Output = W::Output;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> W::Output {
            let _flush = crate::FlushDenormals::new();
            if S::IS_SCALAR {
                self.0.run()
            } else {
                self.0.run_fused()
            }
        }
    }
    arch().dispatch(Dispatched(work))
}

/// An instruction set [`dispatch`] compiles for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// The x86-64 baseline (SSE2), or the target's own baseline elsewhere.
    Scalar,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/CD/DQ/VL (x86-64-v4).
    Avx512,
}

/// The environment variable that narrows [`simd_level`]: `avx512`, `avx2` or `scalar`.
pub const SIMD_VARIABLE: &str = "DIFFBIO_SIMD";

/// The instruction set of [`dispatch`]: the widest this CPU has, or no wider than the one
/// [`SIMD_VARIABLE`] names, read once per process (so that tests and benchmarks run the
/// narrower paths on a wide machine). An unknown name is reported on stderr and ignored.
/// The matrix products of [`crate::Points`] are `gemm`'s, which chooses its own kernels
/// by the CPU.
pub fn simd_level() -> SimdLevel {
    match arch() {
        #[cfg(target_arch = "x86_64")]
        pulp::Arch::V4(_) => SimdLevel::Avx512,
        #[cfg(target_arch = "x86_64")]
        pulp::Arch::V3(_) => SimdLevel::Avx2,
        _ => SimdLevel::Scalar,
    }
}

fn arch() -> pulp::Arch {
    static ARCH: std::sync::OnceLock<pulp::Arch> = std::sync::OnceLock::new();
    *ARCH.get_or_init(|| match std::env::var(SIMD_VARIABLE).as_deref() {
        Err(_) | Ok("avx512") => pulp::Arch::new(),
        Ok("avx2") => at_most_avx2(),
        Ok("scalar") => pulp::Arch::Scalar,
        Ok(other) => {
            eprintln!("{SIMD_VARIABLE}={other} is not avx512, avx2 or scalar: ignored");
            pulp::Arch::new()
        }
    })
}

/// AVX2 + FMA where the CPU has it, else the baseline.
#[cfg(target_arch = "x86_64")]
fn at_most_avx2() -> pulp::Arch {
    pulp::x86::V3::try_new().map_or(pulp::Arch::Scalar, pulp::Arch::V3)
}

/// Elsewhere the widest level: AVX2 caps nothing there.
#[cfg(not(target_arch = "x86_64"))]
fn at_most_avx2() -> pulp::Arch {
    pulp::Arch::new()
}

/// Independent partial sums per reduction: four AVX2 registers of f64, two of f32 (two and
/// one on AVX-512), enough to hide the adds' latency. (For the f32 batch-mixing sums 8
/// lanes measured 40 % slower than 16 or 32, which were alike.)
pub const LANES: usize = 16;

/// Calls `f(lane, value)` for every value in order, with `lane` = its index mod [`LANES`],
/// through fixed-width chunks that the compiler unrolls: accumulators indexed by lane then
/// stay in vector registers.
///
/// ```
/// use diffbio_pairwise::{for_each_lane, LANES};
/// let mut lanes = [0u32; LANES];
/// for_each_lane(&[1u32; 40], |l, v| lanes[l] += v);
/// assert_eq!(lanes.iter().sum::<u32>(), 40);
/// assert_eq!((lanes[0], lanes[LANES - 1]), (3, 2));
/// ```
#[inline(always)]
pub fn for_each_lane<T: Copy>(values: &[T], mut f: impl FnMut(usize, T)) {
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        let chunk: &[T; LANES] = chunk.try_into().expect("LANES-wide chunk");
        for (l, &v) in chunk.iter().enumerate() {
            f(l, v);
        }
    }
    for (l, &v) in tail.iter().enumerate() {
        f(l, v);
    }
}

/// `Σ values` in [`LANES`] interleaved partial sums, totalled in f64. The order differs
/// from a sequential sum only by rounding.
///
/// ```
/// use diffbio_pairwise::lane_sum;
/// let v: Vec<f32> = (0..100).map(|i| i as f32).collect();
/// assert_eq!(lane_sum(&v), 4950.0);
/// ```
#[inline(always)]
pub fn lane_sum<T: Real>(values: &[T]) -> f64 {
    lane_dot_by(values, values, |a, _| a)
}

/// `Σ a_i · b_i` in [`LANES`] interleaved partial sums (see [`lane_sum`]).
#[inline(always)]
pub fn lane_dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    lane_dot_by(a, b, |x, y| x * y)
}

#[inline(always)]
fn lane_dot_by<T: Real>(a: &[T], b: &[T], term: impl Fn(T, T) -> T) -> f64 {
    let mut sums = LaneSums::new();
    sums.add_by(a, b, term);
    sums.total()
}

/// [`lane_dot`] taken in pieces, for callers that walk a long pair of vectors in blocks:
/// the pieces in order, each but the last a multiple of [`LANES`] long, give bitwise the
/// same total as one `lane_dot` over the whole.
///
/// ```
/// use diffbio_pairwise::{lane_dot, LaneSums, LANES};
/// let a: Vec<f64> = (0..70).map(|i| 1.0 / (1.0 + i as f64)).collect();
/// let mut sums = LaneSums::new();
/// sums.add_dot(&a[..2 * LANES], &a[..2 * LANES]);
/// sums.add_dot(&a[2 * LANES..], &a[2 * LANES..]);
/// assert_eq!(sums.total().to_bits(), lane_dot(&a, &a).to_bits());
/// ```
#[derive(Clone, Debug)]
pub struct LaneSums<T> {
    lanes: [T; LANES],
    /// The sequential sum of the last piece's elements past its last full chunk.
    tail: f64,
}

impl<T: Real> Default for LaneSums<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real> LaneSums<T> {
    /// No terms yet.
    pub fn new() -> Self {
        Self {
            lanes: [T::default(); LANES],
            tail: std::iter::empty::<f64>().sum(),
        }
    }

    /// Adds `Σ a_i · b_i` of the next piece.
    #[inline(always)]
    pub fn add_dot(&mut self, a: &[T], b: &[T]) {
        self.add_by(a, b, |x, y| x * y);
    }

    #[inline(always)]
    fn add_by(&mut self, a: &[T], b: &[T], term: impl Fn(T, T) -> T) {
        let mut lanes = self.lanes;
        let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let remainder = a_chunks.remainder();
        if !remainder.is_empty() {
            self.tail = remainder
                .iter()
                .zip(b_chunks.remainder())
                .map(|(&x, &y)| term(x, y).to_f64())
                .sum();
        }
        for (x, y) in a_chunks.zip(b_chunks) {
            for l in 0..LANES {
                lanes[l] += term(x[l], y[l]);
            }
        }
        self.lanes = lanes;
    }

    /// The total, as [`lane_dot`] of the pieces joined.
    pub fn total(&self) -> f64 {
        self.lanes.iter().map(|v| v.to_f64()).sum::<f64>() + self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::{
        dispatch, lane_dot, lane_sum, simd_level, LaneSums, SimdLevel, Vectorised, LANES,
        SIMD_VARIABLE,
    };

    /// CI runs the suites again under `DIFFBIO_SIMD=avx2` and `=scalar`: the switch must
    /// have taken effect, or those runs test the widest path twice.
    #[test]
    fn the_simd_variable_narrows_the_level() {
        let cap = match std::env::var(SIMD_VARIABLE).as_deref() {
            Ok("avx2") => SimdLevel::Avx2,
            Ok("scalar") => SimdLevel::Scalar,
            _ => SimdLevel::Avx512,
        };
        assert!(simd_level() <= cap, "{:?} under {cap:?}", simd_level());
        #[cfg(target_arch = "x86_64")]
        if cap == SimdLevel::Avx2 && std::arch::is_x86_feature_detected!("fma") {
            assert_eq!(simd_level(), SimdLevel::Avx2);
        }
    }

    /// Which of its two forms `dispatch` ran.
    struct Form;

    impl Vectorised for Form {
        type Output = &'static str;
        #[inline(always)]
        fn run(self) -> &'static str {
            "plain"
        }
        #[inline(always)]
        fn run_fused(self) -> &'static str {
            "fused"
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")] // elsewhere the levels do not name the CPU's own
    fn the_fused_form_runs_where_the_level_has_fma() {
        let want = match simd_level() {
            SimdLevel::Scalar => "plain",
            SimdLevel::Avx2 | SimdLevel::Avx512 => "fused",
        };
        assert_eq!(dispatch(Form), want, "{:?}", simd_level());
    }

    struct LaneSum<'a>(&'a [f64]);

    impl Vectorised for LaneSum<'_> {
        type Output = f64;
        #[inline(always)]
        fn run(self) -> f64 {
            lane_sum(self.0)
        }
    }

    #[test]
    fn a_dot_taken_in_pieces_is_the_whole_dot_bitwise() {
        for len in [0usize, 5, 16, 47, 64, 1000] {
            let a: Vec<f64> = (0..len).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..len).map(|i| 1.0 / (1.0 + i as f64)).collect();
            for piece in [LANES, 2 * LANES, 5 * LANES] {
                let mut sums = LaneSums::new();
                for (a, b) in a.chunks(piece).zip(b.chunks(piece)) {
                    sums.add_dot(a, b);
                }
                let whole = lane_dot(&a, &b);
                assert_eq!(sums.total().to_bits(), whole.to_bits(), "{len} in {piece}s");
            }
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let mut sums = LaneSums::new();
            a32.chunks(3 * LANES).for_each(|a| sums.add_dot(a, a));
            assert_eq!(sums.total().to_bits(), lane_dot(&a32, &a32).to_bits());
        }
    }

    #[test]
    fn lane_sums_match_sequential_sums() {
        for len in [0usize, 1, 7, 15, 16, 17, 89, 1000] {
            let a: Vec<f64> = (0..len)
                .map(|i| ((i * 37 % 11) as f64 - 4.5) / 3.0)
                .collect();
            let b: Vec<f64> = (0..len).map(|i| 1.0 + (i % 5) as f64 * 0.25).collect();
            let sum: f64 = a.iter().sum();
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dispatch(LaneSum(&a)) - sum).abs() <= 1e-12 * (1.0 + sum.abs()));
            assert!((lane_dot(&a, &b) - dot).abs() <= 1e-12 * (1.0 + dot.abs()));
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let sum32: f64 = a32.iter().map(|&v| v as f64).sum();
            assert!((lane_sum(&a32) - sum32).abs() <= 1e-5 * (1.0 + sum32.abs()));
        }
    }
}
