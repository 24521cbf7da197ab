//! The contract of the fused AUROC-surrogate op, shared by the CPU kernel (`cpu.rs`), the
//! kernel launches (`launch.rs`) and the CUDA kernels (`kernels/pairwise_sigmoid_auroc.cuh`
//! repeats the layout; a test checks that they agree).
//!
//! - **Inputs**: scores `[n]` f32 or f64; labels `[n]` as 0/1 in the scores' dtype; the
//!   temperature's value T > 0 (its tensor is an input only to receive ∂/∂T).
//! - **Output** (the scores' dtype), O(n): `[value, ∂value/∂T, ∂value/∂s_0, ...,
//!   ∂value/∂s_{n−1}]`, the gradients in input order; all zero when a class is empty.

/// Index of the surrogate's value.
pub(crate) const VALUE: usize = 0;
/// Index of ∂value/∂T.
pub(crate) const GRAD_TEMPERATURE: usize = 1;
/// Index of ∂value/∂s_0; the score gradients follow in input order.
pub(crate) const GRAD_SCORES: usize = 2;

#[cfg(test)]
mod tests {
    use super::{GRAD_SCORES, GRAD_TEMPERATURE, VALUE};
    use crate::kernel_header::assert_defines;

    #[test]
    fn the_cuda_header_repeats_the_contract() {
        let expect = [
            ("OUT_VALUE", VALUE as f64),
            ("OUT_GRAD_TEMPERATURE", GRAD_TEMPERATURE as f64),
            ("OUT_GRAD_SCORES", GRAD_SCORES as f64),
        ];
        assert_defines(
            "pairwise_sigmoid_auroc.cuh",
            include_str!("../../kernels/pairwise_sigmoid_auroc.cuh"),
            &expect,
        );
    }
}
