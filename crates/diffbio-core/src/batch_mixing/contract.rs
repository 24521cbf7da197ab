//! The contract of the fused batch-mixing op, shared by the CPU kernels (`cpu.rs`), the
//! kernel launches (`launch.rs`) and the CUDA kernels (`kernels.rs` writes the layout and
//! the constants into `kernels/knn_entropy.cuh`).
//!
//! - **Inputs**: `x`, `[n, d]` row-major f32 or f64, or f16/bf16 (computed in f32: the CUDA
//!   kernels read them as they are, the CPU kernels a widened copy); labels `[n]` u32 in
//!   `0..B`.
//! - **Distances**: `D_ij = |x_i − x_j|²`, the squared Euclidean distance, with the cell
//!   itself excluded (`D_ii = +∞`). The CPU computes it as `|x_i|² + |x_j|² − 2 x_i·x_j`
//!   from matrix-product tiles (clamped at 0) of the points centred on their mean (so
//!   that rounding scales with the spread of the points, not their distance from the
//!   origin), and so does the tiled CUDA forward (the centred values rounded to the input
//!   precision as here, the sums in another order), and so does the tiled CUDA backward
//!   (d ≤ 128); the warp-per-row kernels (the forward at large k, the backward at d > 128)
//!   use the direct form `Σ (x_i − x_j)²`. They differ by rounding only (about
//!   ε·|x − mean|², which a low temperature amplifies by 1/T).
//! - **Neighbours**: κ_i is the exact k-th smallest `D_i·` in the total order (distance,
//!   then the smaller index); j*(i) is the neighbour at that rank.
//! - **Output** (f64 whatever the input dtype): `[loss, stats of row 0, row 1, ...]`, the
//!   statistics in **input row order**, [`RowStats::width`] values per row, j*(i) an input
//!   row index. The backward op reads them back in the same layout.

/// The op's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    /// k, the soft-neighbourhood size (1 ≤ k ≤ n − 1).
    pub k: usize,
    /// B, the number of batches.
    pub n_batches: usize,
    /// T, the temperature (> 0).
    pub temperature: f64,
}

/// Softmax epsilon of SPEC.md §1 (`w_ij` denominator and `log(p + ε)`).
pub(crate) const EPS: f64 = 1e-8;
/// Shift inside the soft threshold `σ((κ − D − 1e-10)/T)`.
pub(crate) const KAPPA_SHIFT: f64 = 1e-10;

/// Layout of one row's statistics in the op output (after the loss at index 0).
pub(crate) struct RowStats;

impl RowStats {
    /// κ_i, the k-th smallest distance.
    pub(crate) const KAPPA: usize = 0;
    /// Dmin_i, the row minimum (the softmax shift).
    pub(crate) const DMIN: usize = 1;
    /// j*(i), the input row at distance κ_i (exact in f64).
    pub(crate) const JSTAR: usize = 2;
    /// γ_i = 10⁻⁸ · ∂L/∂den_i: coefficient of ∂Z_i.
    pub(crate) const GAMMA: usize = 3;
    /// ∂L/∂κ_i = Σ_c β_ic R_ic / T.
    pub(crate) const GRAD_KAPPA: usize = 4;
    /// β_ic = ∂L/∂S_ic for c in 0..B.
    pub(crate) const BETA: usize = 5;

    /// Values per row for B batches.
    pub(crate) const fn width(n_batches: usize) -> usize {
        Self::BETA + n_batches
    }
}
