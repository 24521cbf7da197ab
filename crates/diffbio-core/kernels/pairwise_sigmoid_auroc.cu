// Pairwise-sigmoid AUROC surrogate (SPEC.md §6), value and gradients in one forward.
//
//   auroc = Σ_{i∈P, j∈N} σ((s_i − s_j)/T) / (|P|·|N|)
//
// The centres are the cells [row_start, row_start + n_rows) (all of them on one device, a
// rank's own cells when the surrogate is sharded), each against all of the other class:
// 1. auroc_compact_*: one block gathers positives and negatives once (stable, in input
//    order) with a block-wide scan, recording each one's input position; being stable,
//    the centres of each class are one contiguous run of it, whose bounds it also finds.
// 2. On one device, auroc_pairs_*: tiles of positives × negatives, each pair's σ, σ' and
//    σ'·z from one exponential, summed per positive (its value, ∂/∂s and ∂/∂T terms) and
//    per block and negative (∂/∂s), which auroc_columns_* totals over the blocks. A
//    rank's own cells instead (or when the per-block sums would take more than 256 MiB):
//    auroc_centres_*, the same tiles without the per-negative sums, run twice: the
//    centre positives against all negatives, the centre negatives against all positives.
//    Every sum has one owner: no atomics, the same bits run to run.
// 3. auroc_finish_*: one block sums the centre positives' values and ∂/∂T terms in a
//    fixed order and scatters ∂/∂s to the output: out = [value, ∂/∂T, ∂/∂s of each centre]
//    (the whole surrogate when the centres are every cell, a share of it otherwise).
// Pair counts are 64-bit; the 1/(|P||N|) normalisation is passed in as a double.

#include <stdint.h>

#include "common.cuh"
#include "pairwise_sigmoid_auroc.cuh"

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
template <typename T, typename X>
__device__ void auroc_compact(const X* __restrict__ scores, const T* __restrict__ labels, int64_t n,
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
            pos_scores[p] = (T)widen(scores[e]);
            pos_index[p++] = e;
        } else {
            neg_scores[q] = (T)widen(scores[e]);
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

// Tiles of centres × others. A block of 8 warps holds 64 centres (8 per warp, the same 8
// in every lane) and sweeps the others 256 at a time through shared memory, each lane 8
// of them (lane + 32·c: conflict-free loads, each feeding 8 pairs).
// PAIR_WARPS and PAIR_ROWS (centres per warp, per thread) come from
// pairwise_sigmoid_auroc.cuh (auroc/kernels.rs).
#define PAIR_COLS 8                           // others per lane and step
#define PAIR_TILE_ROWS (PAIR_WARPS * PAIR_ROWS)  // 64 centres a tile
#define PAIR_STEP (WARP * PAIR_COLS)             // 256 others a step
#define PAIR_THREADS (WARP * PAIR_WARPS)
// auroc_pairs_f32 at four blocks per SM: at most 64 registers a thread (32 warps), which
// ptxas meets without spilling (f64, and auroc_centres with its range edges, would spill).
#define PAIR_BOUNDS __launch_bounds__(PAIR_THREADS, 4)
// Of the PAIR_ROWS reciprocals a thread takes per other, how many the SFU computes (the
// rest by Newton steps on the FMA pipes, so that neither pipe waits on the other; f32).
#define PAIR_SFU_RECIPROCALS 6

// σ(±|w|) in the units the exponential takes (f32: w = z·log2 e, so 2^{-|w|} = e^{-|z|}).
template <typename T> struct Sigmoid;
template <> struct Sigmoid<float> {
    static constexpr float UNIT = 1.4426950408889634f;      // log2 e
    static constexpr float INV_UNIT = 0.6931471805599453f;  // ln 2
    // 2^{-a} (a ≥ 0): ex2.approx.ftz, one SFU operation (the emulator: exp2f).
    __device__ static __forceinline__ float exp_neg(float a) {
#ifdef DIFFBIO_EMU
        return exp2f(-a);
#else
        float e;
        asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(-a));
        return e;
#endif
    }
    // 1/y for y in [1, 2]: rcp.approx.ftz on the SFU, or (sfu false) a linear first guess
    // (error ≤ 1/17) and three Newton steps on the FMA pipes (error ≤ 1/17⁸ before rounding).
    __device__ static __forceinline__ float reciprocal(float y, bool sfu) {
        if (!sfu) {
            float r = fmaf(y, -8.0f / 17.0f, 24.0f / 17.0f);
            for (int step = 0; step < 3; ++step) r = fmaf(r, fmaf(-y, r, 1.0f), r);
            return r;
        }
#ifdef DIFFBIO_EMU
        return 1.0f / y;
#else
        float r;
        asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
        return r;
#endif
    }
};
template <> struct Sigmoid<double> {
    static constexpr double UNIT = 1.0, INV_UNIT = 1.0;
    __device__ static __forceinline__ double exp_neg(double a) { return exp(-a); }
    __device__ static __forceinline__ double reciprocal(double y, bool) { return 1.0 / y; }
};

// A thread's running sums: per centre Σ σ(z), Σ σ'(z), Σ σ'(z)·w; per other of the step
// Σ σ'(z) over the thread's centres.
template <typename T>
struct PairSums {
    T sig[PAIR_ROWS], slope[PAIR_ROWS], slope_w[PAIR_ROWS], column[PAIR_COLS];
};

// One step: the thread's centres × its others of `tile` (`cols` of them, centres
// [lo, hi) of its 8 valid; EDGE false when all are), w = (centre − other)·k. σ(|z|) = 1/(1 + e^{−|z|})
// and σ(−|z|) = e^{−|z|}·σ(|z|) from one exponential, σ' = σ(|z|)·σ(−|z|): all accurate for
// large |z|, as on the CPU.
template <typename T, bool EDGE>
__device__ __forceinline__ void pair_step(const T (&centre)[PAIR_ROWS], const T* tile, int lane, int cols,
                                          int lo, int hi, T k, PairSums<T>& s) {
    UNROLL for (int c = 0; c < PAIR_COLS; ++c) {
        s.column[c] = (T)0;
        const int e = lane + WARP * c;
        if (EDGE && e >= cols) continue;
        const T other = tile[e];
        UNROLL for (int r = 0; r < PAIR_ROWS; ++r) {
            if (EDGE && (r < lo || r >= hi)) continue;
            const T w = (centre[r] - other) * k;
            const T ez = Sigmoid<T>::exp_neg(fabs(w));
            const T up = Sigmoid<T>::reciprocal((T)1 + ez, r < PAIR_SFU_RECIPROCALS);
            const T down = ez * up;
            const T d = down * up;
            s.sig[r] += w >= (T)0 ? up : down;
            s.slope[r] += d;
            s.slope_w[r] += d * w;
            s.column[c] += d;
        }
    }
}

// For each centre c of class[first, end) (row tiles blockIdx.x, + gridDim.x, ...):
// sums[3(c − first) + 0..3] = Σ σ(z), Σ σ'(z), Σ σ'(z)·z over all `n_others` others,
// z = (c − other)·scale. The tiles are those of the whole class (tile t holds class
// entries 64t..64t + 63), so that a centre takes the same lane, slot and reciprocal and
// gets the same bits in a launch of any range. With COLUMNS, also each block's Σ σ'(z) per
// other over its centres, added to partials[blockIdx.x·n_others + other] (zeroed by the
// caller): one sweep of the pairs gives both classes' gradients. Every sum has one owner
// and a fixed order: no atomics.
template <typename T, bool COLUMNS>
__device__ void auroc_tiles(const T* __restrict__ class_scores, int64_t first, int64_t end,
                            const T* __restrict__ others, int64_t n_others, T scale, T* __restrict__ sums,
                            T* __restrict__ partials) {
    __shared__ T tile[PAIR_STEP];
    __shared__ T column_part[COLUMNS ? PAIR_WARPS : 1][PAIR_STEP];
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    const T k = scale * Sigmoid<T>::UNIT;
    const int64_t tile0 = first / PAIR_TILE_ROWS, tile_end = (end + PAIR_TILE_ROWS - 1) / PAIR_TILE_ROWS;
    for (int64_t row_tile = tile0 + blockIdx.x; row_tile < tile_end; row_tile += gridDim.x) {
        const int64_t row0 = row_tile * PAIR_TILE_ROWS + warp * PAIR_ROWS;
        // The thread's valid centres: row0 + [lo, hi), within [first, end).
        const int lo = (int)max((int64_t)0, min((int64_t)PAIR_ROWS, first - row0));
        const int hi = (int)max((int64_t)lo, min((int64_t)PAIR_ROWS, end - row0));
        T centre[PAIR_ROWS];
        PairSums<T> s;
        for (int r = 0; r < PAIR_ROWS; ++r) {
            centre[r] = r >= lo && r < hi ? class_scores[row0 + r] : (T)0;
            s.sig[r] = s.slope[r] = s.slope_w[r] = (T)0;
        }
        for (int64_t col0 = 0; col0 < n_others; col0 += PAIR_STEP) {
            const int cols = (int)min((int64_t)PAIR_STEP, n_others - col0);
            __syncthreads();  // the last step's tile and column sums are read
            if (threadIdx.x < cols) tile[threadIdx.x] = others[col0 + threadIdx.x];
            __syncthreads();
            if (lo == 0 && hi == PAIR_ROWS && cols == PAIR_STEP) pair_step<T, false>(centre, tile, lane, cols, lo, hi, k, s);
            else pair_step<T, true>(centre, tile, lane, cols, lo, hi, k, s);
            if constexpr (COLUMNS) {
                for (int c = 0; c < PAIR_COLS; ++c) column_part[warp][lane + WARP * c] = s.column[c];
                __syncthreads();
                if (threadIdx.x < cols) {
                    T total = (T)0;
                    for (int w = 0; w < PAIR_WARPS; ++w) total += column_part[w][threadIdx.x];
                    partials[(int64_t)blockIdx.x * n_others + col0 + threadIdx.x] += total;
                }
            }
        }
        for (int r = 0; r < PAIR_ROWS; ++r) {
            const T sig = warp_sum(s.sig[r]), slope = warp_sum(s.slope[r]);
            const T slope_z = warp_sum(s.slope_w[r]) * Sigmoid<T>::INV_UNIT;
            if (lane == 0 && r >= lo && r < hi) {
                T* own = sums + 3 * (row0 + r - first);
                own[0] = sig;
                own[1] = slope;
                own[2] = slope_z;
            }
        }
    }
}

// sums[3j + 1] = Σ_b partials[b·n_others + j] over the `n_blocks` blocks, in block order
// (sums[3j], sums[3j + 2] = 0: the layout of auroc_centres' sums). One thread per other.
template <typename T>
__device__ void auroc_columns(const T* __restrict__ partials, int n_blocks, int64_t n_others,
                              T* __restrict__ sums) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n_others) return;
    double total = 0;
    for (int b = 0; b < n_blocks; ++b) total += (double)partials[(int64_t)b * n_others + j];
    sums[3 * j] = (T)0;
    sums[3 * j + 1] = (T)total;
    sums[3 * j + 2] = (T)0;
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

// The compaction of each score type X (f16 and bf16 read as f32), the rest per float T;
// their parameters are declared in auroc/kernels.rs (pairwise_sigmoid_auroc.cuh).
#define INSTANTIATE_COMPACT(T, X, SUFFIX)                                                          \
    __global__ void auroc_compact_##SUFFIX(AUROC_COMPACT_PARAMS(T, X)) {                           \
        auroc_compact<T>(AUROC_COMPACT_ARGS);                                                      \
    }
#define INSTANTIATE(T, SUFFIX, PAIRS_BOUNDS)                                                       \
    __global__ void auroc_centres_##SUFFIX(AUROC_CENTRES_PARAMS(T, T)) {                           \
        auroc_tiles<T, false>(class_scores, first, end, others, n_others, scale, sums, nullptr);  \
    }                                                                                              \
    __global__ void PAIRS_BOUNDS auroc_pairs_##SUFFIX(AUROC_PAIRS_PARAMS(T, T)) {                  \
        auroc_tiles<T, true>(pos, 0, n_pos, neg, n_neg, scale, pos_sums, partials);                \
    }                                                                                              \
    __global__ void auroc_columns_##SUFFIX(AUROC_COLUMNS_PARAMS(T, T)) {                           \
        auroc_columns<T>(AUROC_COLUMNS_ARGS);                                                      \
    }                                                                                              \
    __global__ void auroc_finish_##SUFFIX(AUROC_FINISH_PARAMS(T, T)) {                             \
        auroc_finish<T>(AUROC_FINISH_ARGS);                                                        \
    }

extern "C" {
INSTANTIATE_COMPACT(float, float, f32)
INSTANTIATE_COMPACT(double, double, f64)
INSTANTIATE_COMPACT(float, __half, f16)
INSTANTIATE_COMPACT(float, __nv_bfloat16, bf16)
INSTANTIATE(float, f32, PAIR_BOUNDS)
INSTANTIATE(double, f64, )
}
#undef INSTANTIATE_COMPACT
#undef INSTANTIATE
