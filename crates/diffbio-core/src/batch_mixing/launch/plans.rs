//! One plan per kernel: its launch shape, its buffers in the order the kernel declares
//! them and its scalars by name ([`Launch::build`] puts them in the declared order and
//! checks them against the declaration in `kernels.rs`).

use std::ops::Range;

use super::super::contract::Params;
use super::super::kernels::{self, BWD_WARPS, TILE_THREADS};
use super::shared_memory::{tile_shape, ForwardLayout};
use crate::kernel_interface::Kernel;
use crate::launch::{
    as_i32, warps_per_block, Buffers, KernelInput, KernelReal, Launch, LaunchShape,
    ScalarArg::{self, Size, Value},
};

/// The scalars of the batch-mixing kernels that launch `rows` of n cells of d dimensions,
/// by parameter name (each kernel takes those it declares).
fn scalars(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
) -> Vec<(&'static str, ScalarArg)> {
    vec![
        ("n", Size(n)),
        ("d", Size(d)),
        ("k", Size(p.k)),
        ("n_batches", Size(p.n_batches)),
        ("inv_t", Value(1.0 / p.temperature)),
        ("row_start", Size(rows.start)),
        ("n_rows", Size(rows.len())),
    ]
}

/// [`kernels::MEAN`]: one block of 256 threads per dimension.
pub(super) fn mean_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let shape = LaunchShape {
        grid: as_i32(d, "d")? as u32,
        block: TILE_THREADS,
        shared_bytes: 0,
    };
    let scalars = [("n", Size(n)), ("d", Size(d))];
    Launch::build::<X>(&kernels::MEAN, shape, buffers, &scalars)
}

/// [`kernels::NORMS`]: one thread per row.
pub(super) fn norms_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let shape = LaunchShape::threads(n, TILE_THREADS);
    let scalars = [("n", Size(n)), ("d", Size(d))];
    Launch::build::<X>(&kernels::NORMS, shape, buffers, &scalars)
}

/// One of the tiled kernels ([`kernels::TILED_FORWARD`], [`kernels::TILED_BACKWARD`]): one
/// block per tile of rows, `n_tiles` tiles of columns.
pub(crate) fn tiled_plan<X: KernelInput, B>(
    kernel: &Kernel,
    dims: (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    (n_tiles, shared_bytes): (usize, usize),
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let shape = tiled_shape::<X::Real>(rows, shared_bytes)?;
    let mut scalars = scalars(dims, rows, p);
    scalars.push(("n_tiles", Size(n_tiles)));
    Launch::build::<X>(kernel, shape, buffers, &scalars)
}

/// [`kernels::FORWARD`] with `layout` ([`super::shared_memory::forward_layout`]).
pub(crate) fn forward_plan<X: KernelInput, B>(
    dims: (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    layout: ForwardLayout,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let what = "batch mixing (k-NN selection and class sums)";
    let warps = warps_per_block(layout.per_warp, what)?;
    let shape = LaunchShape::rows(rows.len(), warps, layout.per_warp);
    let mut scalars = scalars(dims, rows, p);
    scalars.push(("class_chunk", Size(layout.class_chunk)));
    scalars.push(("radix", Size(usize::from(layout.radix))));
    Launch::build::<X>(&kernels::FORWARD, shape, buffers, &scalars)
}

/// [`kernels::LOSS`]: `out[0]` = the share of the loss of n cells of `n_rows` rows, a
/// fixed-order sum.
pub(crate) fn loss_plan<B>(
    (n_rows, n): (usize, usize),
    p: &Params,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let scalars = [
        ("n_rows", Size(n_rows)),
        ("n", Size(n)),
        ("n_batches", Size(p.n_batches)),
    ];
    Launch::build::<f64>(
        &kernels::LOSS,
        LaunchShape::single_block(),
        buffers,
        &scalars,
    )
}

/// The launch shape of both tiled kernels: a block of 256 threads per tile of rows.
pub(super) fn tiled_shape<T: KernelReal>(
    rows: &Range<usize>,
    shared_bytes: usize,
) -> candle_core::Result<LaunchShape> {
    Ok(LaunchShape {
        grid: as_i32(rows.len().div_ceil(tile_shape::<T>().0), "row tiles")? as u32,
        block: TILE_THREADS,
        shared_bytes: shared_bytes as u32,
    })
}

/// Elements of `knn_entropy_bwd`'s workspace: the rows' sums in f32 for an f16/bf16 input
/// (rounded into the gradient at the end), one unused element otherwise (the gradient
/// itself holds them).
pub(super) fn backward_workspace<X: KernelInput>(n_rows: usize, d: usize) -> usize {
    // As the kernel's `std::is_same<T, X>`: does x come in the dtype it is computed in?
    if X::DTYPE == <X::Real as candle_core::WithDType>::DTYPE {
        1
    } else {
        n_rows * d
    }
}

/// [`kernels::BACKWARD`]: one warp per row, 8 a block; any d.
pub(crate) fn backward_plan<X: KernelInput, B>(
    dims: (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let shape = LaunchShape::rows(rows.len(), BWD_WARPS, 0);
    Launch::build::<X>(&kernels::BACKWARD, shape, buffers, &scalars(dims, rows, p))
}

#[cfg(test)]
mod tests {
    use super::super::shared_memory::forward_layout;
    use super::*;
    use crate::launch::{placeholder_buffers, Arg};

    #[test]
    fn forward_plan_sizes_shared_memory_per_row() {
        let p = Params {
            k: 15,
            n_batches: 3,
            temperature: 0.5,
        };
        let args = || placeholder_buffers::<f32>(&kernels::FORWARD);
        let layout = forward_layout::<f32>(&p).unwrap();
        let plan = forward_plan::<f32, ()>((1000, 64), &(200..500), &p, layout, args()).unwrap();
        let per_warp = 2 * 3 * 8 + 32 * 15 * 8 + 2 * 3 * 32 * 4;
        assert_eq!(plan.kernel, "knn_entropy_fwd_f32");
        assert_eq!(plan.shape, LaunchShape::rows(300, 8, per_warp));
        assert_eq!(plan.args.len(), 13);
        assert!(matches!(
            (&plan.args[6], &plan.args[7]),
            (Arg::I32(3), Arg::I32(0))
        ));
        assert!(matches!(plan.args[8], Arg::F32(v) if v == 2.0));
        assert!(matches!(
            (&plan.args[9], &plan.args[10]),
            (Arg::I32(200), Arg::I32(300))
        ));
        let back_args = placeholder_buffers::<f64>(&kernels::BACKWARD);
        let back = backward_plan::<f64, ()>((10, 3), &(0..10), &p, back_args).unwrap();
        assert_eq!(back.shape, LaunchShape::rows(10, 8, 0));
        assert_eq!(back.args.len(), 11);
        let back_args = placeholder_buffers::<f32>(&kernels::BACKWARD);
        let huge_d = backward_plan::<f32, ()>((10, 100_000), &(0..10), &p, back_args).unwrap();
        assert_eq!(huge_d.shape, back.shape);
        assert_eq!(backward_workspace::<f32>(10, 7), 1);
        assert_eq!(backward_workspace::<half::bf16>(10, 7), 70);
    }
}
