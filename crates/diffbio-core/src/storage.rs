//! Helpers for reading Candle CPU storages inside custom ops.

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

/// Floats that the CPU kernels compute with natively.
pub(crate) trait Real: WithDType + Send + Sync {}
impl Real for f32 {}
impl Real for f64 {}
