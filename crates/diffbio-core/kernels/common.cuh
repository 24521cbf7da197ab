// Helpers shared by the kernel files: warp constants, the exponential each precision
// uses, and the fixed-order warp and block sums.
#pragma once

#ifndef DIFFBIO_EMU
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#define WARP 32
#define FULL_MASK 0xffffffffu

template <typename T> __device__ __forceinline__ T exp_t(T x);
template <> __device__ __forceinline__ float exp_t<float>(float x) { return __expf(x); }
template <> __device__ __forceinline__ double exp_t<double>(double x) { return exp(x); }

// Inputs are read in the type the kernels compute in: f32 and f64 as they are, f16 and
// bf16 widened to f32 as they are loaded (there is no widened copy of them in memory);
// what is written back in an input's type is rounded to nearest.
__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ double widen(double v) { return v; }
__device__ __forceinline__ float widen(__half v) { return __half2float(v); }
__device__ __forceinline__ float widen(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename X, typename T> __device__ __forceinline__ X narrow(T v) { return (X)v; }
template <> __device__ __forceinline__ __half narrow<__half, float>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 narrow<__nv_bfloat16, float>(float v) {
    return __float2bfloat16_rn(v);
}

// Sum over the 32 lanes of a warp (every lane gets it), in a fixed butterfly order.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int off = WARP / 2; off > 0; off /= 2) v += __shfl_xor_sync(FULL_MASK, v, off);
    return v;
}

// Sum of one double per thread over the block (blockDim.x a power of two, `scratch` that
// many doubles of shared memory), by a fixed-order tree: every thread gets the total, and
// `scratch` may be reused once it returns.
__device__ __forceinline__ double block_sum(double v, double* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
        __syncthreads();
    }
    const double total = scratch[0];
    __syncthreads();
    return total;
}

// Unrolls the loop that follows (nvcc; the emulator's g++ has no such pragma).
#ifdef DIFFBIO_EMU
#define UNROLL
#else
#define UNROLL _Pragma("unroll")
#endif

// The block's dynamic shared memory, `type name[]`: under nvcc exactly the declaration
// `extern __shared__ type name[]` (the PTX does not change); in the CPU emulator
// (emu/cuda_emu.h) a pointer to the running block's buffer.
#ifdef DIFFBIO_EMU
#define DYNAMIC_SHARED(type, name) DIFFBIO_EMU_DYNAMIC_SHARED(type, name)
#else
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif
