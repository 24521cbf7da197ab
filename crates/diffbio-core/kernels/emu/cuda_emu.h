// A host C++ emulation of exactly the CUDA features diffbio's kernels use, so that the
// unchanged `.cu` sources compile with g++ (`-x c++ -include cuda_emu.h`) and run on the
// CPU, under ThreadSanitizer and AddressSanitizer too.
//
// Model:
// - One OS thread per CUDA thread; the blocks of a launch run one after another, so a
//   `__shared__` variable can be static storage and dynamic shared memory one buffer,
//   poisoned with 0xFF bytes (NaN in any float) before every block.
// - `__syncthreads()` is a barrier of the block's threads that have not exited (threads
//   that return early drop out, as on sm_70+ hardware).
// - `__syncwarp()` and the `__shfl*_sync` functions are barriers of a warp's 32 lanes
//   (those not exited). A shuffle exchanges values through per-lane slots and aborts when
//   the lanes of one warp arrive from different call sites (a divergent shuffle) or with
//   a mask other than all 32 lanes.
// - A watchdog aborts a launch that makes no progress for DIFFBIO_EMU_TIMEOUT seconds
//   (default 60), naming the last barrier reached: a barrier some threads never reach.
// - Barriers are C++20 std::barrier (arrive_and_drop for exited threads), built on
//   atomics, so ThreadSanitizer sees the ordering they give and reports shared-memory
//   accesses they do not order.
//
// What this cannot show: nvcc's code generation, the rounding of `__expf`, occupancy and
// speed. A feature the kernels do not use is not emulated: it fails to compile (see the
// poisoned names at the end).
#pragma once

#define DIFFBIO_EMU 1

#include <stdint.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

// The dynamic shared memory of the running block (see common.cuh's DYNAMIC_SHARED).
#define DIFFBIO_EMU_DYNAMIC_SHARED(type, name) type* name = (type*)emu::dynamic_shared()

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};

namespace emu {

[[noreturn]] inline void fail(const char* what, const char* detail, int line) {
    std::fprintf(stderr, "cuda-emu: %s (%s, line %d)\n", what, detail, line);
    std::fflush(stderr);
    std::abort();
}

inline std::chrono::seconds timeout() {
    const char* s = std::getenv("DIFFBIO_EMU_TIMEOUT");
    return std::chrono::seconds(s ? std::atoi(s) : 60);
}

// Progress of the running launch, for the deadlock watchdog: bumped at every barrier
// passed and every thread exit; `where` names the last barrier reached.
struct Progress {
    std::atomic<unsigned long> ticks{0};
    std::atomic<const char*> what{"start"};
    std::atomic<int> line{0};
};

inline Progress& progress() {
    static Progress p;
    return p;
}

inline void tick(const char* what, int line) {
    progress().what.store(what, std::memory_order_relaxed);
    progress().line.store(line, std::memory_order_relaxed);
    progress().ticks.fetch_add(1, std::memory_order_relaxed);
}

// A barrier whose parties drop out as they exit (std::barrier's arrive_and_drop, as
// sm_70+ hardware drops exited threads from a block barrier).
class Barrier {
   public:
    explicit Barrier(int parties) : barrier_(parties) {}

    void arrive_and_wait(const char* what, int line) {
        tick(what, line);
        barrier_.arrive_and_wait();
        tick(what, line);
    }

    void exit() { barrier_.arrive_and_drop(); }

   private:
    std::barrier<> barrier_;
};

constexpr int kWarp = 32;

// One warp: its barrier, the lanes' exchange slots (two sets, used by alternate
// shuffles) and the call site of each lane's shuffle.
struct Warp {
    Warp() {
        for (auto& set : serial) std::fill(std::begin(set), std::end(set), ~0u);
    }
    Barrier barrier{kWarp};
    uint64_t slot[2][kWarp];
    int site[2][kWarp];
    unsigned serial[2][kWarp];  // which of its shuffles the lane last wrote the set for
};

// The running block, shared by its threads.
struct Block {
    explicit Block(unsigned threads) : barrier((int)threads) {
        for (unsigned w = 0; w < threads / kWarp; ++w) warps.emplace_back(new Warp());
    }
    Barrier barrier;
    std::vector<std::unique_ptr<Warp>> warps;
    std::unique_ptr<unsigned char[]> dynamic_shared;
};

struct ThreadState {
    unsigned shuffles = 0;  // this lane's shuffles so far: picks the slot set
    uint3 thread_idx{0, 0, 0};
    uint3 block_idx{0, 0, 0};
    dim3 block_dim;
    Block* block = nullptr;
};

inline ThreadState& self() {
    thread_local ThreadState state;
    return state;
}

inline void* dynamic_shared() { return self().block->dynamic_shared.get(); }

inline int lane() { return (int)(self().thread_idx.x % kWarp); }

inline Warp& warp() { return *self().block->warps[self().thread_idx.x / kWarp]; }

inline void check_full(unsigned mask, const char* what, int line) {
    if (mask != 0xffffffffu) fail("only full-warp masks are emulated", what, line);
}

template <typename T>
T exchange(unsigned mask, T value, int source, int line, const char* what) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 32- or 64-bit values");
    check_full(mask, what, line);
    Warp& w = warp();
    const int me = lane();
    // Slot sets alternate: a set is written again two shuffles later, after every lane
    // has passed the next shuffle's barrier, so after every read of this one. The lanes
    // that take part are those whose serial matches (exited lanes dropped out).
    const unsigned serial = self().shuffles++;
    const unsigned set = serial % 2;
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    w.slot[set][me] = bits;
    w.site[set][me] = line;
    w.serial[set][me] = serial;
    w.barrier.arrive_and_wait(what, line);
    for (int l = 0; l < kWarp; ++l)
        if (w.serial[set][l] == serial && w.site[set][l] != line)
            fail("divergent shuffle: lanes at different call sites", what, line);
    if (source < 0 || source >= kWarp || w.serial[set][source] != serial)
        fail("shuffle from a lane that did not take part (exited or diverged)", what, line);
    T out;
    std::memcpy(&out, &w.slot[set][source], sizeof(T));
    return out;
}

// Aborts the process when the running launch makes no progress for timeout() seconds:
// some thread waits at a barrier that others never reach.
class Watchdog {
   public:
    Watchdog() : thread_([this] { watch(); }) {}
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            done_ = true;
        }
        stop_.notify_one();
        thread_.join();
    }

   private:
    void watch() {
        std::unique_lock<std::mutex> lock(mutex_);
        unsigned long seen = progress().ticks.load();
        while (!stop_.wait_for(lock, timeout(), [this] { return done_; })) {
            const unsigned long now = progress().ticks.load();
            if (now == seen) fail("deadlock: no thread progressed; last barrier", progress().what.load(), progress().line.load());
            seen = now;
        }
    }

    std::mutex mutex_;
    std::condition_variable stop_;
    bool done_ = false;
    std::thread thread_;
};

// Runs `kernel(args...)` on a grid of `grid` blocks of `block` threads (1-D, as the
// kernels use), with `shared_bytes` of dynamic shared memory per block.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), unsigned grid, unsigned block, size_t shared_bytes,
            Args... args) {
    if (block == 0 || block > 1024 || block % kWarp != 0) fail("block size", "launch", (int)block);
    Watchdog watchdog;
    for (unsigned b = 0; b < grid; ++b) {
        Block state(block);
        // Exactly `shared_bytes`, so AddressSanitizer reports a read or write past the end.
        state.dynamic_shared.reset(new unsigned char[shared_bytes ? shared_bytes : 1]);
        std::memset(state.dynamic_shared.get(), 0xFF, shared_bytes);
        std::vector<std::thread> threads;
        threads.reserve(block);
        for (unsigned t = 0; t < block; ++t) {
            threads.emplace_back([&, t, b] {
                ThreadState& me = self();
                me.shuffles = 0;
                me.thread_idx = {t, 0, 0};
                me.block_idx = {b, 0, 0};
                me.block_dim.x = block;
                me.block = &state;
                kernel(args...);
                state.warps[t / kWarp]->barrier.exit();
                state.barrier.exit();
                tick("exit", 0);
            });
        }
        for (auto& thread : threads) thread.join();
    }
}

}  // namespace emu

#define threadIdx (emu::self().thread_idx)
#define blockIdx (emu::self().block_idx)
#define blockDim (emu::self().block_dim)

#define __syncthreads() emu::self().block->barrier.arrive_and_wait("__syncthreads", __LINE__)
#define __syncwarp(...) emu::warp().barrier.arrive_and_wait("__syncwarp", __LINE__)
#define __shfl_sync(mask, v, src) emu::exchange((mask), (v), (src), __LINE__, "__shfl_sync")
#define __shfl_xor_sync(mask, v, m) \
    emu::exchange((mask), (v), emu::lane() ^ (m), __LINE__, "__shfl_xor_sync")
// A lane whose source would lie past lane 31 gets its own value, as on hardware.
#define __shfl_down_sync(mask, v, d)                                                         \
    emu::exchange((mask), (v), emu::lane() + (d) < emu::kWarp ? emu::lane() + (d) : emu::lane(), \
                  __LINE__, "__shfl_down_sync")

template <typename T>
inline T __ldg(const T* p) {
    return *p;
}
inline float __expf(float x) { return std::exp(x); }
using std::exp;
using std::fabs;
using std::fmax;
using std::log;
template <typename A, typename B>
inline auto min(A a, B b) -> typename std::common_type<A, B>::type {
    return a < b ? a : b;
}

// CUDA features the kernels do not use, and so this header does not emulate.
#pragma GCC poison atomicAdd atomicCAS atomicExch atomicMin atomicMax __shfl_up_sync
#pragma GCC poison __ballot_sync __any_sync __all_sync __activemask __threadfence
#pragma GCC poison __syncthreads_count __syncthreads_and __syncthreads_or cudaMalloc
