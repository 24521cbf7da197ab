// The kernels' interface, generated from src/batch_mixing/kernels.rs (see src/kernel_interface.rs):
// do not edit; `DIFFBIO_BLESS=1 cargo test -p diffbio-core kernel_headers` rewrites it.
#pragma once

#define ST_KAPPA 0  // row statistics, after the loss: κ_i
#define ST_DMIN 1  // Dmin_i
#define ST_JSTAR 2  // j*(i), an input row
#define ST_GAMMA 3  // γ_i
#define ST_GRAD_KAPPA 4  // ∂L/∂κ_i
#define ST_BETA 5  // β_i0 .. β_i(B-1)
#define EPS 1e-8  // softmax epsilon (SPEC.md §1)
#define KAPPA_SHIFT 1e-10  // shift of the soft threshold σ((κ − D − shift)/T)
#define TILE_THREADS 256  // threads of a tiled block
#define TILE_SIDE 16  // threads along a side of a tiled block
#define TILE_DEPTH 16  // dimensions staged per step
#define TILE_PAD 4  // shared-memory row padding
#define TILE_F32 64  // rows and columns of an f32 tile
#define TILE_F64 32  // rows and columns of an f64 tile
#define BWD_DIMS 8  // dimensions a tiled-backward thread keeps
#define BWD_WARPS 8  // rows (warps) per block of knn_entropy_bwd
#define RADIX_BUCKETS 16  // buckets of a radix-select pass

// ptx knn_entropy_fwd_f32 s64 s64 s32 s32 s32 s32 s32 s32 f32 s32 s32 s64 s64
// ptx knn_entropy_fwd_f64 s64 s64 s32 s32 s32 s32 s32 s32 f64 s32 s32 s64 s64
// ptx knn_entropy_fwd_f16 s64 s64 s32 s32 s32 s32 s32 s32 f32 s32 s32 s64 s64
// ptx knn_entropy_fwd_bf16 s64 s64 s32 s32 s32 s32 s32 s32 f32 s32 s32 s64 s64
#define KNN_ENTROPY_FWD_PARAMS(T, X) const X* x, const uint32_t* labels, int n, int d, int k, int n_batches, int class_chunk, int radix, T inv_t, int row_start, int n_rows, double* stats, double* entropy
#define KNN_ENTROPY_FWD_ARGS x, labels, n, d, k, n_batches, class_chunk, radix, inv_t, row_start, n_rows, stats, entropy

// ptx knn_entropy_mean_f32 s64 s32 s32 s64
// ptx knn_entropy_mean_f64 s64 s32 s32 s64
// ptx knn_entropy_mean_f16 s64 s32 s32 s64
// ptx knn_entropy_mean_bf16 s64 s32 s32 s64
#define KNN_ENTROPY_MEAN_PARAMS(T, X) const X* x, int n, int d, double* mean
#define KNN_ENTROPY_MEAN_ARGS x, n, d, mean

// ptx knn_entropy_norms_f32 s64 s64 s32 s32 s64
// ptx knn_entropy_norms_f64 s64 s64 s32 s32 s64
// ptx knn_entropy_norms_f16 s64 s64 s32 s32 s64
// ptx knn_entropy_norms_bf16 s64 s64 s32 s32 s64
#define KNN_ENTROPY_NORMS_PARAMS(T, X) const X* x, const double* mean, int n, int d, T* norms
#define KNN_ENTROPY_NORMS_ARGS x, mean, n, d, norms

// ptx knn_entropy_fwd_tiled_f32 s64 s64 s64 s64 s64 s32 s32 s32 s32 s32 f32 s32 s32 s64 s64 s64
// ptx knn_entropy_fwd_tiled_f64 s64 s64 s64 s64 s64 s32 s32 s32 s32 s32 f64 s32 s32 s64 s64 s64
// ptx knn_entropy_fwd_tiled_f16 s64 s64 s64 s64 s64 s32 s32 s32 s32 s32 f32 s32 s32 s64 s64 s64
// ptx knn_entropy_fwd_tiled_bf16 s64 s64 s64 s64 s64 s32 s32 s32 s32 s32 f32 s32 s32 s64 s64 s64
#define KNN_ENTROPY_FWD_TILED_PARAMS(T, X) const X* x, const double* mean, const T* norms, const uint32_t* order, const uint32_t* tile_batch, int n_tiles, int n, int d, int k, int n_batches, T inv_t, int row_start, int n_rows, double* stats, double* class_r, double* entropy
#define KNN_ENTROPY_FWD_TILED_ARGS x, mean, norms, order, tile_batch, n_tiles, n, d, k, n_batches, inv_t, row_start, n_rows, stats, class_r, entropy

// ptx knn_entropy_bwd_tiled_f32 s64 s64 s64 s64 s64 s64 s64 s32 s32 s32 s32 f32 s32 s32 s64
// ptx knn_entropy_bwd_tiled_f64 s64 s64 s64 s64 s64 s64 s64 s32 s32 s32 s32 f64 s32 s32 s64
// ptx knn_entropy_bwd_tiled_f16 s64 s64 s64 s64 s64 s64 s64 s32 s32 s32 s32 f32 s32 s32 s64
// ptx knn_entropy_bwd_tiled_bf16 s64 s64 s64 s64 s64 s64 s64 s32 s32 s32 s32 f32 s32 s32 s64
#define KNN_ENTROPY_BWD_TILED_PARAMS(T, X) const X* x, const double* mean, const T* norms, const uint32_t* labels, const uint32_t* order, const uint32_t* tile_batch, const double* stats, int n_tiles, int n, int d, int n_batches, T inv_t, int row_start, int n_rows, X* grad
#define KNN_ENTROPY_BWD_TILED_ARGS x, mean, norms, labels, order, tile_batch, stats, n_tiles, n, d, n_batches, inv_t, row_start, n_rows, grad

// ptx knn_entropy_bwd_f32 s64 s64 s64 s32 s32 s32 f32 s32 s32 s64 s64
// ptx knn_entropy_bwd_f64 s64 s64 s64 s32 s32 s32 f64 s32 s32 s64 s64
// ptx knn_entropy_bwd_f16 s64 s64 s64 s32 s32 s32 f32 s32 s32 s64 s64
// ptx knn_entropy_bwd_bf16 s64 s64 s64 s32 s32 s32 f32 s32 s32 s64 s64
#define KNN_ENTROPY_BWD_PARAMS(T, X) const X* x, const uint32_t* labels, const double* stats, int n, int d, int n_batches, T inv_t, int row_start, int n_rows, X* grad, T* workspace
#define KNN_ENTROPY_BWD_ARGS x, labels, stats, n, d, n_batches, inv_t, row_start, n_rows, grad, workspace

// ptx knn_entropy_loss_f64 s64 s32 s32 s32 s64
#define KNN_ENTROPY_LOSS_PARAMS(T, X) const double* entropy, int n_rows, int n, int n_batches, double* out
#define KNN_ENTROPY_LOSS_ARGS entropy, n_rows, n, n_batches, out

#define KNN_ENTROPY_INSTANCES(KERNEL) \
    KERNEL(knn_entropy_fwd_f32) \
    KERNEL(knn_entropy_fwd_f64) \
    KERNEL(knn_entropy_fwd_f16) \
    KERNEL(knn_entropy_fwd_bf16) \
    KERNEL(knn_entropy_mean_f32) \
    KERNEL(knn_entropy_mean_f64) \
    KERNEL(knn_entropy_mean_f16) \
    KERNEL(knn_entropy_mean_bf16) \
    KERNEL(knn_entropy_norms_f32) \
    KERNEL(knn_entropy_norms_f64) \
    KERNEL(knn_entropy_norms_f16) \
    KERNEL(knn_entropy_norms_bf16) \
    KERNEL(knn_entropy_fwd_tiled_f32) \
    KERNEL(knn_entropy_fwd_tiled_f64) \
    KERNEL(knn_entropy_fwd_tiled_f16) \
    KERNEL(knn_entropy_fwd_tiled_bf16) \
    KERNEL(knn_entropy_bwd_tiled_f32) \
    KERNEL(knn_entropy_bwd_tiled_f64) \
    KERNEL(knn_entropy_bwd_tiled_f16) \
    KERNEL(knn_entropy_bwd_tiled_bf16) \
    KERNEL(knn_entropy_bwd_f32) \
    KERNEL(knn_entropy_bwd_f64) \
    KERNEL(knn_entropy_bwd_f16) \
    KERNEL(knn_entropy_bwd_bf16) \
    KERNEL(knn_entropy_loss_f64) \
    /* end */

#define KNN_ENTROPY_FWD_SHARED(PART) \
    PART(double, total_s, (size_t)n_batches) PART(double, total_r, (size_t)n_batches) \
    PART(T, top_d, WARP * (radix ? 0 : (size_t)k)) PART(int, top_j, WARP * (radix ? 0 : (size_t)k)) \
    PART(int, hist, (radix ? (size_t)RADIX_BUCKETS * (WARP + 1) : 0)) PART(T, acc_s, (size_t)class_chunk * WARP) \
    PART(T, acc_r, (size_t)class_chunk * WARP) \
    /* end */

#define KNN_ENTROPY_TILED_FWD_SHARED(PART) \
    PART(T, a, TILE_DEPTH * (S::ROWS + TILE_PAD)) PART(T, b, TILE_DEPTH * (S::COLS + TILE_PAD)) \
    PART(T, dist, S::ROWS * (S::COLS + TILE_PAD)) PART(T, row_norm, S::ROWS) \
    PART(T, col_norm, S::COLS) PART(int, row_i, S::ROWS) \
    PART(int, col_j, S::COLS) PART(T, kappa, S::ROWS) \
    PART(T, dmin, S::ROWS) PART(T, q, S::ROWS) \
    PART(double, z, S::ROWS) PART(int, jstar, S::ROWS) \
    PART(int, count, S::ROWS) PART(T, list_d, S::ROWS * (size_t)k) \
    PART(int, list_j, S::ROWS * (size_t)k) \
    /* end */

#define KNN_ENTROPY_TILED_BWD_SHARED(PART) \
    PART(T, row_gamma, S::ROWS) PART(T, row_grad_kappa, S::ROWS) \
    PART(T, row_beta, S::ROWS) PART(int, row_label, S::ROWS) \
    PART(T, col_dmin, S::COLS) PART(T, col_q, S::COLS) \
    PART(T, col_gamma, S::COLS) PART(T, col_grad_kappa, S::COLS) \
    PART(int, col_jstar, S::COLS) PART(T, col_x, S::COLS * (size_t)d) \
    /* end */
