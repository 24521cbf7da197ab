// The kernels compiled as host C++ for the emulator (cuda_emu.h, force-included by the
// build script), with one C entry point that launches a kernel by name the way
// cuLaunchKernel does: `params[i]` points at the kernel's i-th argument, and `types[i]`
// says what the caller passed there (`type_code` below; Rust's `Arg::type_code`), which
// must be the kernel's own parameter type.
#include <cstring>
#include <tuple>
#include <type_traits>

#include "../knn_entropy.cu"
#include "../pairwise_sigmoid_auroc.cu"

namespace {

// 1 int, 2 int64_t, 3 float, 4 double, 5 __half, 6 __nv_bfloat16, 7 uint32_t; 0 another.
template <typename E>
constexpr int scalar_code() {
    if constexpr (std::is_same_v<E, int>) return 1;
    else if constexpr (std::is_same_v<E, int64_t>) return 2;
    else if constexpr (std::is_same_v<E, float>) return 3;
    else if constexpr (std::is_same_v<E, double>) return 4;
    else if constexpr (std::is_same_v<E, __half>) return 5;
    else if constexpr (std::is_same_v<E, __nv_bfloat16>) return 6;
    else if constexpr (std::is_same_v<E, uint32_t>) return 7;
    else return 0;
}

// A scalar's code, or 16 + 2·(its element's code) + 1 for a pointer the kernel may write
// (+ 0 for a pointer to const).
template <typename P>
constexpr int type_code() {
    using V = std::remove_cv_t<P>;
    if constexpr (std::is_pointer_v<V>) {
        using E = std::remove_pointer_t<V>;
        return 16 + 2 * scalar_code<std::remove_cv_t<E>>() + (std::is_const_v<E> ? 0 : 1);
    } else {
        return scalar_code<V>();
    }
}

template <typename... P, size_t... I>
void launch_with(void (*kernel)(P...), unsigned grid, unsigned block, size_t shared_bytes,
                 void** params, std::index_sequence<I...>) {
    emu::launch(kernel, grid, block, shared_bytes,
                *static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(params[I])...);
}

// 0 when launched; 2 for another number of arguments; 3 + i when argument i is not of the
// parameter's type (`types` null: not checked, for the C++ self-test).
template <typename... P>
int launch(void (*kernel)(P...), unsigned grid, unsigned block, size_t shared_bytes,
           void** params, const int* types, size_t n_params) {
    if (n_params != sizeof...(P)) return 2;
    constexpr int expected[] = {type_code<P>()..., 0};
    for (size_t i = 0; types && i < n_params; ++i)
        if (types[i] != expected[i]) return 3 + (int)i;
    launch_with(kernel, grid, block, shared_bytes, params, std::index_sequence_for<P...>{});
    return 0;
}

}  // namespace

// Returns 0 on success, 1 for an unknown kernel, 2 for a wrong number of arguments, 3 + i
// when argument i has another type than the kernel's parameter i. Every instantiation of
// the headers' KNN_ENTROPY_INSTANCES and AUROC_INSTANCES is known.
extern "C" int diffbio_emu_launch(const char* name, unsigned grid, unsigned block,
                                  size_t shared_bytes, void** params, const int* types,
                                  size_t n_params) {
#define DIFFBIO_EMU_KERNEL(kernel)                                                      \
    if (std::strcmp(name, #kernel) == 0)                                                 \
        return launch(kernel, grid, block, shared_bytes, params, types, n_params);
    KNN_ENTROPY_INSTANCES(DIFFBIO_EMU_KERNEL)
    AUROC_INSTANCES(DIFFBIO_EMU_KERNEL)
#undef DIFFBIO_EMU_KERNEL
    return 1;
}
