//! The contract of the fused AUROC-surrogate op, shared by the CPU kernel (`cpu.rs`), the
//! kernel launches (`launch.rs`) and the CUDA kernels (`kernels.rs` writes the layout into
//! `kernels/pairwise_sigmoid_auroc.cuh`).
//!
//! - **Inputs**: scores `[n]` f32 or f64, or f16/bf16 (computed in f32: the CUDA
//!   compaction reads them as they are); labels `[n]` as 0/1 in the compute dtype; the
//!   temperature's value T > 0 (its tensor is an input only to receive ∂/∂T).
//! - **Centres**: the cells `rows` (all n on one device; a rank's own cells when sharded),
//!   each against all of the other class.
//! - **Output** (the scores' dtype), O(n): `[value, ∂value/∂T, ∂value/∂s of each centre]`,
//!   the gradients in input order; value and ∂/∂T summed over the centre positives (the
//!   whole op's when the centres are every cell, a share otherwise); all zero when a class
//!   is empty.

/// Index of the surrogate's value.
pub(crate) const VALUE: usize = 0;
/// Index of ∂value/∂T.
pub(crate) const GRAD_TEMPERATURE: usize = 1;
/// Index of ∂value/∂s_0; the score gradients follow in input order.
pub(crate) const GRAD_SCORES: usize = 2;

/// The kernels' compaction counts (read back by the launch sequence): positives,
/// negatives, and the bounds of the centres' run within each class.
#[cfg_attr(not(any(feature = "cuda", feature = "cuda-emu")), allow(dead_code))]
pub(crate) mod counts {
    pub(crate) const POS: usize = 0;
    pub(crate) const NEG: usize = 1;
    pub(crate) const POS_FIRST: usize = 2;
    pub(crate) const POS_END: usize = 3;
    pub(crate) const NEG_FIRST: usize = 4;
    pub(crate) const NEG_END: usize = 5;
    /// How many there are.
    pub(crate) const LEN: usize = 6;
}
