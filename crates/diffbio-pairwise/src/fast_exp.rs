//! A branch-free, vectorisable exponential.

// The Cody–Waite split of ln 2 is written out digit for digit: its high parts are exact
// floats with trailing zero bits, which clippy takes for excess precision.
#![allow(clippy::excessive_precision)]

/// `exp` as a branch-free polynomial: Cody–Waite range reduction, a Taylor polynomial on
/// |r| ≤ ln2/2, and 2^n built from the exponent bits. Inlined into a loop, LLVM vectorises
/// it (the libm call it replaces cannot be). Accurate to a few ulp; exactly 1 at 0; exactly
/// 0 below the type's normal range, so no denormal ever enters a sum; inputs above ~709
/// (f64) / 88 (f32) are clamped there.
///
/// ```
/// use diffbio_pairwise::FastExp;
/// let x = -3.25f64;
/// assert!((x.fast_exp() - x.exp()).abs() <= 4.0 * f64::EPSILON * x.exp());
/// assert_eq!(0.0f32.fast_exp(), 1.0);
/// assert_eq!((-1000.0f64).fast_exp(), 0.0);
/// ```
pub trait FastExp: Copy {
    /// The argument below which [`Self::fast_exp`] returns exactly 0 (about the type's
    /// smallest normal exponent, times ln 2).
    const ZERO_BELOW: f64;
    /// `e^self`.
    fn fast_exp(self) -> Self;
    /// `e^self` with fused multiply-adds (one rounding less per step: a slightly different
    /// result of the same accuracy). Only for code compiled where the CPU has FMA
    /// ([`crate::Vectorised::run_fused`]): elsewhere each is a call to libm's `fma`.
    fn fast_exp_fused(self) -> Self;
}

macro_rules! impl_fast_exp {
    ($t:ty, $bits:ty, $mantissa:expr, $bias:expr, $lo:expr, $hi:expr, $ln2_hi:expr, $ln2_lo:expr, [$first:expr $(, $c:expr)*]) => {
        impl FastExp for $t {
            const ZERO_BELOW: f64 = $lo;
            #[inline(always)]
            fn fast_exp(self) -> $t {
                exp_by(self, |a: $t, b, c| a * b + c)
            }
            #[inline(always)]
            fn fast_exp_fused(self) -> $t {
                exp_by(self, <$t>::mul_add)
            }
        }

        /// The exponential with `mul_add(a, b, c) = a·b + c`, fused or not.
        #[inline(always)]
        fn exp_by(x: $t, mul_add: impl Fn($t, $t, $t) -> $t) -> $t {
            // 1.5·2^mantissa: adding it rounds to an integer held in the low bits.
            const SHIFTER: $t = 1.5 * (1u64 << $mantissa) as $t;
            let x = x.min($hi);
            let t = mul_add(x, std::f64::consts::LOG2_E as $t, SHIFTER);
            let n = t - SHIFTER;
            let r = mul_add(n, -$ln2_lo, mul_add(n, -$ln2_hi, x));
            let mut p: $t = $first;
            $(p = mul_add(p, r, $c);)*
            let scale = <$t>::from_bits((t.to_bits().wrapping_add($bias)) << $mantissa);
            if x < $lo { 0.0 } else { p * scale }
        }
    };
}

// Taylor coefficients 1/k!, highest first; |r| ≤ ln2/2 bounds the truncation below one ulp.
mod f64_exp {
    use super::FastExp;
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
}
mod f32_exp {
    use super::FastExp;
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
}

#[cfg(test)]
mod tests {
    use super::FastExp;

    #[test]
    fn fast_exp_matches_libm() {
        // Both forms (the fused one through libm's `fma` here: compiled for the baseline).
        for fused in [false, true] {
            let exp64 = |x: f64| {
                if fused {
                    x.fast_exp_fused()
                } else {
                    x.fast_exp()
                }
            };
            let exp32 = |x: f32| {
                if fused {
                    x.fast_exp_fused()
                } else {
                    x.fast_exp()
                }
            };
            let mut worst64 = 0.0f64;
            let mut worst32 = 0.0f64;
            for i in -70_000..=70_000 {
                let x = i as f64 * 0.01;
                if x > -708.0 && x < 709.0 {
                    worst64 = worst64.max((exp64(x) - x.exp()).abs() / x.exp());
                }
                let x32 = (i as f32 * 0.00125).clamp(-86.0, 88.0);
                let want = (x32 as f64).exp();
                worst32 = worst32.max((exp32(x32) as f64 - want).abs() / want);
            }
            assert!(worst64 < 4.0 * f64::EPSILON, "f64 exp rel err {worst64:e}");
            assert!(
                worst32 < 4.0 * f32::EPSILON as f64,
                "f32 exp rel err {worst32:e}"
            );
            assert_eq!((exp64(-1000.0), exp32(-100.0)), (0.0, 0.0));
            assert_eq!((exp64(0.0), exp32(0.0)), (1.0, 1.0));
        }
        // ZERO_BELOW is where the results stop: 0 below it, a normal float at it.
        let below = (f64::ZERO_BELOW - 0.5, f32::ZERO_BELOW as f32 - 0.5);
        assert_eq!((below.0.fast_exp(), below.1.fast_exp()), (0.0, 0.0));
        assert!(f64::ZERO_BELOW.fast_exp().is_normal());
        assert!((f32::ZERO_BELOW as f32).fast_exp().is_normal());
    }
}
