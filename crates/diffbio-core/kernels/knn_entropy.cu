// k-NN soft-neighbour batch entropy (SPEC.md §1), forward and backward.
//
// The fast paths, a tiled forward and backward (blocks of 256 threads owning a tile of
// rows), are in knn_entropy_tiles.cuh: the launch plans take them while their shared memory
// fits (in f32, k ≤ 135 and d ≤ 128). The kernels below are the warp-per-row forward (any
// k) and backward (any d).
//
// One warp owns one row i. Every kernel computes the rows [row_start, row_start + n_rows)
// of the n against all n columns (all of them on one device, a rank's own cells when the
// loss is sharded); row r of the outputs is input row row_start + r, and j*(i) and the
// self-exclusion use input rows. Memory is O(n·(k + B)): the per-row statistics below, plus
// shared memory per warp; there is never an n×n buffer. No atomics anywhere: every output
// element is written by the warp that owns its row, and every reduction has a fixed order,
// so results are deterministic.
//
// Forward (knn_entropy_fwd_*), per row:
//   pass 1: each lane keeps a sorted private top-k list (shared memory) of the columns it
//           visits (j ≡ lane mod 32); k rounds of warp arg-min over the list heads merge
//           them into the exact k-th smallest distance κ_i, its neighbour j*(i), and Dmin_i.
//   pass 1 past the lists' shared memory (large k): a radix select of κ instead, 4 bits a
//           sweep, and one more sweep for j* (select_by_radix).
//   pass 2: with q_i = exp((Dmin_i − κ_i + 1e-10)/T), e = exp((Dmin_i − D)/T) and
//           m = e/(e + q_i) = σ((κ_i − D − 1e-10)/T), each lane accumulates Z, S_c, R_c in
//           its own shared-memory slots (for a chunk of the classes at a time when B is
//           large); lane l then totals classes l, l + 32, ... over the lanes in lane order,
//           and lane 0 writes the row's entropy and the statistics the backward pass needs.
// knn_entropy_loss_* then sums the rows' entropies in a fixed order (one block).
//
// Backward (knn_entropy_bwd_*), per row i: recompute D_ij, form
//   C_ij = 2 (G_ij + G_ji),  G_ij = −(e_ij/T)(β_{i,b_j} m_ij (2 − m_ij) + γ_i) + [j = j*(i)] ∂L/∂κ_i
// from the saved statistics of rows i and j (of every row j, so `stats` holds all n), 256
// columns at a time into shared memory, and accumulate Σ_j C_ij (x_i − x_j) per dimension
// in registers, then in the row's slots. The κ terms are found in the same loop
// (j = j*(i), j*(j) = i).
//
// Distances use the direct form Σ (x_i − x_j)², both rows read through the read-only
// cache (a warp's lanes share x_i). No shared memory grows with d, so any d runs.

#include <stdint.h>

#include <type_traits>

#include "common.cuh"
#include "knn_entropy.cuh"

// q = exp((Dmin − κ + 1e-10)/T), floored at the smallest normal f32 (as on the CPU), so that
// m = e/(e + q) never divides 0 by 0. Forward and backward compute it identically.
template <typename T>
__device__ __forceinline__ T gate_offset(double dmin, double kappa, T inv_t) {
    return (T)fmax(exp((dmin - kappa + KAPPA_SHIFT) * (double)inv_t), 1.17549435e-38);
}

// ∂L/∂D_ij of row i's own terms (without the κ term): −(e/T)(β m (2 − m) + γ).
template <typename T>
__device__ __forceinline__ T grad_dist(T dist, T dmin, T q, T beta, T gamma, T inv_t) {
    T e = exp_t<T>((dmin - dist) * inv_t);
    T m = e / (e + q);
    return -e * inv_t * (beta * m * ((T)2 - m) + gamma);
}

#include "knn_entropy_tiles.cuh"

// |x_i − x_j|² in T from two rows of x (a warp's lanes read the same x_i: one broadcast
// load through the read-only cache; their own x_j).
template <typename T, typename X>
__device__ __forceinline__ T sq_dist(const X* __restrict__ xi, const X* __restrict__ xj, int d) {
    T acc = 0;
    for (int k = 0; k < d; ++k) {
        T t = (T)widen(__ldg(xi + k)) - (T)widen(__ldg(xj + k));
        acc += t * t;
    }
    return acc;
}

// Smallest (dist, index) across the warp; ties by index, so the result is deterministic.
template <typename T>
__device__ __forceinline__ void warp_argmin(T& dist, int& index, int& lane_of) {
    for (int off = WARP / 2; off > 0; off /= 2) {
        T od = __shfl_xor_sync(FULL_MASK, dist, off);
        int oi = __shfl_xor_sync(FULL_MASK, index, off);
        int ol = __shfl_xor_sync(FULL_MASK, lane_of, off);
        if (od < dist || (od == dist && oi < index)) {
            dist = od;
            index = oi;
            lane_of = ol;
        }
    }
}

// Radix keys: the bits of a non-negative float order as the float does.
template <typename T> struct RadixKey;
template <> struct RadixKey<float> { typedef uint32_t type; };
template <> struct RadixKey<double> { typedef unsigned long long type; };

template <typename T>
__device__ __forceinline__ typename RadixKey<T>::type key_of(T v) {
    typename RadixKey<T>::type key;
    memcpy(&key, &v, sizeof(T));
    return key;
}

template <typename T>
__device__ __forceinline__ T value_of(typename RadixKey<T>::type key) {
    T v;
    memcpy(&v, &key, sizeof(T));
    return v;
}

// Inclusive prefix sum over the lanes (lane l gets Σ_{m ≤ l} v_m), in a fixed order.
__device__ __forceinline__ int warp_inclusive_sum(int v, int lane) {
    for (int off = 1; off < WARP; off *= 2) {
        int t = __shfl_sync(FULL_MASK, v, lane >= off ? lane - off : lane);
        if (lane >= off) v += t;
    }
    return v;
}

// Totals of per-lane partial sums laid out [item][lane] (`count` items): lane l adds up
// items l, l + 32, ... over the 32 lanes in lane order (a fixed order, no shuffles) and
// writes them to `out`. Call it between __syncwarp()s.
template <typename T, typename U>
__device__ __forceinline__ void lane_totals(const T* partial, int count, int lane, U* out) {
    for (int c = lane; c < count; c += WARP) {
        U total = 0;
        for (int l = 0; l < WARP; ++l) total += (U)partial[c * WARP + l];
        out[c] = total;
    }
}

// Pass 1 with lane-private sorted top-k lists (shared memory, 32·k pairs per warp): the
// lanes keep the k nearest of the columns they visit (j ≡ lane mod 32), then k rounds of
// warp arg-min over the list heads merge them. Sets κ, Dmin and j*.
template <typename T, typename X>
__device__ void select_by_lists(const X* __restrict__ x, int n, int d, int k, int i, int lane,
                                const X* xi, T* top_d, int* top_j, T& kappa, T& dmin, int& jstar) {
    T* my_d = top_d + (size_t)lane * k;
    int* my_j = top_j + (size_t)lane * k;
    int count = 0;
    for (int j = lane; j < n; j += WARP) {
        if (j == i) continue;
        T dist = sq_dist<T>(xi, x + (size_t)j * d, d);
        if (count < k || dist < my_d[k - 1]) {
            int pos = count < k ? count++ : k - 1;
            while (pos > 0 && (my_d[pos - 1] > dist || (my_d[pos - 1] == dist && my_j[pos - 1] > j))) {
                my_d[pos] = my_d[pos - 1];
                my_j[pos] = my_j[pos - 1];
                --pos;
            }
            my_d[pos] = dist;
            my_j[pos] = j;
        }
    }
    __syncwarp();
    int head = 0;
    for (int r = 0; r < k; ++r) {
        T dist = head < count ? my_d[head] : (T)INFINITY;
        int index = head < count ? my_j[head] : 0x7fffffff;
        int winner = lane;
        warp_argmin(dist, index, winner);
        if (r == 0) dmin = dist;
        kappa = dist;
        jstar = index;
        if (lane == winner) ++head;
    }
}

// Pass 1 for any k, in O(1) shared memory per warp (a 16-bucket histogram per lane and the
// 16 totals): κ's bits are found RADIX_BITS at a time from the top (radix select: each
// round counts the columns whose key agrees with the digits found so far, by their next
// digit), then one sweep in column order finds j*, the (k − #{D < κ})-th column at
// distance κ (ties by index, as the lists give them). Every round recomputes the distances
// exactly as the other passes do. Sets κ, Dmin and j*.
#define RADIX_BITS 4
static_assert(RADIX_BUCKETS == 1 << RADIX_BITS, "a bucket per value of RADIX_BITS bits");
template <typename T, typename X>
__device__ void select_by_radix(const X* __restrict__ x, int n, int d, int k, int i, int lane,
                                const X* xi, int* hist, T& kappa, T& dmin, int& jstar) {
    typedef typename RadixKey<T>::type Key;
    const int bits = 8 * (int)sizeof(T);
    int* bucket_totals = hist + RADIX_BUCKETS * WARP;
    Key prefix = 0;  // the digits of κ found so far, in place
    int rank = k;    // κ's rank among the columns that agree with `prefix`
    T lane_min = (T)INFINITY;
    for (int shift = bits - RADIX_BITS; shift >= 0; shift -= RADIX_BITS) {
        const Key known = shift + RADIX_BITS >= bits ? (Key)0 : ~(((Key)1 << (shift + RADIX_BITS)) - 1);
        for (int b = 0; b < RADIX_BUCKETS; ++b) hist[b * WARP + lane] = 0;
        for (int j = lane; j < n; j += WARP) {
            if (j == i) continue;
            T dist = sq_dist<T>(xi, x + (size_t)j * d, d);
            lane_min = fmin(lane_min, dist);
            Key key = key_of(dist);
            if ((key & known) == prefix) ++hist[(int)((key >> shift) & (RADIX_BUCKETS - 1)) * WARP + lane];
        }
        __syncwarp();
        lane_totals(hist, RADIX_BUCKETS, lane, bucket_totals);
        __syncwarp();
        int below = 0;  // columns agreeing with `prefix` whose digit is smaller
        int digit = 0;
        while (digit < RADIX_BUCKETS - 1 && below + bucket_totals[digit] < rank) below += bucket_totals[digit++];
        prefix |= (Key)digit << shift;
        rank -= below;
        __syncwarp();  // every lane has read the totals before the next round's
    }
    kappa = value_of<T>(prefix);
    T m = lane_min;
    for (int off = WARP / 2; off > 0; off /= 2) m = fmin(m, __shfl_xor_sync(FULL_MASK, m, off));
    dmin = m;
    // j*: the rank-th column (in index order) at distance κ.
    int seen = 0;
    jstar = -1;
    for (int j0 = 0; j0 < n && jstar < 0; j0 += WARP) {
        const int j = j0 + lane;
        const int at_kappa = j < n && j != i && key_of(sq_dist<T>(xi, x + (size_t)j * d, d)) == prefix;
        const int upto = warp_inclusive_sum(at_kappa, lane);
        int candidate = at_kappa && seen + upto == rank ? j : 0x7fffffff;
        for (int off = WARP / 2; off > 0; off /= 2) candidate = min(candidate, __shfl_xor_sync(FULL_MASK, candidate, off));
        if (candidate != 0x7fffffff) jstar = candidate;
        seen += __shfl_sync(FULL_MASK, upto, WARP - 1);
    }
}

// The forward's shared memory per warp: the parts of KNN_ENTROPY_FWD_SHARED in
// knn_entropy.cuh (FORWARD_SHARED in batch_mixing/kernels.rs, from which the launch plan
// takes its size too), carved in order, each on 8 bytes: the class totals S_c, R_c, the
// selection (32·k (distance, index) pairs, or the radix histogram and its 16 totals), and
// the per-lane sums of one chunk of classes, [class][lane] (conflict-free writes).
template <typename T>
struct WarpShared {
    double* total_s;  // [B]
    double* total_r;  // [B]
    T* top_d;         // [WARP][k] with lists, empty with radix select
    int* top_j;       // [WARP][k] with lists
    int* hist;        // [RADIX_BUCKETS][WARP + 1] with radix select, empty with lists
    T* acc_s;         // [class_chunk][WARP]
    T* acc_r;         // [class_chunk][WARP]
    size_t bytes;

    __device__ WarpShared(unsigned char* base, int k, int n_batches, int class_chunk, int radix) {
        Carver carver{base, 0};
        KNN_ENTROPY_FWD_SHARED(CARVE)
        bytes = carver.at;
    }
};

template <typename T, typename X>
__device__ void knn_entropy_fwd(const X* __restrict__ x, const uint32_t* __restrict__ labels,
                                int n, int d, int k, int n_batches, int class_chunk, int radix,
                                T inv_t, int row_start, int n_rows, double* __restrict__ stats,
                                double* __restrict__ entropy) {
    DYNAMIC_SHARED(unsigned char, smem_raw);
    const int lane = threadIdx.x % WARP;
    const int warp = threadIdx.x / WARP;
    const int warps = blockDim.x / WARP;
    const int r = blockIdx.x * warps + warp;
    const int i = row_start + r;
    const size_t per_warp = WarpShared<T>(smem_raw, k, n_batches, class_chunk, radix).bytes;
    const WarpShared<T> sh(smem_raw + per_warp * warp, k, n_batches, class_chunk, radix);
    double* total_s = sh.total_s;
    double* total_r = sh.total_r;
    T* acc_s = sh.acc_s;
    T* acc_r = sh.acc_r;
    if (r >= n_rows) return;  // whole warp leaves together
    const X* xi = x + (size_t)i * d;

    T kappa = 0, dmin = 0;
    int jstar = -1;
    if (radix) {
        select_by_radix(x, n, d, k, i, lane, xi, sh.hist, kappa, dmin, jstar);
    } else {
        select_by_lists(x, n, d, k, i, lane, xi, sh.top_d, sh.top_j, kappa, dmin, jstar);
    }

    // Pass 2: Z, then S_c and R_c chunk by chunk of classes (one chunk when they fit).
    const T q = gate_offset<T>((double)dmin, (double)kappa, inv_t);
    T z = 0;
    for (int c0 = 0; c0 < n_batches; c0 += class_chunk) {
        const int c1 = min(c0 + class_chunk, n_batches);
        for (int c = 0; c < c1 - c0; ++c) {
            acc_s[c * WARP + lane] = 0;
            acc_r[c * WARP + lane] = 0;
        }
        for (int j = lane; j < n; j += WARP) {
            if (j == i) continue;
            const int c = (int)labels[j];
            if (c0 > 0 && (c < c0 || c >= c1)) continue;  // z and classes of chunk 0 come first
            T dist = sq_dist<T>(xi, x + (size_t)j * d, d);
            T e = exp_t<T>((dmin - dist) * inv_t);
            if (c0 == 0) z += e;
            if (c >= c1) continue;
            T m = e / (e + q);
            T em = e * m;
            acc_s[(c - c0) * WARP + lane] += em;
            acc_r[(c - c0) * WARP + lane] += em * ((T)1 - m);
        }
        __syncwarp();
        lane_totals(acc_s, c1 - c0, lane, total_s + c0);
        lane_totals(acc_r, c1 - c0, lane, total_r + c0);
        __syncwarp();
    }
    z = warp_sum(z);

    // Entropy and backward statistics (lane 0 writes; classes in a fixed order).
    double* row = stats + (size_t)r * (ST_BETA + n_batches);
    const double alpha = -1.0 / ((double)n * (log((double)n_batches) + EPS));
    double s_total = 0;
    for (int c = 0; c < n_batches; ++c) s_total += total_s[c];
    const double den = s_total + EPS * (double)z;
    double h = 0, h_dot_p = 0;
    for (int c = 0; c < n_batches; ++c) {
        double p = total_s[c] / den;
        double log_p = log(p + EPS);
        h -= p * log_p;
        double h_c = -(log_p + p / (p + EPS));
        h_dot_p += h_c * p;
        if (lane == 0) row[ST_BETA + c] = alpha * h_c / den;
    }
    const double grad_den = -alpha * h_dot_p / den;
    double grad_kappa = 0;
    for (int c = 0; c < n_batches; ++c) {
        if (lane == 0) {
            row[ST_BETA + c] += grad_den;
            grad_kappa += row[ST_BETA + c] * total_r[c] * (double)inv_t;
        }
    }
    if (lane == 0) {
        row[ST_KAPPA] = (double)kappa;
        row[ST_DMIN] = (double)dmin;
        row[ST_JSTAR] = (double)jstar;
        row[ST_GAMMA] = EPS * grad_den;
        row[ST_GRAD_KAPPA] = grad_kappa;
        entropy[r] = h;
    }
}

// Fixed-order sum of the rows' entropies: out[0] = α Σ_r H_r, α = −1/(n (log B + ε)) for
// the n cells of the whole batch. One block of 1024 threads.
__device__ void knn_entropy_loss(const double* __restrict__ entropy, int n_rows, int n,
                                 int n_batches, double* __restrict__ out) {
    __shared__ double partial[1024];
    double acc = 0;
    for (int r = threadIdx.x; r < n_rows; r += blockDim.x) acc += entropy[r];
    const double total = block_sum(acc, partial);
    if (threadIdx.x == 0) {
        const double alpha = -1.0 / ((double)n * (log((double)n_batches) + EPS));
        out[0] = alpha * total;
    }
}

// Columns a warp of the backward takes at a time (their C_ij in shared memory), and the
// backward's warps per block.
#define BWD_COLUMNS 256

// Row r of the gradient, accumulated in `acc` (T, d of them, owned by the warp): the
// gradient itself when X is T, else an f32 workspace row that is rounded into `grad` at
// the end. Shared memory does not grow with d: any d runs.
template <typename T, typename X>
__device__ void knn_entropy_bwd(const X* __restrict__ x, const uint32_t* __restrict__ labels,
                                const double* __restrict__ stats, int n, int d, int n_batches,
                                T inv_t, int row_start, int n_rows, X* __restrict__ grad,
                                T* __restrict__ workspace) {
    __shared__ T block_c[BWD_WARPS][BWD_COLUMNS];
    const int lane = threadIdx.x % WARP;
    const int warp = threadIdx.x / WARP;
    const int r = blockIdx.x * BWD_WARPS + warp;
    const int i = row_start + r;
    if (r >= n_rows) return;
    T* c_of = block_c[warp];
    T* acc;
    if constexpr (std::is_same<T, X>::value) acc = grad + (size_t)r * d;
    else acc = workspace + (size_t)r * d;
    const X* xi = x + (size_t)i * d;
    const int width = ST_BETA + n_batches;
    const double* row_i = stats + (size_t)i * width;
    const T dmin_i = (T)row_i[ST_DMIN];
    const T q_i = gate_offset<T>(row_i[ST_DMIN], row_i[ST_KAPPA], inv_t);
    const T gamma_i = (T)row_i[ST_GAMMA];
    const T grad_kappa_i = (T)row_i[ST_GRAD_KAPPA];
    const int jstar_i = (int)row_i[ST_JSTAR];
    const int label_i = labels[i];
    for (int k = lane; k < d; k += WARP) acc[k] = 0;

    // BWD_COLUMNS columns at a time: the lanes compute C_ij (8 columns each) into shared
    // memory, then each lane takes dimensions (lane + 32·m) and sums C_ij (x_i − x_j) over
    // the columns in a register (coalesced reads of each row x_j), added to its slots.
    for (int j0 = 0; j0 < n; j0 += BWD_COLUMNS) {
        const int cols = min(BWD_COLUMNS, n - j0);
        for (int t = lane; t < BWD_COLUMNS; t += WARP) {
            const int j = j0 + t;
            T c_ij = 0;
            if (j < n && j != i) {
                const double* row_j = stats + (size_t)j * width;
                T dist = sq_dist<T>(xi, x + (size_t)j * d, d);
                T dmin_j = (T)row_j[ST_DMIN];
                T q_j = gate_offset<T>(row_j[ST_DMIN], row_j[ST_KAPPA], inv_t);
                T g_ij = grad_dist(dist, dmin_i, q_i, (T)row_i[ST_BETA + labels[j]], gamma_i, inv_t);
                T g_ji = grad_dist(dist, dmin_j, q_j, (T)row_j[ST_BETA + label_i], (T)row_j[ST_GAMMA], inv_t);
                if (j == jstar_i) g_ij += grad_kappa_i;
                if ((int)row_j[ST_JSTAR] == i) g_ji += (T)row_j[ST_GRAD_KAPPA];
                c_ij = (T)2 * (g_ij + g_ji);
            }
            c_of[t] = c_ij;
        }
        __syncwarp();
        for (int k = lane; k < d; k += WARP) {
            const T x_ik = (T)widen(__ldg(xi + k));
            T sum = 0;
            for (int t = 0; t < cols; ++t) {
                const T c = c_of[t];
                if (c == (T)0) continue;  // uniform across the warp
                sum += c * (x_ik - (T)widen(__ldg(x + (size_t)(j0 + t) * d + k)));
            }
            acc[k] += sum;
        }
        __syncwarp();  // every lane has read c_of before the next block's
    }
    if constexpr (!std::is_same<T, X>::value)
        for (int k = lane; k < d; k += WARP) grad[(size_t)r * d + k] = narrow<X>(acc[k]);
}

// The entry points of each input type X (f16 and bf16 computing in f32), named after it;
// their parameters are declared in batch_mixing/kernels.rs (knn_entropy.cuh).
#define INSTANTIATE(T, X, SUFFIX)                                                                  \
    __global__ void knn_entropy_fwd_##SUFFIX(KNN_ENTROPY_FWD_PARAMS(T, X)) {                       \
        knn_entropy_fwd<T>(KNN_ENTROPY_FWD_ARGS);                                                  \
    }                                                                                              \
    __global__ void knn_entropy_mean_##SUFFIX(KNN_ENTROPY_MEAN_PARAMS(T, X)) {                     \
        knn_entropy_mean(KNN_ENTROPY_MEAN_ARGS);                                                   \
    }                                                                                              \
    __global__ void knn_entropy_norms_##SUFFIX(KNN_ENTROPY_NORMS_PARAMS(T, X)) {                   \
        knn_entropy_norms<T>(KNN_ENTROPY_NORMS_ARGS);                                              \
    }                                                                                              \
    __global__ void knn_entropy_fwd_tiled_##SUFFIX(KNN_ENTROPY_FWD_TILED_PARAMS(T, X)) {           \
        knn_entropy_fwd_tiled<T>(KNN_ENTROPY_FWD_TILED_ARGS);                                      \
    }                                                                                              \
    __global__ void knn_entropy_bwd_tiled_##SUFFIX(KNN_ENTROPY_BWD_TILED_PARAMS(T, X)) {           \
        knn_entropy_bwd_tiled<T>(KNN_ENTROPY_BWD_TILED_ARGS);                                      \
    }                                                                                              \
    __global__ void knn_entropy_bwd_##SUFFIX(KNN_ENTROPY_BWD_PARAMS(T, X)) {                       \
        knn_entropy_bwd<T>(KNN_ENTROPY_BWD_ARGS);                                                  \
    }

extern "C" {
INSTANTIATE(float, float, f32)
INSTANTIATE(double, double, f64)
INSTANTIATE(float, __half, f16)
INSTANTIATE(float, __nv_bfloat16, bf16)
__global__ void knn_entropy_loss_f64(KNN_ENTROPY_LOSS_PARAMS(double, double)) {
    knn_entropy_loss(KNN_ENTROPY_LOSS_ARGS);
}
}
#undef INSTANTIATE
