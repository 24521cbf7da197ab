//! The interface of the batch-mixing kernels (`kernels/knn_entropy.cu`), declared once
//! (see [`crate::kernel_interface`]): every kernel's parameters, the constants the kernels
//! and `launch.rs` share, and the kernels' dynamic shared memory. `kernels/knn_entropy.cuh`
//! is written from here.

use crate::kernel_interface::{kernel, layout, Elem, Kernel, SharedLayout, INT, REAL};

use crate::kernel_interface::Param::{Read, Write};
use Elem::{Input, Real, F64, U32};

/// Threads of a tiled block (16 × 16, each SUB × SUB distances).
pub(crate) const TILE_THREADS: u32 = 256;
/// Threads along each side of a tiled block.
const TILE_SIDE: usize = 16;
/// Dimensions staged per step of the tiled kernels.
pub(crate) const TILE_DEPTH: usize = 16;
/// Shared-memory row padding of the tiled kernels (fewer bank conflicts, 16-byte rows).
pub(crate) const TILE_PAD: usize = 4;
/// Rows (and columns) of an f32 tile; an f64 tile has [`TILE_F64`].
pub(crate) const TILE_F32: usize = 64;
/// Rows (and columns) of an f64 tile.
pub(crate) const TILE_F64: usize = 32;
/// Dimensions a thread of the tiled backward keeps: it takes d ≤ 16 · 8 = 128.
pub(crate) const BWD_DIMS: usize = 8;
/// Dimensions the tiled backward takes at most.
pub(crate) const TILED_BACKWARD_DIMS: usize = TILE_SIDE * BWD_DIMS;
/// Warps (rows) per block of `knn_entropy_bwd` (its shared memory is static).
pub(crate) const BWD_WARPS: usize = 8;
/// Buckets of a radix-select pass of `knn_entropy_fwd` (16 per lane, and their totals).
pub(crate) const RADIX_BUCKETS: usize = 16;

/// `knn_entropy_fwd_*`: the warp-per-row forward (any k).
pub(crate) const FORWARD: Kernel = kernel!(KnnEntropy, knn_entropy_fwd, EachInput, [
    x: Read(Input), labels: Read(U32), n: INT, d: INT, k: INT, n_batches: INT,
    class_chunk: INT, radix: INT, inv_t: REAL, row_start: INT, n_rows: INT, stats: Write(F64),
    entropy: Write(F64),
]);

/// `knn_entropy_mean_*`: the column means, one block per dimension.
pub(crate) const MEAN: Kernel = kernel!(KnnEntropy, knn_entropy_mean, EachInput, [
    x: Read(Input), n: INT, d: INT, mean: Write(F64),
]);

/// `knn_entropy_norms_*`: the centred squared norms, one thread per row.
pub(crate) const NORMS: Kernel = kernel!(KnnEntropy, knn_entropy_norms, EachInput, [
    x: Read(Input), mean: Read(F64), n: INT, d: INT, norms: Write(Real),
]);

/// `knn_entropy_fwd_tiled_*`: the tiled forward, one block per tile of rows.
pub(crate) const TILED_FORWARD: Kernel = kernel!(KnnEntropy, knn_entropy_fwd_tiled, EachInput, [
    x: Read(Input), mean: Read(F64), norms: Read(Real), order: Read(U32),
    tile_batch: Read(U32), n_tiles: INT, n: INT, d: INT, k: INT, n_batches: INT, inv_t: REAL,
    row_start: INT, n_rows: INT, stats: Write(F64), class_r: Write(F64), entropy: Write(F64),
]);

/// `knn_entropy_bwd_tiled_*`: the tiled backward (d ≤ 128), one block per tile of rows.
pub(crate) const TILED_BACKWARD: Kernel = kernel!(KnnEntropy, knn_entropy_bwd_tiled, EachInput, [
    x: Read(Input), mean: Read(F64), norms: Read(Real), labels: Read(U32), order: Read(U32),
    tile_batch: Read(U32), stats: Read(F64), n_tiles: INT, n: INT, d: INT, n_batches: INT,
    inv_t: REAL, row_start: INT, n_rows: INT, grad: Write(Input),
]);

/// `knn_entropy_bwd_*`: the warp-per-row backward (any d).
pub(crate) const BACKWARD: Kernel = kernel!(KnnEntropy, knn_entropy_bwd, EachInput, [
    x: Read(Input), labels: Read(U32), stats: Read(F64), n: INT, d: INT, n_batches: INT,
    inv_t: REAL, row_start: INT, n_rows: INT, grad: Write(Input), workspace: Write(Real),
]);

/// `knn_entropy_loss_f64`: the rows' share of the loss, a fixed-order sum.
pub(crate) const LOSS: Kernel = kernel!(KnnEntropy, knn_entropy_loss, F64, [
    entropy: Read(F64), n_rows: INT, n: INT, n_batches: INT, out: Write(F64),
]);

/// The kernels of `knn_entropy.cu`, in the header's order.
#[cfg(test)]
pub(crate) const KERNELS: [&Kernel; 7] = [
    &FORWARD,
    &MEAN,
    &NORMS,
    &TILED_FORWARD,
    &TILED_BACKWARD,
    &BACKWARD,
    &LOSS,
];

/// The warp forward's shared memory per warp (`WarpShared` in `knn_entropy.cu`): the class
/// totals S_c and R_c, the selection (32·k (distance, index) pairs, or the radix
/// histogram), and the per-lane sums of one chunk of classes, `[class][lane]`. None of it
/// grows with d.
pub(crate) const FORWARD_SHARED: SharedLayout = layout!(KNN_ENTROPY_FWD_SHARED, [
    total_s: F64[Batches], total_r: F64[Batches], top_d: Real[Lanes, ListK],
    top_j: U32[Lanes, ListK], hist: U32[RadixCounters], acc_s: Real[ClassChunk, Lanes],
    acc_r: Real[ClassChunk, Lanes],
]);

/// The tiled forward's shared memory (`TiledShared`): the staged dimensions, the distance
/// tile, per-row and per-column state, and the rows' sorted lists of k (distance, index).
pub(crate) const TILED_FORWARD_SHARED: SharedLayout = layout!(KNN_ENTROPY_TILED_FWD_SHARED, [
    a: Real[Depth, PaddedRows], b: Real[Depth, PaddedCols], dist: Real[Rows, PaddedCols],
    row_norm: Real[Rows], col_norm: Real[Cols], row_i: U32[Rows], col_j: U32[Cols],
    kappa: Real[Rows], dmin: Real[Rows], q: Real[Rows], z: F64[Rows], jstar: U32[Rows],
    count: U32[Rows], list_d: Real[Rows, K], list_j: U32[Rows, K],
]);

/// The tiled backward's shared memory after the forward's at k = 0 (`TiledBwdShared`):
/// per-row and per-column statistics, and the column tile's centred points.
pub(crate) const TILED_BACKWARD_SHARED: SharedLayout = layout!(KNN_ENTROPY_TILED_BWD_SHARED, [
    row_gamma: Real[Rows], row_grad_kappa: Real[Rows], row_beta: Real[Rows],
    row_label: U32[Rows], col_dmin: Real[Cols], col_q: Real[Cols], col_gamma: Real[Cols],
    col_grad_kappa: Real[Cols], col_jstar: U32[Cols], col_x: Real[Cols, D],
]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_interface::{assert_header_current, header, Constant};

    /// The constants of `knn_entropy.cuh`.
    const CONSTANTS: [Constant; 17] = {
        use super::super::contract::{RowStats, EPS, KAPPA_SHIFT};
        use crate::kernel_interface::{ConstValue::Float, Constant};
        let int = Constant::int;
        [
            int(
                "ST_KAPPA",
                RowStats::KAPPA,
                "row statistics, after the loss: κ_i",
            ),
            int("ST_DMIN", RowStats::DMIN, "Dmin_i"),
            int("ST_JSTAR", RowStats::JSTAR, "j*(i), an input row"),
            int("ST_GAMMA", RowStats::GAMMA, "γ_i"),
            int("ST_GRAD_KAPPA", RowStats::GRAD_KAPPA, "∂L/∂κ_i"),
            int("ST_BETA", RowStats::BETA, "β_i0 .. β_i(B-1)"),
            Constant {
                name: "EPS",
                value: Float(EPS),
                doc: "softmax epsilon (SPEC.md §1)",
            },
            Constant {
                name: "KAPPA_SHIFT",
                value: Float(KAPPA_SHIFT),
                doc: "shift of the soft threshold σ((κ − D − shift)/T)",
            },
            int(
                "TILE_THREADS",
                TILE_THREADS as usize,
                "threads of a tiled block",
            ),
            int(
                "TILE_SIDE",
                TILE_SIDE,
                "threads along a side of a tiled block",
            ),
            int("TILE_DEPTH", TILE_DEPTH, "dimensions staged per step"),
            int("TILE_PAD", TILE_PAD, "shared-memory row padding"),
            int("TILE_F32", TILE_F32, "rows and columns of an f32 tile"),
            int("TILE_F64", TILE_F64, "rows and columns of an f64 tile"),
            int(
                "BWD_DIMS",
                BWD_DIMS,
                "dimensions a tiled-backward thread keeps",
            ),
            int(
                "BWD_WARPS",
                BWD_WARPS,
                "rows (warps) per block of knn_entropy_bwd",
            ),
            int(
                "RADIX_BUCKETS",
                RADIX_BUCKETS,
                "buckets of a radix-select pass",
            ),
        ]
    };

    #[test]
    fn kernel_headers_are_current() {
        let layouts = [
            &FORWARD_SHARED,
            &TILED_FORWARD_SHARED,
            &TILED_BACKWARD_SHARED,
        ];
        let text = header(
            "KNN_ENTROPY",
            "src/batch_mixing/kernels.rs",
            &CONSTANTS,
            &KERNELS,
            &layouts,
        );
        assert_header_current("knn_entropy.cuh", &text);
    }
}
