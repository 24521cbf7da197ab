// The kernels' interface, generated from src/auroc/kernels.rs (see src/kernel_interface.rs):
// do not edit; `DIFFBIO_BLESS=1 cargo test -p diffbio-core kernel_headers` rewrites it.
#pragma once

#define OUT_VALUE 0  // out = [value, ∂value/∂T, ∂value/∂s of each centre]
#define OUT_GRAD_TEMPERATURE 1  // ∂value/∂T
#define OUT_GRAD_SCORES 2  // ∂value/∂s of the first centre
#define COUNT_POS 0  // compaction counts: positives
#define COUNT_NEG 1  // negatives
#define COUNT_POS_FIRST 2  // the centres' run among the positives
#define COUNT_POS_END 3  // its end
#define COUNT_NEG_FIRST 4  // the centres' run among the negatives
#define COUNT_NEG_END 5  // its end
#define COUNTS 6  // how many counts there are
#define PAIR_WARPS 8  // warps of a pair-sweep block
#define PAIR_ROWS 8  // centres per warp of the pair sweeps

// ptx auroc_compact_f32 s64 s64 s64 s64 s64 s64 s64 s64 s64 s64
// ptx auroc_compact_f64 s64 s64 s64 s64 s64 s64 s64 s64 s64 s64
// ptx auroc_compact_f16 s64 s64 s64 s64 s64 s64 s64 s64 s64 s64
// ptx auroc_compact_bf16 s64 s64 s64 s64 s64 s64 s64 s64 s64 s64
#define AUROC_COMPACT_PARAMS(T, X) const X* scores, const T* labels, int64_t n, int64_t row_start, int64_t n_rows, T* pos_scores, int64_t* pos_index, T* neg_scores, int64_t* neg_index, int64_t* counts
#define AUROC_COMPACT_ARGS scores, labels, n, row_start, n_rows, pos_scores, pos_index, neg_scores, neg_index, counts

// ptx auroc_centres_f32 s64 s64 s64 s64 s64 f32 s64
// ptx auroc_centres_f64 s64 s64 s64 s64 s64 f64 s64
#define AUROC_CENTRES_PARAMS(T, X) const T* class_scores, int64_t first, int64_t end, const T* others, int64_t n_others, T scale, T* sums
#define AUROC_CENTRES_ARGS class_scores, first, end, others, n_others, scale, sums

// ptx auroc_pairs_f32 s64 s64 s64 s64 f32 s64 s64
// ptx auroc_pairs_f64 s64 s64 s64 s64 f64 s64 s64
#define AUROC_PAIRS_PARAMS(T, X) const T* pos, int64_t n_pos, const T* neg, int64_t n_neg, T scale, T* pos_sums, T* partials
#define AUROC_PAIRS_ARGS pos, n_pos, neg, n_neg, scale, pos_sums, partials

// ptx auroc_columns_f32 s64 s32 s64 s64
// ptx auroc_columns_f64 s64 s32 s64 s64
#define AUROC_COLUMNS_PARAMS(T, X) const T* partials, int n_blocks, int64_t n_neg, T* neg_sums
#define AUROC_COLUMNS_ARGS partials, n_blocks, n_neg, neg_sums

// ptx auroc_finish_f32 s64 s64 s64 s64 s64 s64 f64 f32 s64
// ptx auroc_finish_f64 s64 s64 s64 s64 s64 s64 f64 f64 s64
#define AUROC_FINISH_PARAMS(T, X) const T* pos_sums, const int64_t* pos_index, const T* neg_sums, const int64_t* neg_index, const int64_t* counts, int64_t row_start, double norm, T inv_t, T* out
#define AUROC_FINISH_ARGS pos_sums, pos_index, neg_sums, neg_index, counts, row_start, norm, inv_t, out

#define AUROC_INSTANCES(KERNEL) \
    KERNEL(auroc_compact_f32) \
    KERNEL(auroc_compact_f64) \
    KERNEL(auroc_compact_f16) \
    KERNEL(auroc_compact_bf16) \
    KERNEL(auroc_centres_f32) \
    KERNEL(auroc_centres_f64) \
    KERNEL(auroc_pairs_f32) \
    KERNEL(auroc_pairs_f64) \
    KERNEL(auroc_columns_f32) \
    KERNEL(auroc_columns_f64) \
    KERNEL(auroc_finish_f32) \
    KERNEL(auroc_finish_f64) \
    /* end */
