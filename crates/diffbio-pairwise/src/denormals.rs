//! A scoped guard that flushes denormal floats to zero.

/// Flushes denormal results and inputs to zero on this thread while it lives, restoring
/// the previous floating-point mode on drop.
///
/// Far-apart pairs produce products below the normal range (e.g. `e_ij · γ_i` with
/// `e_ij ≈ 1e-30`); each denormal result costs the CPU a ~100-cycle microcode assist,
/// which made the kernels several times slower. Such terms are more than 30 orders of
/// magnitude below the sums they join, so flushing them changes no result.
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl Default for FlushDenormals {
    fn default() -> Self {
        Self::new()
    }
}

impl FlushDenormals {
    /// Sets flush-to-zero and denormals-are-zero on this thread.
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the only stable way to set FTZ/DAZ
    pub fn new() -> Self {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        const FLUSH_TO_ZERO: u32 = 0x8000;
        const DENORMALS_ARE_ZERO: u32 = 0x0040;
        // SAFETY: SSE is part of the x86_64 baseline; only the rounding-mode register changes.
        let saved = unsafe { _mm_getcsr() };
        unsafe { _mm_setcsr(saved | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO) };
        Self { saved }
    }

    /// Does nothing on this architecture.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn new() -> Self {
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

#[cfg(test)]
mod tests {

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
