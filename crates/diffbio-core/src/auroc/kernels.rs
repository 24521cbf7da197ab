//! The interface of the AUROC-surrogate kernels (`kernels/pairwise_sigmoid_auroc.cu`),
//! declared once (see [`crate::kernel_interface`]): every kernel's parameters and the
//! constants the kernels and `launch.rs` share. `kernels/pairwise_sigmoid_auroc.cuh` is
//! written from here.

use crate::kernel_interface::{kernel, Elem, Kernel, DOUBLE, INT, INT64, REAL};

use crate::kernel_interface::Param::{Read, Write};
use Elem::{Input, Real, I64};

/// Warps of a block of the pair sweeps.
pub(crate) const PAIR_WARPS: usize = 8;
/// Centres per warp (per thread) of the pair sweeps.
pub(crate) const PAIR_ROWS: usize = 8;

/// `auroc_compact_*`: the scores split into positives and negatives, with their indices
/// and counts (one block).
pub(crate) const COMPACT: Kernel = kernel!(PairwiseSigmoidAuroc, auroc_compact, EachInput, [
    scores: Read(Input), labels: Read(Real), n: INT64, row_start: INT64, n_rows: INT64,
    pos_scores: Write(Real), pos_index: Write(I64), neg_scores: Write(Real),
    neg_index: Write(I64), counts: Write(I64),
]);

/// `auroc_centres_*`: each centre of `class_scores[first..end]` against all others.
pub(crate) const CENTRES: Kernel = kernel!(PairwiseSigmoidAuroc, auroc_centres, EachReal, [
    class_scores: Read(Real), first: INT64, end: INT64, others: Read(Real), n_others: INT64,
    scale: REAL, sums: Write(Real),
]);

/// `auroc_pairs_*`: one sweep of all positives × negatives, per-block column sums.
pub(crate) const PAIRS: Kernel = kernel!(PairwiseSigmoidAuroc, auroc_pairs, EachReal, [
    pos: Read(Real), n_pos: INT64, neg: Read(Real), n_neg: INT64, scale: REAL,
    pos_sums: Write(Real), partials: Write(Real),
]);

/// `auroc_columns_*`: each negative's sums over the blocks, in block order.
pub(crate) const COLUMNS: Kernel = kernel!(PairwiseSigmoidAuroc, auroc_columns, EachReal, [
    partials: Read(Real), n_blocks: INT, n_neg: INT64, neg_sums: Write(Real),
]);

/// `auroc_finish_*`: the per-centre sums scattered into the output.
pub(crate) const FINISH: Kernel = kernel!(PairwiseSigmoidAuroc, auroc_finish, EachReal, [
    pos_sums: Read(Real), pos_index: Read(I64), neg_sums: Read(Real), neg_index: Read(I64),
    counts: Read(I64), row_start: INT64, norm: DOUBLE, inv_t: REAL, out: Write(Real),
]);

/// The kernels of `pairwise_sigmoid_auroc.cu`, in the header's order.
#[cfg(test)]
pub(crate) const KERNELS: [&Kernel; 5] = [&COMPACT, &CENTRES, &PAIRS, &COLUMNS, &FINISH];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_interface::{assert_header_current, header, Constant};

    #[test]
    fn kernel_headers_are_current() {
        let text = header("AUROC", "src/auroc/kernels.rs", &CONSTANTS, &KERNELS, &[]);
        assert_header_current("pairwise_sigmoid_auroc.cuh", &text);
    }

    /// The constants of `pairwise_sigmoid_auroc.cuh`.
    const CONSTANTS: [Constant; 12] = {
        use super::super::contract::{counts, GRAD_SCORES, GRAD_TEMPERATURE, VALUE};
        let int = Constant::int;
        [
            int(
                "OUT_VALUE",
                VALUE,
                "out = [value, ∂value/∂T, ∂value/∂s of each centre]",
            ),
            int("OUT_GRAD_TEMPERATURE", GRAD_TEMPERATURE, "∂value/∂T"),
            int(
                "OUT_GRAD_SCORES",
                GRAD_SCORES,
                "∂value/∂s of the first centre",
            ),
            int("COUNT_POS", counts::POS, "compaction counts: positives"),
            int("COUNT_NEG", counts::NEG, "negatives"),
            int(
                "COUNT_POS_FIRST",
                counts::POS_FIRST,
                "the centres' run among the positives",
            ),
            int("COUNT_POS_END", counts::POS_END, "its end"),
            int(
                "COUNT_NEG_FIRST",
                counts::NEG_FIRST,
                "the centres' run among the negatives",
            ),
            int("COUNT_NEG_END", counts::NEG_END, "its end"),
            int("COUNTS", counts::LEN, "how many counts there are"),
            int("PAIR_WARPS", PAIR_WARPS, "warps of a pair-sweep block"),
            int(
                "PAIR_ROWS",
                PAIR_ROWS,
                "centres per warp of the pair sweeps",
            ),
        ]
    };
}
