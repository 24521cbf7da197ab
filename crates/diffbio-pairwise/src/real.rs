//! The floats the kernels are generic over.

use std::cmp::Ordering;
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

use crate::FastExp;

/// f32 or f64: what the CPU kernels compute with natively. Each kernel is written once,
/// generic over `Real`; sums that must not lose precision are totalled in f64
/// ([`Real::to_f64`]).
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + FastExp
    + 'static
{
    /// +∞.
    const INFINITY: Self;
    /// The machine epsilon (the spacing of floats at 1).
    const EPSILON: f64;
    /// The nearest value of this type (rounding an f64).
    fn from_f64(value: f64) -> Self;
    /// The exact value as an f64.
    fn to_f64(self) -> f64;
    /// IEEE 754 total order (`f64::total_cmp`).
    fn total_cmp(&self, other: &Self) -> Ordering;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            const INFINITY: Self = <$t>::INFINITY;
            const EPSILON: f64 = <$t>::EPSILON as f64;
            #[inline(always)]
            fn from_f64(value: f64) -> Self {
                value as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn total_cmp(&self, other: &Self) -> Ordering {
                <$t>::total_cmp(self, other)
            }
        }
    };
}

impl_real!(f32);
impl_real!(f64);
