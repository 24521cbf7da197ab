//! The forward's and backward's shared memory per block, and the kernels that fit it: the
//! tiled kernels while their layouts fit 96 KiB, else the warp kernels with the layout
//! that fits 48 KiB. The sizes come from the layouts declared in `kernels.rs`.

use super::super::contract::Params;
use super::super::kernels::{
    FORWARD_SHARED, RADIX_BUCKETS, TILED_BACKWARD_DIMS, TILED_BACKWARD_SHARED,
    TILED_FORWARD_SHARED, TILE_DEPTH, TILE_F32, TILE_F64, TILE_PAD,
};
use crate::error::{Error, Result};
use crate::kernel_interface::LayoutSizes;
use crate::launch::{KernelReal, SHARED_MEMORY_LIMIT};

/// The forward's kernels for one launch: the tiled kernel while its per-row lists fit
/// [`TILED_SHARED_LIMIT`] (every k up to 135 in f32, 202 in f64), else the warp-per-row
/// kernel with the layout [`forward_layout`] chooses (any k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardKernel {
    Tiled { shared_bytes: usize },
    Warp(ForwardLayout),
}

/// The most shared memory a block of the tiled forward takes: 96 KiB, within what every
/// GPU since sm_80 lets a kernel opt in to (sm_86/89 99 KiB, sm_80 163, sm_90 227).
pub(crate) const TILED_SHARED_LIMIT: usize = 96 * 1024;

/// Rows and columns of one tile of the tiled kernels (the kernels' `TiledShape<T>`).
pub(crate) fn tile_shape<T: KernelReal>() -> (usize, usize) {
    match std::mem::size_of::<T>() {
        4 => (TILE_F32, TILE_F32),
        _ => (TILE_F64, TILE_F64),
    }
}

/// The sizes of the tiled kernels' shared-memory layouts in `T`, at k neighbours and d
/// dimensions.
pub(super) fn tiled_sizes<T: KernelReal>(k: usize, d: usize) -> LayoutSizes {
    let (rows, cols) = tile_shape::<T>();
    LayoutSizes {
        real_bytes: std::mem::size_of::<T>(),
        rows,
        cols,
        pad: TILE_PAD,
        depth: TILE_DEPTH,
        k,
        d,
        ..LayoutSizes::default()
    }
}

/// The tiled forward's shared memory per block ([`TILED_FORWARD_SHARED`]).
pub(super) fn tiled_forward_bytes<T: KernelReal>(k: usize) -> usize {
    TILED_FORWARD_SHARED.bytes(tiled_sizes::<T>(k, 0))
}

/// The tiled kernel when it fits, else the warp kernel's layout.
pub(crate) fn forward_kernel<T: KernelReal>(p: &Params) -> Result<ForwardKernel> {
    let shared_bytes = tiled_forward_bytes::<T>(p.k);
    if shared_bytes <= TILED_SHARED_LIMIT {
        return Ok(ForwardKernel::Tiled { shared_bytes });
    }
    Ok(ForwardKernel::Warp(forward_layout::<T>(p)?))
}

/// The tiled backward's shared memory: the forward's without lists, then
/// [`TILED_BACKWARD_SHARED`] (`TiledBwdShared`).
pub(super) fn tiled_backward_bytes<T: KernelReal>(d: usize) -> usize {
    tiled_forward_bytes::<T>(0) + TILED_BACKWARD_SHARED.bytes(tiled_sizes::<T>(0, d))
}

/// The tiled backward's shared memory per block, when it takes these sizes.
pub(crate) fn tiled_backward<T: KernelReal>(d: usize) -> Option<usize> {
    let bytes = tiled_backward_bytes::<T>(d);
    (d <= TILED_BACKWARD_DIMS && bytes <= TILED_SHARED_LIMIT).then_some(bytes)
}

/// How `knn_entropy_fwd` lays out one row's shared memory, chosen to fit a block: the k
/// nearest by per-lane sorted lists when 32·k pairs fit (the fast path), else by radix
/// select (any k, a 2 KiB histogram, 8 or 16 more sweeps over the columns, one for j*); the
/// class sums of pass 2 for `class_chunk` classes at a time (all B when they fit, else one
/// sweep per chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForwardLayout {
    pub radix: bool,
    pub class_chunk: usize,
    pub per_warp: usize,
}

/// `knn_entropy_fwd`'s shared memory per warp ([`FORWARD_SHARED`]).
pub(super) fn forward_bytes<T: KernelReal>(p: &Params, class_chunk: usize, radix: bool) -> usize {
    FORWARD_SHARED.bytes(LayoutSizes {
        real_bytes: std::mem::size_of::<T>(),
        k: p.k,
        n_batches: p.n_batches,
        class_chunk,
        radix,
        radix_buckets: RADIX_BUCKETS,
        ..LayoutSizes::default()
    })
}

/// The fast layout when it fits one block, else the lists with at least 32 classes a
/// sweep, else radix select with as many classes a sweep as fit.
pub(crate) fn forward_layout<T: KernelReal>(p: &Params) -> Result<ForwardLayout> {
    let layout = |radix: bool, class_chunk: usize| ForwardLayout {
        radix,
        class_chunk,
        per_warp: forward_bytes::<T>(p, class_chunk, radix),
    };
    let fits = |l: &ForwardLayout| l.per_warp <= SHARED_MEMORY_LIMIT;
    let whole = layout(false, p.n_batches);
    if fits(&whole) {
        return Ok(whole);
    }
    let radix = !fits(&layout(false, p.n_batches.min(32)));
    let chunk_bytes = 2 * 32 * std::mem::size_of::<T>();
    let fixed = forward_bytes::<T>(p, 0, radix);
    let class_chunk = (SHARED_MEMORY_LIMIT.saturating_sub(fixed) / chunk_bytes).min(p.n_batches);
    if class_chunk == 0 {
        return Err(Error::DeviceLimit {
            what: format!(
                "the shared memory per row (bytes) of batch mixing with B = {}",
                p.n_batches
            ),
            value: layout(true, 1).per_warp,
            limit: SHARED_MEMORY_LIMIT,
        });
    }
    Ok(layout(radix, class_chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiled forward takes every k whose lists fit 96 KiB, the warp kernel the rest.
    #[test]
    fn forward_kernel_is_tiled_while_the_lists_fit() {
        let p = |k| Params {
            k,
            n_batches: 1024,
            temperature: 1.0,
        };
        let tiled = |kernel: ForwardKernel| matches!(kernel, ForwardKernel::Tiled { .. });
        assert!(tiled(forward_kernel::<f32>(&p(135)).unwrap()));
        assert!(!tiled(forward_kernel::<f32>(&p(136)).unwrap()));
        assert!(tiled(forward_kernel::<f64>(&p(202)).unwrap()));
        assert!(!tiled(forward_kernel::<f64>(&p(203)).unwrap()));
        // The backward: every d ≤ 128 (64,000 bytes in f32 at d = 128, 55,296 in f64).
        assert_eq!(tiled_backward::<f32>(128), Some(64_000));
        assert_eq!(tiled_backward::<f64>(128), Some(55_296));
        assert_eq!(tiled_backward::<f32>(129), None);
        // 15 nearest in f32: 28,928 bytes of tiles and row state, 64 lists of 15 pairs.
        assert_eq!(
            forward_kernel::<f32>(&p(15)).unwrap(),
            ForwardKernel::Tiled {
                shared_bytes: 28_928 + 64 * 15 * 8
            }
        );
    }

    /// Any k and any B up to 1024 get a layout within one block: the lists while they fit,
    /// then radix select; all classes in one sweep while they fit, then chunks.
    #[test]
    fn forward_layout_fits_every_k_and_batch_count() {
        let p = |k, n_batches| Params {
            k,
            n_batches,
            temperature: 1.0,
        };
        let f32_layout = |k, b| forward_layout::<f32>(&p(k, b)).unwrap();
        assert_eq!(
            f32_layout(128, 3),
            ForwardLayout {
                radix: false,
                class_chunk: 3,
                per_warp: 48 + 32768 + 768
            }
        );
        let big_k = f32_layout(1000, 3);
        assert_eq!((big_k.radix, big_k.class_chunk), (true, 3));
        let big_b = f32_layout(15, 1024);
        assert!(!big_b.radix && big_b.class_chunk < 1024, "{big_b:?}");
        for (k, b) in [
            (1, 1),
            (128, 64),
            (129, 64),
            (190, 3),
            (1000, 1024),
            (100_000, 1024),
        ] {
            for layout in [f32_layout(k, b), forward_layout::<f64>(&p(k, b)).unwrap()] {
                assert!(layout.per_warp <= SHARED_MEMORY_LIMIT && layout.per_warp % 8 == 0);
                assert!(
                    layout.class_chunk >= 1 && layout.class_chunk <= b,
                    "{layout:?}"
                );
            }
        }
        let huge_b = forward_layout::<f64>(&p(15, 5000)).unwrap_err().to_string();
        assert!(huge_b.contains("B = 5000"), "{huge_b}");
    }
}
