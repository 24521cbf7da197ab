// The kernels compiled as host C++ for the emulator (cuda_emu.h, force-included by the
// build script), with one C entry point that launches a kernel by name the way
// cuLaunchKernel does: `params[i]` points at the kernel's i-th argument.
#include <cstring>
#include <tuple>
#include <type_traits>

#include "../knn_entropy.cu"
#include "../pairwise_sigmoid_auroc.cu"

namespace {

template <typename... P, size_t... I>
void launch_with(void (*kernel)(P...), unsigned grid, unsigned block, size_t shared_bytes,
                 void** params, std::index_sequence<I...>) {
    emu::launch(kernel, grid, block, shared_bytes,
                *static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(params[I])...);
}

template <typename... P>
bool launch(void (*kernel)(P...), unsigned grid, unsigned block, size_t shared_bytes,
            void** params, size_t n_params) {
    if (n_params != sizeof...(P)) return false;
    launch_with(kernel, grid, block, shared_bytes, params, std::index_sequence_for<P...>{});
    return true;
}

}  // namespace

// Returns 0 on success, 1 for an unknown kernel, 2 for a wrong number of arguments.
extern "C" int diffbio_emu_launch(const char* name, unsigned grid, unsigned block,
                                  size_t shared_bytes, void** params, size_t n_params) {
#define DIFFBIO_EMU_KERNEL(kernel)                                                      \
    if (std::strcmp(name, #kernel) == 0)                                                 \
        return launch(kernel, grid, block, shared_bytes, params, n_params) ? 0 : 2;
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_f32)
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_f64)
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_f16)
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_bf16)
    DIFFBIO_EMU_KERNEL(knn_entropy_mean_f32)
    DIFFBIO_EMU_KERNEL(knn_entropy_mean_f64)
    DIFFBIO_EMU_KERNEL(knn_entropy_mean_f16)
    DIFFBIO_EMU_KERNEL(knn_entropy_mean_bf16)
    DIFFBIO_EMU_KERNEL(knn_entropy_norms_f32)
    DIFFBIO_EMU_KERNEL(knn_entropy_norms_f64)
    DIFFBIO_EMU_KERNEL(knn_entropy_norms_f16)
    DIFFBIO_EMU_KERNEL(knn_entropy_norms_bf16)
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_tiled_f32)
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_tiled_f64)
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_tiled_f16)
    DIFFBIO_EMU_KERNEL(knn_entropy_fwd_tiled_bf16)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_tiled_f32)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_tiled_f64)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_tiled_f16)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_tiled_bf16)
    DIFFBIO_EMU_KERNEL(knn_entropy_loss_f64)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_f32)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_f64)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_f16)
    DIFFBIO_EMU_KERNEL(knn_entropy_bwd_bf16)
    DIFFBIO_EMU_KERNEL(auroc_compact_f32)
    DIFFBIO_EMU_KERNEL(auroc_compact_f64)
    DIFFBIO_EMU_KERNEL(auroc_compact_f16)
    DIFFBIO_EMU_KERNEL(auroc_compact_bf16)
    DIFFBIO_EMU_KERNEL(auroc_centres_f32)
    DIFFBIO_EMU_KERNEL(auroc_centres_f64)
    DIFFBIO_EMU_KERNEL(auroc_pairs_f32)
    DIFFBIO_EMU_KERNEL(auroc_pairs_f64)
    DIFFBIO_EMU_KERNEL(auroc_columns_f32)
    DIFFBIO_EMU_KERNEL(auroc_columns_f64)
    DIFFBIO_EMU_KERNEL(auroc_finish_f32)
    DIFFBIO_EMU_KERNEL(auroc_finish_f64)
#undef DIFFBIO_EMU_KERNEL
    return 1;
}
