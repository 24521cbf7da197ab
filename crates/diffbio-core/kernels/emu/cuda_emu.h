// A host C++ emulation of exactly the CUDA features diffbio's kernels use, so that the
// unchanged `.cu` sources compile with g++ (`-x c++ -include cuda_emu.h`) and run on the
// CPU, under ThreadSanitizer and AddressSanitizer too.
//
// Model:
// - Each CUDA thread is a fiber (its own stack, switched by a few instructions) of the
//   launching host thread; the blocks of a
//   launch run one after another, the threads of a block round-robin, switching only at a
//   barrier or an exit. So a `__shared__` variable can be static storage and dynamic
//   shared memory one buffer, poisoned with 0xFF bytes (NaN in any float) before every
//   block; and a barrier costs a few nanoseconds per thread, not an OS context switch.
// - `__syncthreads()` is a barrier of the block's threads that have not exited (threads
//   that return early drop out, as on sm_70+ hardware).
// - `__syncwarp()` and the `__shfl*_sync` functions are barriers of a warp's 32 lanes
//   (those not exited). A shuffle exchanges values through per-lane slots and aborts when
//   the lanes of one warp arrive from different call sites (a divergent shuffle) or with
//   a mask other than all 32 lanes.
// - When every live thread of a block waits at a barrier that cannot complete (one some
//   threads never reach), the launch aborts at once, naming the barrier: a deadlock.
// - Under ThreadSanitizer each fiber is a TSan thread (the fiber API, switches without
//   synchronisation) and a barrier is a release by every thread that arrives and an
//   acquire by every thread that leaves: TSan sees exactly the ordering barriers give,
//   and reports the shared-memory accesses they do not order. Under AddressSanitizer the
//   fiber stacks are announced at every switch.
//
// What this cannot show: nvcc's code generation, the rounding of `__expf`, occupancy,
// speed, and interleavings other than barrier to barrier (a race TSan reports all the
// same). A feature the kernels do not use is not emulated: it fails to compile (see the
// poisoned names at the end).
#pragma once

#define DIFFBIO_EMU 1

#include <stdint.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <type_traits>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
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

// ---- fibers ------------------------------------------------------------------------

// The emulator's own bookkeeping (scheduler, barrier queues, shuffle slots) runs on one
// host thread but in the TSan threads of many fibers: it is kept out of TSan's sight, so
// that only the kernels' own accesses are checked.
#if defined(__SANITIZE_THREAD__)
#define EMU_INTERNAL inline __attribute__((no_sanitize_thread, noinline))
#else
#define EMU_INTERNAL inline
#endif

struct Fiber;

// Sanitizer hooks around a switch of stacks (no-ops in a plain build).
struct SwitchHooks {
#if defined(__SANITIZE_ADDRESS__)
    void* fake_stack = nullptr;
#endif
#if defined(__SANITIZE_THREAD__)
    void* tsan = nullptr;
#endif
};

struct Progress {
    const char* what = "start";
    int line = 0;
};

EMU_INTERNAL Progress& progress() {
    static Progress p;
    return p;
}

struct ThreadState {
    unsigned shuffles = 0;  // this lane's shuffles so far: picks the slot set
    uint3 thread_idx{0, 0, 0};
    uint3 block_idx{0, 0, 0};
    dim3 block_dim;
    dim3 grid_dim;
    struct Block* block = nullptr;
};

#if !defined(__x86_64__) || !defined(__ELF__)
#error "the CUDA emulator's fiber switch is x86-64 System V assembly for ELF (x86-64 \
Linux): build the cuda-emu feature on such a machine, or add a switch for this one below"
#endif

// Switches stacks: saves the callee-saved registers on the current stack, stores its
// pointer in *save, and resumes the stack at `to` (x86-64 System V; a fiber's first resume
// "returns" into its entry function). Far cheaper than swapcontext, which makes a system
// call each time.
extern "C" void diffbio_emu_switch(void** save, void* to);
asm(R"(
    .text
    .weak diffbio_emu_switch
    .type diffbio_emu_switch, @function
diffbio_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size diffbio_emu_switch, .-diffbio_emu_switch
)");

struct Fiber {
    ThreadState state;
    void* sp = nullptr;  // its saved stack pointer while it does not run
    SwitchHooks hooks;
    bool waiting = false;
    bool done = false;
};

// The scheduler of the running block: the host thread's own context, and the fiber that
// runs now (nullptr while the host thread runs).
struct Scheduler {
    void* host_sp = nullptr;
    SwitchHooks host_hooks;
    const void* host_stack_bottom = nullptr;
    size_t host_stack_size = 0;
    Fiber* current = nullptr;
};

EMU_INTERNAL Scheduler& scheduler() {
    static Scheduler s;
    return s;
}

constexpr size_t kStackBytes = 256 * 1024;

// Stacks for up to 1024 fibers, kept between launches.
EMU_INTERNAL char* fiber_stack(unsigned t) {
    static std::vector<std::unique_ptr<char[]>> stacks;
    while (stacks.size() <= t) stacks.emplace_back(new char[kStackBytes]);
    return stacks[t].get();
}

#if defined(__SANITIZE_THREAD__)
// The TSan thread of fiber slot `t`, kept between blocks and launches (creating one costs
// more than running most blocks). Blocks run one after another, so thread t of a block
// already follows everything of the blocks before it: keeping its TSan thread hides nothing.
EMU_INTERNAL void* tsan_fiber(unsigned t) {
    static std::vector<void*> fibers;
    while (fibers.size() <= t) fibers.push_back(__tsan_create_fiber(0));
    return fibers[t];
}
#endif

// Host thread → fiber `f`, back when `f` waits or exits.
EMU_INTERNAL void resume(Fiber* f, char* stack) {
    Scheduler& s = scheduler();
    s.current = f;
#if defined(__SANITIZE_THREAD__)
    __tsan_switch_to_fiber(f->hooks.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(&s.host_hooks.fake_stack, stack, kStackBytes);
#else
    (void)stack;
#endif
    diffbio_emu_switch(&s.host_sp, f->sp);
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(s.host_hooks.fake_stack, nullptr, nullptr);
#endif
    s.current = nullptr;
}

// The running fiber → the host thread (until resumed; for good once `done`).
EMU_INTERNAL void yield() {
    Scheduler& s = scheduler();
    Fiber* f = s.current;
#if defined(__SANITIZE_THREAD__)
    __tsan_switch_to_fiber(s.host_hooks.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(f->done ? nullptr : &f->hooks.fake_stack, s.host_stack_bottom,
                                   s.host_stack_size);
#endif
    diffbio_emu_switch(&f->sp, s.host_sp);
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(f->hooks.fake_stack, nullptr, nullptr);
#endif
}

EMU_INTERNAL ThreadState& self() { return scheduler().current->state; }

// A barrier whose parties drop out as they exit (as sm_70+ hardware drops exited threads
// from a block barrier). Generations alternate between two TSan sync tokens, so that a
// thread already at the next barrier does not order the accesses of those still leaving
// this one.
class Barrier {
   public:
    explicit Barrier(int parties) : parties_(parties) {}

    EMU_INTERNAL void arrive_and_wait(const char* what, int line) {
        progress() = {what, line};
        Fiber* me = scheduler().current;
        const unsigned generation = generation_;
#if defined(__SANITIZE_THREAD__)
        __tsan_release(&tokens_[generation % 2]);
#endif
        waiting_[n_waiting_++] = me;
        if (n_waiting_ == parties_) {
            complete();
        } else {
            me->waiting = true;
            while (me->waiting) yield();
        }
#if defined(__SANITIZE_THREAD__)
        __tsan_acquire(&tokens_[generation % 2]);
#endif
        (void)generation;
    }

    EMU_INTERNAL void exit() {
        --parties_;
        if (n_waiting_ > 0 && n_waiting_ == parties_) complete();
    }

   private:
    EMU_INTERNAL void complete() {
        for (int i = 0; i < n_waiting_; ++i) waiting_[i]->waiting = false;
        n_waiting_ = 0;
        ++generation_;
    }

    int parties_;
    unsigned generation_ = 0;
    Fiber* waiting_[1024];  // a plain array: no library code runs in TSan's sight
    int n_waiting_ = 0;
    char tokens_[2] = {0, 0};
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
    void (*body)(void*) = nullptr;  // runs the kernel with the launch's arguments
    void* launch = nullptr;
#if defined(__SANITIZE_THREAD__)
    char started = 0;   // TSan token: the host's set-up before every thread's work
    char finished = 0;  // TSan token: every thread's work before the host reads the results
#endif
};

EMU_INTERNAL void* dynamic_shared() { return self().block->dynamic_shared.get(); }

EMU_INTERNAL int lane() { return (int)(self().thread_idx.x % kWarp); }

EMU_INTERNAL Warp& warp() { return *self().block->warps[self().thread_idx.x / kWarp]; }

inline void check_full(unsigned mask, const char* what, int line) {
    if (mask != 0xffffffffu) fail("only full-warp masks are emulated", what, line);
}

template <typename T>
EMU_INTERNAL T exchange(unsigned mask, T value, int source, int line, const char* what) {
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

// __ballot_sync: bit l of the result is lane l's predicate. Every lane of the warp must take
// part (the mask is the full warp's, and on hardware a lane that exited makes it undefined).
EMU_INTERNAL unsigned vote(unsigned mask, bool predicate, int line) {
    check_full(mask, "__ballot_sync", line);
    Warp& w = warp();
    const unsigned serial = self().shuffles++;
    const unsigned set = serial % 2;
    w.slot[set][lane()] = predicate;
    w.site[set][lane()] = line;
    w.serial[set][lane()] = serial;
    w.barrier.arrive_and_wait("__ballot_sync", line);
    unsigned bits = 0;
    for (int l = 0; l < kWarp; ++l) {
        if (w.serial[set][l] != serial) fail("ballot with a lane that did not take part", "__ballot_sync", line);
        if (w.site[set][l] != line) fail("divergent ballot: lanes at different call sites", "__ballot_sync", line);
        bits |= (unsigned)(w.slot[set][l] != 0) << l;
    }
    return bits;
}

// A fiber's life: the kernel, then it leaves its warp's and block's barriers.
EMU_INTERNAL void fiber_main() {
    Scheduler& s = scheduler();
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(nullptr, &s.host_stack_bottom, &s.host_stack_size);
#endif
    Fiber* f = s.current;
    Block* block = f->state.block;
#if defined(__SANITIZE_THREAD__)
    __tsan_acquire(&block->started);
#endif
    block->body(block->launch);
    block->warps[f->state.thread_idx.x / kWarp]->barrier.exit();
    block->barrier.exit();
    progress() = {"exit", 0};
#if defined(__SANITIZE_THREAD__)
    __tsan_release(&block->finished);
#endif
    f->done = true;
    yield();  // never resumed
}

// One lock for every launch of every kernel: the scheduler, the fiber stacks and the
// kernels' static `__shared__` storage are per process.
EMU_INTERNAL std::mutex& launch_mutex() {
    static std::mutex m;
    return m;
}

template <typename Kernel, typename Tuple, size_t... I>
void call(Kernel kernel, Tuple& args, std::index_sequence<I...>) {
    kernel(std::get<I>(args)...);
}

// Runs `kernel(args...)` on a grid of `grid` blocks of `block` threads (1-D, as the
// kernels use), with `shared_bytes` of dynamic shared memory per block. Launches from
// several host threads run one at a time (static `__shared__` storage is per process), as
// on one CUDA stream.
template <typename... Params, typename... Args>
EMU_INTERNAL void launch(void (*kernel)(Params...), unsigned grid, unsigned block, size_t shared_bytes,
            Args... args) {
    std::lock_guard<std::mutex> lock(launch_mutex());
    if (block == 0 || block > 1024 || block % kWarp != 0) fail("block size", "launch", (int)block);
    using Launch = std::pair<decltype(kernel), std::tuple<Args...>>;
    Launch l{kernel, std::tuple<Args...>(args...)};
#if defined(__SANITIZE_THREAD__)
    scheduler().host_hooks.tsan = __tsan_get_current_fiber();
#endif
    std::vector<Fiber> fibers(block);
    for (unsigned b = 0; b < grid; ++b) {
        Block state(block);
        // Exactly `shared_bytes`, so AddressSanitizer reports a read or write past the end.
        state.dynamic_shared.reset(new unsigned char[shared_bytes ? shared_bytes : 1]);
        std::memset(state.dynamic_shared.get(), 0xFF, shared_bytes);
        state.launch = &l;
        state.body = [](void* p) {
            Launch& l = *static_cast<Launch*>(p);
            call(l.first, l.second, std::index_sequence_for<Args...>{});
        };
        for (unsigned t = 0; t < block; ++t) {
            Fiber& f = fibers[t];
            f.state = ThreadState{};
            f.state.thread_idx = {t, 0, 0};
            f.state.block_idx = {b, 0, 0};
            f.state.block_dim.x = block;
            f.state.grid_dim.x = grid;
            f.state.block = &state;
            f.waiting = f.done = false;
            // A first frame for diffbio_emu_switch to pop: six zeroed registers, then
            // fiber_main as the return address, entered with the stack 8 mod 16 as
            // after a call.
            auto top = reinterpret_cast<uintptr_t>(fiber_stack(t) + kStackBytes) & ~uintptr_t(15);
            void** frame = reinterpret_cast<void**>(top) - 8;
            for (int r = 0; r < 6; ++r) frame[r] = nullptr;
            frame[6] = reinterpret_cast<void*>(&fiber_main);
            frame[7] = nullptr;
            f.sp = frame;
#if defined(__SANITIZE_THREAD__)
            f.hooks.tsan = tsan_fiber(t);
#endif
        }
#if defined(__SANITIZE_THREAD__)
        __tsan_release(&state.started);
#endif
        for (unsigned live = block; live > 0;) {
            bool progressed = false;
            live = 0;
            for (unsigned t = 0; t < block; ++t) {
                Fiber& f = fibers[t];
                if (f.done) continue;
                if (!f.waiting) {
                    resume(&f, fiber_stack(t));
                    progressed = true;
                }
                live += !f.done;
            }
            if (live > 0 && !progressed)
                fail("deadlock: every live thread waits; last barrier", progress().what, progress().line);
        }
#if defined(__SANITIZE_THREAD__)
        __tsan_acquire(&state.finished);
#endif
    }
}

}  // namespace emu

#define threadIdx (emu::self().thread_idx)
#define blockIdx (emu::self().block_idx)
#define blockDim (emu::self().block_dim)
#define gridDim (emu::self().grid_dim)

#define __syncthreads() emu::self().block->barrier.arrive_and_wait("__syncthreads", __LINE__)
#define __syncwarp(...) emu::warp().barrier.arrive_and_wait("__syncwarp", __LINE__)
#define __shfl_sync(mask, v, src) emu::exchange((mask), (v), (src), __LINE__, "__shfl_sync")
#define __ballot_sync(mask, predicate) emu::vote((mask), (predicate), __LINE__)
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
// cuda_fp16.h / cuda_bf16.h: the two 16-bit floats as their bits, converted exactly (f16
// through g++'s _Float16, bf16 by hand) with round-to-nearest-even.
struct __half {
    uint16_t bits;
};
struct __nv_bfloat16 {
    uint16_t bits;
};
inline float __half2float(__half h) {
    _Float16 f;
    std::memcpy(&f, &h.bits, 2);
    return (float)f;
}
inline __half __float2half_rn(float v) {
    const _Float16 f = (_Float16)v;
    __half h;
    std::memcpy(&h.bits, &f, 2);
    return h;
}
inline float __bfloat162float(__nv_bfloat16 b) {
    const uint32_t u = (uint32_t)b.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t)((u >> 16) | 0x40)};  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1);
    return {(uint16_t)(u >> 16)};
}
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
using std::exp;
using std::fabs;
using std::fmax;
using std::fmin;
using std::log;
template <typename A, typename B>
inline auto min(A a, B b) -> typename std::common_type<A, B>::type {
    return a < b ? a : b;
}
template <typename A, typename B>
inline auto max(A a, B b) -> typename std::common_type<A, B>::type {
    return a < b ? b : a;
}

// CUDA features the kernels do not use, and so this header does not emulate.
#pragma GCC poison atomicAdd atomicCAS atomicExch atomicMin atomicMax __shfl_up_sync
#pragma GCC poison __any_sync __all_sync __activemask __threadfence
#pragma GCC poison __syncthreads_count __syncthreads_and __syncthreads_or cudaMalloc
