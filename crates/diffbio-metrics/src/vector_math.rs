//! Branch-free math that LLVM vectorises inside a loop compiled for the CPU's SIMD width
//! (see [`dispatch`]): an exponential and lane-wise sums.

/// Work that [`dispatch`] compiles for the CPU's SIMD width. Its `run` must be
/// `#[inline(always)]`, and so must the functions its loops call: only code inlined into
/// the dispatched function is compiled for that width. (A closure would be compiled on its
/// own, for the x86-64 baseline, once its body is too large to inline; closures cannot be
/// marked always-inline.)
pub(crate) trait Vectorised {
    type Output;
    fn run(self) -> Self::Output;
}

/// Runs `work` compiled for the widest SIMD instruction set pulp dispatches to on this CPU
/// (AVX2 + FMA, or the x86-64 baseline: pulp's AVX-512 level is a feature left off, as it
/// measured slower here).
#[inline(always)]
pub(crate) fn dispatch<W: Vectorised>(work: W) -> W::Output {
    struct Dispatched<W>(W);
    impl<W: Vectorised> pulp::WithSimd for Dispatched<W> {
        type Output = W::Output;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> W::Output {
            self.0.run()
        }
    }
    pulp::Arch::new().dispatch(Dispatched(work))
}

/// `Σ values` in eight interleaved partial sums, which LLVM keeps in one vector register
/// (a sequential sum is one add per element on the critical path). The order differs from
/// a sequential sum only by rounding.
#[inline(always)]
pub(crate) fn lane_sum(values: &[f64]) -> f64 {
    lane_dot_by(values, values, |a, _| a)
}

/// `Σ a_i · b_i` in eight interleaved partial sums (see [`lane_sum`]).
#[inline(always)]
pub(crate) fn lane_dot(a: &[f64], b: &[f64]) -> f64 {
    lane_dot_by(a, b, |x, y| x * y)
}

#[inline(always)]
fn lane_dot_by(a: &[f64], b: &[f64], term: impl Fn(f64, f64) -> f64) -> f64 {
    const LANES: usize = 8;
    let mut lanes = [0.0f64; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(&x, &y)| term(x, y))
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            lanes[l] += term(x[l], y[l]);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `exp` as a branch-free polynomial: Cody–Waite range reduction, a Taylor polynomial on
/// |r| ≤ ln2/2, and 2^n built from the exponent bits. Inlined into a loop, LLVM vectorises
/// it (the libm call it replaces cannot be). Accurate to a few ulp; exactly 1 at 0; exactly
/// 0 below the type's normal range, so no denormal ever enters a sum; inputs above ~709
/// (f64) / 88 (f32) are clamped there.
///
/// ```
/// use diffbio_metrics::FastExp;
/// let x = -3.25f64;
/// assert!((x.fast_exp() - x.exp()).abs() <= 4.0 * f64::EPSILON * x.exp());
/// assert_eq!(0.0f32.fast_exp(), 1.0);
/// assert_eq!((-1000.0f64).fast_exp(), 0.0);
/// ```
pub trait FastExp: Copy {
    /// `e^self`.
    fn fast_exp(self) -> Self;
}

macro_rules! impl_fast_exp {
    ($t:ty, $bits:ty, $mantissa:expr, $bias:expr, $lo:expr, $hi:expr, $ln2_hi:expr, $ln2_lo:expr, [$($c:expr),*]) => {
        impl FastExp for $t {
            #[inline(always)]
            fn fast_exp(self) -> $t {
                // 1.5·2^mantissa: adding it rounds to an integer held in the low bits.
                const SHIFTER: $t = 1.5 * (1u64 << $mantissa) as $t;
                let x = self.min($hi);
                let t = x * std::f64::consts::LOG2_E as $t + SHIFTER;
                let n = t - SHIFTER;
                let r = (x - n * $ln2_hi) - n * $ln2_lo;
                let mut p: $t = 0.0;
                $(p = p * r + $c;)*
                let scale = <$t>::from_bits((t.to_bits().wrapping_add($bias)) << $mantissa);
                if x < $lo { 0.0 } else { p * scale }
            }
        }
    };
}

// Taylor coefficients 1/k!, highest first; |r| ≤ ln2/2 bounds the truncation below one ulp.
impl_fast_exp!(
    f64,
    u64,
    52,
    1023,
    -708.0,
    709.0,
    6.931_471_803_691_238_2e-1,
    1.908_214_929_270_587_7e-10,
    [
        1.0 / 479001600.0,
        1.0 / 39916800.0,
        1.0 / 3628800.0,
        1.0 / 362880.0,
        1.0 / 40320.0,
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0
    ]
);
impl_fast_exp!(
    f32,
    u32,
    23,
    127,
    -87.0,
    88.0,
    0.693_359_375,
    -2.121_944_4e-4,
    [
        1.0 / 40320.0,
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0
    ]
);

#[cfg(test)]
mod tests {
    use super::{dispatch, lane_dot, lane_sum, FastExp, Vectorised};

    struct LaneSum<'a>(&'a [f64]);

    impl Vectorised for LaneSum<'_> {
        type Output = f64;
        #[inline(always)]
        fn run(self) -> f64 {
            lane_sum(self.0)
        }
    }

    #[test]
    fn lane_sums_match_sequential_sums() {
        for len in [0usize, 1, 7, 8, 9, 89, 1000] {
            let a: Vec<f64> = (0..len)
                .map(|i| ((i * 37 % 11) as f64 - 4.5) / 3.0)
                .collect();
            let b: Vec<f64> = (0..len).map(|i| 1.0 + (i % 5) as f64 * 0.25).collect();
            let sum: f64 = a.iter().sum();
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dispatch(LaneSum(&a)) - sum).abs() <= 1e-12 * (1.0 + sum.abs()));
            assert!((lane_dot(&a, &b) - dot).abs() <= 1e-12 * (1.0 + dot.abs()));
        }
    }

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst64 = 0.0f64;
        let mut worst32 = 0.0f64;
        for i in -70_000..=70_000 {
            let x = i as f64 * 0.01;
            if x > -708.0 && x < 709.0 {
                worst64 = worst64.max((FastExp::fast_exp(x) - x.exp()).abs() / x.exp());
            }
            let x32 = (i as f32 * 0.00125).clamp(-86.0, 88.0);
            let want = (x32 as f64).exp();
            worst32 = worst32.max((FastExp::fast_exp(x32) as f64 - want).abs() / want);
        }
        assert!(worst64 < 4.0 * f64::EPSILON, "f64 exp rel err {worst64:e}");
        assert!(
            worst32 < 4.0 * f32::EPSILON as f64,
            "f32 exp rel err {worst32:e}"
        );
        assert_eq!(FastExp::fast_exp(-1000.0f64), 0.0);
        assert_eq!(FastExp::fast_exp(-100.0f32), 0.0);
    }
}
