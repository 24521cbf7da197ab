//! Helpers for reading Candle CPU storages inside custom ops, and the float trait the CPU
//! kernels are generic over.

use candle_core::{Layout, WithDType};

/// The elements of a contiguous layout, or an error: the public entry points make their
/// inputs contiguous before applying an op, so anything else is a bug worth reporting.
pub(crate) fn contiguous_slice<'a, T: WithDType>(
    data: &'a [T],
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("diffbio: custom op input is not contiguous ({layout:?})"),
    }
}

/// Floats that the CPU kernels compute with natively (f32 and f64).
///
/// `exp` is a branch-free polynomial (Cody–Waite range reduction, 2^n built from the
/// exponent bits) that LLVM vectorises inside the kernels' loops, unlike the libm call;
/// it is accurate to a few ulp and returns exactly 0 below the type's normal range, so no
/// denormal ever enters a sum.
pub(crate) trait Real: WithDType + Send + Sync + Default + PartialOrd + 'static {
    fn exp(self) -> Self;
}

macro_rules! impl_real {
    ($t:ty, $bits:ty, $mantissa:expr, $bias:expr, $lo:expr, $hi:expr, $ln2_hi:expr, $ln2_lo:expr, [$($c:expr),*]) => {
        impl Real for $t {
            #[inline(always)]
            fn exp(self) -> $t {
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
impl_real!(
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
impl_real!(
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
    use super::Real;

    #[test]
    fn polynomial_exp_matches_libm() {
        let mut worst64 = 0.0f64;
        let mut worst32 = 0.0f64;
        for i in -70_000..=70_000 {
            let x = i as f64 * 0.01;
            if x > -708.0 && x < 709.0 {
                worst64 = worst64.max((Real::exp(x) - x.exp()).abs() / x.exp());
            }
            let x32 = (i as f32 * 0.00125).clamp(-86.0, 88.0);
            let want = (x32 as f64).exp();
            worst32 = worst32.max((Real::exp(x32) as f64 - want).abs() / want);
        }
        assert!(worst64 < 4.0 * f64::EPSILON, "f64 exp rel err {worst64:e}");
        assert!(
            worst32 < 4.0 * f32::EPSILON as f64,
            "f32 exp rel err {worst32:e}"
        );
        assert_eq!(Real::exp(-1000.0f64), 0.0);
        assert_eq!(Real::exp(-100.0f32), 0.0);
    }

    #[test]
    fn flush_denormals_is_scoped() {
        let tiny = std::hint::black_box(1e-30f32);
        assert!(tiny * 1e-10 > 0.0, "denormal results exist by default");
        {
            let _flush = super::FlushDenormals::new();
            assert_eq!(
                std::hint::black_box(tiny) * 1e-10,
                0.0,
                "flushed inside the guard"
            );
        }
        assert!(
            std::hint::black_box(tiny) * 1e-10 > 0.0,
            "restored after the guard"
        );
    }
}

/// Flushes denormal results and inputs to zero on this thread while it lives, restoring
/// the previous floating-point mode on drop.
///
/// Far-apart pairs produce products below the normal range (e.g. `e_ij · γ_i` with
/// `e_ij ≈ 1e-30`); each denormal result costs the CPU a ~100-cycle microcode assist,
/// which made the kernels several times slower. Such terms are more than 30 orders of
/// magnitude below the sums they join, so flushing them changes no result.
pub(crate) struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the only stable way to set FTZ/DAZ
    pub(crate) fn new() -> Self {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        const FLUSH_TO_ZERO: u32 = 0x8000;
        const DENORMALS_ARE_ZERO: u32 = 0x0040;
        // SAFETY: SSE is part of the x86_64 baseline; only the rounding-mode register changes.
        let saved = unsafe { _mm_getcsr() };
        unsafe { _mm_setcsr(saved | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO) };
        Self { saved }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(crate) fn new() -> Self {
        Self {}
    }
}

impl Drop for FlushDenormals {
    #[allow(deprecated)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read in `new` on the same thread.
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        };
    }
}
