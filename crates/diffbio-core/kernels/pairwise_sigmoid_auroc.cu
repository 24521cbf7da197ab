// Pairwise-sigmoid AUROC surrogate (SPEC.md §6), value and gradients in one forward.
//
//   auroc = Σ_{i∈P, j∈N} σ((s_i − s_j)/T) / (|P|·|N|)
//
// The centres are the cells [row_start, row_start + n_rows) (all of them on one device, a
// rank's own cells when the surrogate is sharded), each against all of the other class:
// 1. auroc_compact_*: one block gathers positives and negatives once (stable, in input
//    order) with a block-wide scan, recording each one's input position; being stable,
//    the centres of each class are one contiguous run of it, whose bounds it also finds.
// 2. auroc_pairs_*: one thread per centre (a positive, or a negative in the mirror pass)
//    sweeps all the other class through shared-memory tiles and sums σ, σ' and σ'·z. Every
//    thread owns its sums, so there are no atomics.
// 3. auroc_finish_*: one block sums the centre positives' values and ∂/∂T terms in a
//    fixed order and scatters ∂/∂s to the output: out = [value, ∂/∂T, ∂/∂s of each centre]
//    (the whole surrogate when the centres are every cell, a share of it otherwise).
// Pair counts are 64-bit; the 1/(|P||N|) normalisation is passed in as a double.

#include <stdint.h>

#include "common.cuh"
#include "pairwise_sigmoid_auroc.cuh"

#define TILE 1024

// The first of the `len` sorted `index` values that is >= `bound`.
__device__ __forceinline__ int64_t lower_bound(const int64_t* index, int64_t len, int64_t bound) {
    int64_t lo = 0, hi = len;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (index[mid] < bound) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// Stable compaction by a block-wide exclusive scan (one block, blockDim.x = 1024).
// Writes pos_scores/pos_index (label 1) and neg_scores/neg_index (label 0), and counts:
// [n_pos, n_neg, first and end of the centre positives, first and end of the centre
// negatives] (COUNT_* in the header).
template <typename T>
__device__ void auroc_compact(const T* __restrict__ scores, const T* __restrict__ labels, int64_t n,
                              int64_t row_start, int64_t n_rows, T* pos_scores, int64_t* pos_index,
                              T* neg_scores, int64_t* neg_index, int64_t* counts) {
    __shared__ int64_t scan[1024];
    const int t = threadIdx.x;
    const int64_t per = (n + blockDim.x - 1) / blockDim.x;
    const int64_t lo = min(n, per * t), hi = min(n, lo + per);
    int64_t mine = 0;
    for (int64_t e = lo; e < hi; ++e) mine += labels[e] == (T)1;
    scan[t] = mine;
    __syncthreads();
    for (int off = 1; off < blockDim.x; off *= 2) {  // Hillis–Steele inclusive scan
        int64_t v = t >= off ? scan[t - off] : 0;
        __syncthreads();
        scan[t] += v;
        __syncthreads();
    }
    int64_t p = scan[t] - mine;  // exclusive
    int64_t q = lo - p;          // negatives before lo
    for (int64_t e = lo; e < hi; ++e) {
        if (labels[e] == (T)1) {
            pos_scores[p] = scores[e];
            pos_index[p++] = e;
        } else {
            neg_scores[q] = scores[e];
            neg_index[q++] = e;
        }
    }
    __syncthreads();  // every index written (global memory, visible to the block)
    if (t == 0) {
        const int64_t n_pos = scan[blockDim.x - 1], n_neg = n - n_pos;
        counts[COUNT_POS] = n_pos;
        counts[COUNT_NEG] = n_neg;
        counts[COUNT_POS_FIRST] = lower_bound(pos_index, n_pos, row_start);
        counts[COUNT_POS_END] = lower_bound(pos_index, n_pos, row_start + n_rows);
        counts[COUNT_NEG_FIRST] = lower_bound(neg_index, n_neg, row_start);
        counts[COUNT_NEG_END] = lower_bound(neg_index, n_neg, row_start + n_rows);
    }
}

// For each centre c: Σ σ(z), Σ σ'(z), Σ σ'(z)·z with z = (c − other)·scale.
template <typename T>
__device__ void auroc_pairs(const T* __restrict__ centres, int64_t n_centres, const T* __restrict__ others,
                            int64_t n_others, T scale, T* __restrict__ sums /* [n_centres][3] */) {
    __shared__ T tile[TILE];
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const T centre = c < n_centres ? centres[c] : (T)0;
    T sig = 0, slope = 0, slope_z = 0;
    for (int64_t start = 0; start < n_others; start += TILE) {
        const int64_t len = min((int64_t)TILE, n_others - start);
        __syncthreads();
        for (int64_t e = threadIdx.x; e < len; e += blockDim.x) tile[e] = others[start + e];
        __syncthreads();
        if (c < n_centres) {
            for (int64_t e = 0; e < len; ++e) {
                T z = (centre - tile[e]) * scale;
                T ez = exp_t<T>(-fabs(z));
                T inv = (T)1 / ((T)1 + ez);
                T d = ez * inv * inv;
                sig += z >= (T)0 ? inv : ez * inv;
                slope += d;
                slope_z += d * z;
            }
        }
    }
    if (c < n_centres) {
        sums[3 * c] = sig;
        sums[3 * c + 1] = slope;
        sums[3 * c + 2] = slope_z;
    }
}

// out[OUT_VALUE] = Σ value / (|P||N|), out[OUT_GRAD_TEMPERATURE] = ∂/∂T, over the centre
// positives, out[OUT_GRAD_SCORES + idx − row_start] = ∂/∂s of each centre; the sums are
// the centres' (sums[3c..3c + 3] for the c-th centre of its class). One block of 1024.
template <typename T>
__device__ void auroc_finish(const T* __restrict__ pos_sums, const int64_t* __restrict__ pos_index,
                             const T* __restrict__ neg_sums, const int64_t* __restrict__ neg_index,
                             const int64_t* __restrict__ counts, int64_t row_start, double norm,
                             T inv_t, T* __restrict__ out) {
    __shared__ double value[1024];
    __shared__ double grad_t[1024];
    const int64_t* own_pos = pos_index + counts[COUNT_POS_FIRST];
    const int64_t* own_neg = neg_index + counts[COUNT_NEG_FIRST];
    const int64_t n_pos = counts[COUNT_POS_END] - counts[COUNT_POS_FIRST];
    const int64_t n_neg = counts[COUNT_NEG_END] - counts[COUNT_NEG_FIRST];
    double v = 0, g = 0;
    for (int64_t p = threadIdx.x; p < n_pos; p += blockDim.x) {
        v += (double)pos_sums[3 * p];
        g -= (double)pos_sums[3 * p + 2] * (double)inv_t;
        out[OUT_GRAD_SCORES + own_pos[p] - row_start] =
            (T)((double)pos_sums[3 * p + 1] * (double)inv_t * norm);
    }
    for (int64_t q = threadIdx.x; q < n_neg; q += blockDim.x)
        out[OUT_GRAD_SCORES + own_neg[q] - row_start] =
            (T)(-(double)neg_sums[3 * q + 1] * (double)inv_t * norm);
    const double value_total = block_sum(v, value);
    const double grad_t_total = block_sum(g, grad_t);
    if (threadIdx.x == 0) {
        out[OUT_VALUE] = (T)(value_total * norm);
        out[OUT_GRAD_TEMPERATURE] = (T)(grad_t_total * norm);
    }
}

#define INSTANTIATE(T, SUFFIX)                                                                     \
    __global__ void auroc_compact_##SUFFIX(const T* scores, const T* labels, int64_t n,              \
                                           int64_t row_start, int64_t n_rows, T* pos_scores,        \
                                           int64_t* pos_index, T* neg_scores, int64_t* neg_index,   \
                                           int64_t* counts) {                                      \
        auroc_compact<T>(scores, labels, n, row_start, n_rows, pos_scores, pos_index, neg_scores,  \
                         neg_index, counts);                                                       \
    }                                                                                              \
    __global__ void auroc_pairs_##SUFFIX(const T* centres, int64_t n_centres, const T* others,      \
                                         int64_t n_others, T scale, T* sums) {                      \
        auroc_pairs<T>(centres, n_centres, others, n_others, scale, sums);                         \
    }                                                                                              \
    __global__ void auroc_finish_##SUFFIX(const T* pos_sums, const int64_t* pos_index,              \
                                          const T* neg_sums, const int64_t* neg_index,              \
                                          const int64_t* counts, int64_t row_start, double norm,    \
                                          T inv_t, T* out) {                                        \
        auroc_finish<T>(pos_sums, pos_index, neg_sums, neg_index, counts, row_start, norm, inv_t, \
                        out);                                                                      \
    }

extern "C" {
INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
}
