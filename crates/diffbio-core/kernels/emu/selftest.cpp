// Runs every kernel of crates/diffbio-core/kernels through the CPU emulator (cuda_emu.h) on
// small cases and checks them against float64 references written out here by brute force:
// the batch-mixing loss (SPEC.md §1) and its gradient (central finite differences of the
// emulated forward), the AUROC surrogate's value and gradients (SPEC.md §6, all pairs).
// Every case also runs as three row ranges (the sharded losses' launches), whose rows must
// equal the whole launch's bit for bit and whose shares must add up to its value.
// Outputs start as NaN, so an element a kernel forgets to write fails.
//
// It is the sanitizers' driver: scripts/emulate-kernels.sh builds it three times (plain,
// ThreadSanitizer, AddressSanitizer + UndefinedBehaviorSanitizer) and runs it; it exits
// non-zero on a mismatch, and the emulator or a sanitizer aborts on a race, a deadlock, a
// divergent shuffle or an out-of-bounds access. The parity of the kernels with the CPU
// path, launched through the Rust plans a GPU uses, is `cargo test --features cuda-emu`.
//
// The launch shapes below follow the Rust plans (crates/diffbio-core/src/*/launch.rs): at
// most 8 warps per block within 48 KiB of dynamic shared memory, the tiled forward's
// blocks of 256 threads within 96 KiB, single blocks of 1024 threads, 256 centres per
// AUROC block. A shape the plans never produce is still a valid launch, so a difference
// here weakens a check but cannot hide a kernel bug it shows.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" int diffbio_emu_launch(const char* name, unsigned grid, unsigned block,
                                  size_t shared_bytes, void** params, const int* types,
                                  size_t n_params);

namespace {

int failures = 0;

// Prints how long each check took (the emulator's cost grows with threads × barriers).
struct Timer {
    explicit Timer(std::string label) : label(std::move(label)), start(std::chrono::steady_clock::now()) {}
    ~Timer() {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%6.2f s  %s\n", s, label.c_str());
        std::fflush(stdout);
    }
    std::string label;
    std::chrono::steady_clock::time_point start;
};

void launch(const std::string& name, unsigned grid, unsigned block, size_t shared,
            std::vector<void*> params) {
    // No type codes: the Rust plans' arguments are the checked ones (src/launch.rs).
    const int rc = diffbio_emu_launch(name.c_str(), grid, block, shared, params.data(), nullptr, params.size());
    if (rc != 0) {
        std::fprintf(stderr, "launch %s failed: %d\n", name.c_str(), rc);
        std::exit(2);
    }
}

void expect_close(const char* what, const std::string& label, double got, double want, double tol) {
    const double err = std::fabs(got - want) / std::max(std::fabs(want), 1e-6);
    if (!(err <= tol)) {
        std::fprintf(stderr, "FAIL %s [%s]: %.12g vs %.12g (rel err %.2e)\n", what, label.c_str(), got, want, err);
        ++failures;
    }
}

void expect_small(const char* what, const std::string& label, double value, double tol) {
    if (!(value <= tol)) {
        std::fprintf(stderr, "FAIL %s [%s]: %.3e > %.1e\n", what, label.c_str(), value, tol);
        ++failures;
    }
}

template <typename T> const char* suffix();
template <> const char* suffix<float>() { return "f32"; }
template <> const char* suffix<double>() { return "f64"; }

constexpr int kWidthFixed = 5;  // ST_BETA: the statistics before the per-batch β

struct Mixing {
    int n, d, k, b;
    double t;
};

// SPEC.md §1 in float64, all pairs.
double dense_mixing(const std::vector<double>& x, const std::vector<uint32_t>& labels, const Mixing& c) {
    double total = 0;
    for (int i = 0; i < c.n; ++i) {
        std::vector<double> dist(c.n);
        for (int j = 0; j < c.n; ++j) {
            double s = 0;
            for (int q = 0; q < c.d; ++q) {
                const double t = x[i * c.d + q] - x[j * c.d + q];
                s += t * t;
            }
            dist[j] = j == i ? INFINITY : s;
        }
        std::vector<double> sorted(dist);
        std::sort(sorted.begin(), sorted.end());
        const double kappa = sorted[c.k - 1], dmin = sorted[0];
        double z = 0;
        std::vector<double> s(c.b, 0.0);
        for (int j = 0; j < c.n; ++j) {
            if (j == i) continue;
            const double a = std::exp(-(dist[j] - dmin) / c.t);
            const double m = 1 / (1 + std::exp(-(kappa - dist[j] - 1e-10) / c.t));
            z += a;
            s[labels[j]] += a * m;
        }
        double den = 1e-8 * z;
        for (double v : s) den += v;
        double h = 0;
        for (double v : s) h -= v / den * std::log(v / den + 1e-8);
        total += h;
    }
    return -total / (c.n * (std::log((double)c.b) + 1e-8));
}

// The forward's shared-memory layout (src/batch_mixing/launch.rs, forward_layout): the k
// nearest by per-lane lists or by radix select, the class sums `chunk` classes a sweep.
struct Layout {
    int radix, chunk;
    size_t per_warp;
};

constexpr size_t kSharedLimit = 48 * 1024;

Layout layout_of(const Mixing& c, size_t size, int radix, int chunk) {
    const size_t selection = radix ? 16 * 33 * 4 : 32 * (size_t)c.k * (size + 4);
    const size_t bytes = 2 * (size_t)c.b * 8 + selection + 2 * (size_t)chunk * 32 * size;
    return {radix, chunk, (bytes + 7) / 8 * 8};
}

Layout plan_layout(const Mixing& c, size_t size) {
    const Layout whole = layout_of(c, size, 0, c.b);
    if (whole.per_warp <= kSharedLimit) return whole;
    const int radix = layout_of(c, size, 0, std::min(c.b, 32)).per_warp > kSharedLimit;
    const size_t fixed = layout_of(c, size, radix, 0).per_warp;
    const int chunk = (int)std::min<size_t>(c.b, (kSharedLimit - std::min(fixed, kSharedLimit)) / (64 * size));
    if (chunk == 0) {
        std::fprintf(stderr, "no layout fits d=%d B=%d\n", c.d, c.b);
        std::exit(2);
    }
    return layout_of(c, size, radix, chunk);
}

int warps_for(size_t per_warp) { return (int)std::min<size_t>(8, 48 * 1024 / per_warp); }

// The tiled forward (src/batch_mixing/launch.rs, forward_kernel): 64 × 64 tiles in f32,
// 32 × 32 in f64, taken while its shared memory (tiled_forward_bytes) fits 96 KiB.
int tile_side(size_t size) { return size == 4 ? 64 : 32; }

size_t tiled_bytes(const Mixing& c, size_t size) {
    const size_t side = tile_side(size), depth = 16, pad = 4;
    const size_t parts[] = {size * depth * (side + pad), size * depth * (side + pad), size * side * (side + pad),
                            size * side, size * side, 4 * side, 4 * side, size * side, size * side, size * side,
                            8 * side, 4 * side, 4 * side, size * side * c.k, 4 * side * c.k};
    size_t total = 0;
    for (size_t p : parts) total += (p + 7) / 8 * 8;
    return total;
}

bool plan_is_tiled(const Mixing& c, size_t size) { return tiled_bytes(c, size) <= 96 * 1024; }

// The tiled backward (tiled_backward): d ≤ 128, the forward's memory without lists, row and
// column statistics, the column tile's points.
size_t tiled_backward_bytes(const Mixing& c, size_t size) {
    const size_t side = tile_side(size);
    const size_t parts[] = {size * side, size * side, size * side, 4 * side, size * side, size * side,
                            size * side, size * side, 4 * side, size * side * c.d};
    size_t total = tiled_bytes({c.n, c.d, 0, c.b, c.t}, size);
    for (size_t p : parts) total += (p + 7) / 8 * 8;
    return total;
}

bool backward_is_tiled(const Mixing& c, size_t size) {
    return c.d <= 128 && tiled_backward_bytes(c, size) <= 96 * 1024;
}

// The column means and centred norms both tiled kernels read (TiledColumns::new).
template <typename T>
void centre(const std::vector<T>& x, const Mixing& c, std::vector<double>& mean, std::vector<T>& norms) {
    mean.assign(c.d, NAN);
    norms.assign(c.n, (T)NAN);
    const T* xp = x.data();
    double* mp = mean.data();
    T* np_ = norms.data();
    int n = c.n, d = c.d;
    launch(std::string("knn_entropy_mean_") + suffix<T>(), c.d, 256, 0, {&xp, &n, &d, &mp});
    launch(std::string("knn_entropy_norms_") + suffix<T>(), (c.n + 255) / 256, 256, 0, {&xp, &mp, &n, &d, &np_});
}

// The columns in batch order, each batch padded to whole tiles (ColumnTiles::new).
void column_tiles(const std::vector<uint32_t>& labels, int b, int side, std::vector<uint32_t>& order,
                  std::vector<uint32_t>& tile_batch) {
    order.clear();
    tile_batch.clear();
    for (int batch = 0; batch < b; ++batch) {
        size_t members = 0;
        for (size_t i = 0; i < labels.size(); ++i)
            if ((int)labels[i] == batch) {
                order.push_back((uint32_t)i);
                ++members;
            }
        const size_t tiles = (members + side - 1) / side;
        order.resize(order.size() + tiles * side - members, UINT32_MAX);
        tile_batch.resize(tile_batch.size() + tiles, (uint32_t)batch);
    }
}

// Rows [start, start + len) of the cells: what one launch computes.
struct Rows {
    int start, len;
};

// The emulated forward pass of `rows` (all of them by default): their share of the loss,
// and their statistics in `stats` (sized for those rows only, so ASan sees a stray row).
// With `host_sum` the per-row entropies are totalled here instead of by knn_entropy_loss
// (a block of 1024 threads): the finite differences call this for every coordinate. The
// layout is the plan's unless `forced` (radix select and/or fewer classes a sweep).
template <typename T>
double emulated_mixing(const std::vector<T>& x, const std::vector<uint32_t>& labels, const Mixing& c,
                       std::vector<double>& stats, bool host_sum = false, Rows rows = {0, -1},
                       const Layout* forced = nullptr) {
    if (rows.len < 0) rows.len = c.n;
    const int width = kWidthFixed + c.b;
    stats.assign((size_t)rows.len * width, NAN);
    std::vector<double> entropy(rows.len, NAN), loss(1, NAN);
    const T* xp = x.data();
    const uint32_t* lp = labels.data();
    double* sp = stats.data();
    double* ep = entropy.data();
    double* op = loss.data();
    int n = c.n, d = c.d, k = c.k, b = c.b;
    T inv_t = (T)(1.0 / c.t);
    if (!forced && plan_is_tiled(c, sizeof(T))) {
        std::vector<uint32_t> order, tile_batch;
        const int side = tile_side(sizeof(T));
        column_tiles(labels, c.b, side, order, tile_batch);
        std::vector<double> mean, class_r((size_t)rows.len * c.b, NAN);
        std::vector<T> norms;
        centre(x, c, mean, norms);
        double* mp = mean.data();
        T* np_ = norms.data();
        const uint32_t* orp = order.data();
        const uint32_t* tbp = tile_batch.data();
        double* rp = class_r.data();
        int n_tiles = (int)tile_batch.size();
        launch(std::string("knn_entropy_fwd_tiled_") + suffix<T>(), (rows.len + side - 1) / side, 256,
               tiled_bytes(c, sizeof(T)),
               {&xp, &mp, &np_, &orp, &tbp, &n_tiles, &n, &d, &k, &b, &inv_t, &rows.start, &rows.len, &sp, &rp, &ep});
    } else {
        Layout layout = forced ? *forced : plan_layout(c, sizeof(T));
        const int warps = warps_for(layout.per_warp);
        launch(std::string("knn_entropy_fwd_") + suffix<T>(), (rows.len + warps - 1) / warps, 32 * warps,
               layout.per_warp * warps,
               {&xp, &lp, &n, &d, &k, &b, &layout.chunk, &layout.radix, &inv_t, &rows.start, &rows.len, &sp, &ep});
    }
    if (host_sum) {
        double total = 0;
        for (double h : entropy) total += h;
        return -total / (c.n * (std::log((double)c.b) + 1e-8));
    }
    launch("knn_entropy_loss_f64", 1, 1024, 0, {&ep, &rows.len, &n, &b, &op});
    return loss[0];
}

// The emulated backward pass of `rows` (all of them by default) from every row's `stats`.
template <typename T>
std::vector<double> emulated_mixing_grad(const std::vector<T>& x, const std::vector<uint32_t>& labels,
                                         const Mixing& c, std::vector<double>& stats, Rows rows = {0, -1}) {
    if (rows.len < 0) rows.len = c.n;
    std::vector<T> grad((size_t)rows.len * c.d, (T)NAN);
    const T* xp = x.data();
    const uint32_t* lp = labels.data();
    const double* sp = stats.data();
    T* gp = grad.data();
    int n = c.n, d = c.d, b = c.b;
    T inv_t = (T)(1.0 / c.t);
    if (backward_is_tiled(c, sizeof(T))) {
        std::vector<uint32_t> order, tile_batch;
        const int side = tile_side(sizeof(T));
        column_tiles(labels, c.b, side, order, tile_batch);
        std::vector<double> mean;
        std::vector<T> norms;
        centre(x, c, mean, norms);
        const double* mp = mean.data();
        const T* np_ = norms.data();
        const uint32_t* orp = order.data();
        const uint32_t* tbp = tile_batch.data();
        int n_tiles = (int)tile_batch.size();
        launch(std::string("knn_entropy_bwd_tiled_") + suffix<T>(), (rows.len + side - 1) / side, 256,
               tiled_backward_bytes(c, sizeof(T)),
               {&xp, &mp, &np_, &lp, &orp, &tbp, &sp, &n_tiles, &n, &d, &b, &inv_t, &rows.start, &rows.len, &gp});
    } else {
        // 8 warps a block, static shared memory; the workspace is for half inputs only.
        T unused = (T)NAN;
        T* wp = &unused;
        launch(std::string("knn_entropy_bwd_") + suffix<T>(), (rows.len + 7) / 8, 256, 0,
               {&xp, &lp, &sp, &n, &d, &b, &inv_t, &rows.start, &rows.len, &gp, &wp});
    }
    return std::vector<double>(grad.begin(), grad.end());
}

// Three launches covering the n cells (the middle one at least one row).
std::vector<Rows> thirds(int n) {
    const int a = n / 3, b = std::max(a + 1, 2 * n / 3);
    return {{0, a}, {a, b - a}, {b, n - b}};
}

// `got` equals `want[from..]` element for element (the same arithmetic, row by row).
template <typename V>
void expect_same_rows(const char* what, const std::string& label, const std::vector<V>& got,
                      const std::vector<V>& want, size_t from) {
    for (size_t e = 0; e < got.size(); ++e)
        if (!(got[e] == want[from + e])) {
            std::fprintf(stderr, "FAIL %s [%s]: element %zu is %.17g, the whole launch's %.17g\n", what,
                         label.c_str(), from + e, (double)got[e], (double)want[from + e]);
            ++failures;
            return;
        }
}

// The forward and backward of each third of the rows against the whole launch's.
template <typename T>
void check_mixing_rows(const std::vector<T>& x, const std::vector<uint32_t>& labels, const Mixing& c,
                       std::vector<double>& stats, double loss, const std::string& label) {
    const std::vector<double> grad = emulated_mixing_grad(x, labels, c, stats);
    const size_t width = kWidthFixed + c.b;
    double shares = 0;
    for (Rows rows : thirds(c.n)) {
        if (rows.len == 0) continue;  // the launchers skip an empty range
        std::vector<double> own;
        shares += emulated_mixing(x, labels, c, own, false, rows);
        expect_same_rows("batch mixing row-range statistics", label, own, stats, rows.start * width);
        const std::vector<double> own_grad = emulated_mixing_grad(x, labels, c, stats, rows);
        expect_same_rows("batch mixing row-range gradient", label, own_grad, grad, (size_t)rows.start * c.d);
    }
    expect_close("batch mixing row-range shares", label, shares, loss, 1e-12);
}

template <typename T>
void check_mixing(const Mixing& c, std::mt19937_64& rng, bool with_grad, bool duplicates) {
    std::normal_distribution<double> normal;
    std::vector<double> x((size_t)c.n * c.d);
    for (auto& v : x) v = normal(rng);
    if (duplicates)  // exact distance ties: every other cell repeats its predecessor
        for (int i = 1; i < c.n; i += 2)
            std::copy(x.begin() + (i - 1) * c.d, x.begin() + i * c.d, x.begin() + i * c.d);
    std::vector<uint32_t> labels(c.n);
    for (int i = 0; i < c.n; ++i) labels[i] = (uint32_t)(rng() % c.b);
    std::vector<T> xt(x.begin(), x.end());
    std::vector<double> rounded(xt.begin(), xt.end());
    const std::string label = std::string(suffix<T>()) + " n=" + std::to_string(c.n) + " d=" +
                              std::to_string(c.d) + " k=" + std::to_string(c.k) + " B=" +
                              std::to_string(c.b) + " T=" + std::to_string(c.t) + (duplicates ? " dup" : "");
    Timer timer("batch mixing " + label + (with_grad ? " + gradient" : ""));
    std::vector<double> stats;
    const double got = emulated_mixing(xt, labels, c, stats);
    const double tol = sizeof(T) == 4 ? 1e-4 : 1e-9;
    expect_close("batch mixing loss", label, got, dense_mixing(rounded, labels, c), tol);
    for (double v : stats)
        if (!std::isfinite(v)) {
            expect_close("batch mixing statistics finite", label, v, 0.0, 0.0);
            break;
        }
    check_mixing_rows(xt, labels, c, stats, got, label);
    // The warp kernel (the plan's for large k) on the same cells, then its other layouts:
    // radix select, and the classes in chunks (of a third, at least one), give its
    // statistics bit for bit (the same distances, selected and summed in the same order).
    const Layout warp_plan = plan_layout(c, sizeof(T));
    std::vector<double> warp_stats;
    const double warp_value = emulated_mixing(xt, labels, c, warp_stats, false, {0, -1}, &warp_plan);
    expect_close("batch mixing loss, warp kernel", label, warp_value, dense_mixing(rounded, labels, c), tol);
    const int third = std::max(1, c.b / 3);
    for (Layout forced : {layout_of(c, sizeof(T), 1, c.b), layout_of(c, sizeof(T), 0, third),
                          layout_of(c, sizeof(T), 1, third)}) {
        if (forced.per_warp > kSharedLimit) continue;
        std::vector<double> other;
        const double value = emulated_mixing(xt, labels, c, other, false, {0, -1}, &forced);
        const std::string which = label + (forced.radix ? " radix" : " lists") + " chunk=" +
                                  std::to_string(forced.chunk);
        expect_same_rows("batch mixing statistics of another layout", which, other, warp_stats, 0);
        expect_close("batch mixing loss of another layout", which, value, warp_value, 0.0);
    }
    if (!with_grad) return;
    const std::vector<double> grad = emulated_mixing_grad(xt, labels, c, stats);
    // The reference gradient: central differences of the emulated float64 forward (for
    // f32, of its f32-rounded inputs), by the warp kernel (2·n·d forwards: the tiled
    // kernel's blocks of 256 threads would take minutes under ThreadSanitizer).
    const Layout fd_plan = plan_layout(c, sizeof(double));
    std::vector<double> probe(rounded), scratch;
    double diff2 = 0, norm2 = 0;
    for (size_t e = 0; e < probe.size(); ++e) {
        const double h = 1e-6, keep = probe[e];
        probe[e] = keep + h;
        const double plus = emulated_mixing(probe, labels, c, scratch, true, {0, -1}, &fd_plan);
        probe[e] = keep - h;
        const double minus = emulated_mixing(probe, labels, c, scratch, true, {0, -1}, &fd_plan);
        probe[e] = keep;
        const double fd = (plus - minus) / (2 * h);
        diff2 += (grad[e] - fd) * (grad[e] - fd);
        norm2 += fd * fd;
    }
    expect_small("batch mixing gradient (error norm / norm)", label, std::sqrt(diff2 / std::max(norm2, 1e-24)),
                 sizeof(T) == 4 ? 1e-2 : 1e-5);
}

// SPEC.md §6 in float64, all pairs: value, ∂/∂T and ∂/∂s.
void dense_auroc(const std::vector<double>& s, const std::vector<double>& y, double t, double& value,
                 double& grad_t, std::vector<double>& grad_s) {
    const size_t n = s.size();
    double pairs = 0;
    value = grad_t = 0;
    grad_s.assign(n, 0.0);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) {
            if (y[i] != 1 || y[j] != 0) continue;
            pairs += 1;
            // σ and σ' = e^{−|z|}/(1 + e^{−|z|})² from e^{−|z|}: exact where 1 − σ would cancel.
            const double z = (s[i] - s[j]) / t, e = std::exp(-std::fabs(z));
            const double sig = z >= 0 ? 1 / (1 + e) : e / (1 + e), slope = e / ((1 + e) * (1 + e));
            value += sig;
            grad_t -= slope * z / t;
            grad_s[i] += slope / t;
            grad_s[j] -= slope / t;
        }
    if (pairs == 0) return;
    value /= pairs;
    grad_t /= pairs;
    for (double& g : grad_s) g /= pairs;
}

// The emulated surrogate with the cells `rows` (all of them by default) as centres:
// [value share, ∂/∂T share, ∂/∂s of each centre]; empty when a class is empty (the
// launcher then returns zeros without the sweeps). `n_pos` gets the positives' count.
// As the plan: `fused` (all cells only) sweeps the pairs once (auroc_pairs, per-block sums
// of the negatives totalled by auroc_columns), otherwise each class's centres against the
// other class (auroc_centres twice).
template <typename T>
std::vector<T> emulated_auroc(const std::vector<T>& s, const std::vector<T>& labels, double t,
                              int64_t& n_pos_out, bool fused, Rows rows = {0, -1}) {
    int64_t n = (int64_t)s.size();
    int64_t row_start = rows.start, n_rows = rows.len < 0 ? n : rows.len;
    std::vector<T> pos(n, (T)NAN), neg(n, (T)NAN);
    std::vector<int64_t> pos_index(n, -1), neg_index(n, -1), counts(6, -1);
    const T* sp = s.data();
    const T* lp = labels.data();
    T* pp = pos.data();
    T* np_ = neg.data();
    int64_t* pi = pos_index.data();
    int64_t* ni = neg_index.data();
    int64_t* cp = counts.data();
    launch(std::string("auroc_compact_") + suffix<T>(), 1, 1024, 0,
           {&sp, &lp, &n, &row_start, &n_rows, &pp, &pi, &np_, &ni, &cp});
    const int64_t n_pos = counts[0], n_neg = counts[1];
    n_pos_out = n_pos;
    if (n_pos == 0 || n_neg == 0) return {};
    const int64_t pos_first = counts[2], own_pos = counts[3] - counts[2];
    const int64_t neg_first = counts[4], own_neg = counts[5] - counts[4];
    std::vector<T> pos_sums(3 * std::max<int64_t>(own_pos, 1), (T)NAN);
    std::vector<T> neg_sums(3 * std::max<int64_t>(own_neg, 1), (T)NAN), out(2 + n_rows, (T)NAN);
    T inv_t = (T)(1 / t), minus_inv_t = (T)(-1 / t);
    const auto blocks = [](int64_t centres) { return (unsigned)((centres + 63) / 64); };
    if (fused) {
        // The plan's grid: a block per 64 positives, at most 256 (here 3, to sweep several
        // row tiles per block).
        int n_blocks = (int)std::min<unsigned>(blocks(n_pos), 3);
        int64_t n_p = n_pos, n_q = n_neg;
        std::vector<T> partials((size_t)(n_blocks * n_neg), (T)0);
        T* part = partials.data();
        T* ps = pos_sums.data();
        T* ns = neg_sums.data();
        launch(std::string("auroc_pairs_") + suffix<T>(), (unsigned)n_blocks, 256, 0,
               {&pp, &n_p, &np_, &n_q, &inv_t, &ps, &part});
        launch(std::string("auroc_columns_") + suffix<T>(), (unsigned)((n_neg + 255) / 256), 256, 0,
               {&part, &n_blocks, &n_q, &ns});
    } else {
        // The centres class[first, end), in the whole class's tiles of 64.
        auto sweep = [&](T* class_scores, int64_t first, int64_t end, T* others, int64_t n_others, T scale,
                         T* sums) {
            if (end == first) return;
            launch(std::string("auroc_centres_") + suffix<T>(), blocks(end) - (unsigned)(first / 64), 256, 0,
                   {&class_scores, &first, &end, &others, &n_others, &scale, &sums});
        };
        sweep(pp, pos_first, pos_first + own_pos, np_, n_neg, inv_t, pos_sums.data());
        sweep(np_, neg_first, neg_first + own_neg, pp, n_pos, minus_inv_t, neg_sums.data());
    }
    double norm = 1.0 / ((double)n_pos * (double)n_neg);
    T* ps = pos_sums.data();
    T* ns = neg_sums.data();
    T* op = out.data();
    launch(std::string("auroc_finish_") + suffix<T>(), 1, 1024, 0,
           {&ps, &pi, &ns, &ni, &cp, &row_start, &norm, &inv_t, &op});
    return out;
}

template <typename T>
void check_auroc(const std::vector<double>& scores, const std::vector<double>& y, double t, const std::string& what) {
    const std::vector<T> s(scores.begin(), scores.end()), labels(y.begin(), y.end());
    const int64_t n = (int64_t)s.size();
    const std::string label = std::string(suffix<T>()) + " " + what;
    Timer timer("auroc " + label);
    int64_t n_pos = 0;
    const std::vector<T> fused = emulated_auroc(s, labels, t, n_pos, true);
    expect_close("auroc positives", label, (double)n_pos, (double)std::count(y.begin(), y.end(), 1.0), 0.0);
    if (fused.empty()) return;
    const std::vector<T> out = emulated_auroc(s, labels, t, n_pos, false);
    double value, grad_t;
    std::vector<double> grad_s;
    dense_auroc(std::vector<double>(s.begin(), s.end()), y, (double)(T)t, value, grad_t, grad_s);
    const double tol = sizeof(T) == 4 ? 1e-4 : 1e-9;
    for (const auto& [form, got] : {std::pair{"one sweep", &fused}, std::pair{"centre sweeps", &out}}) {
        const std::string what = label + ", " + form;
        expect_close("auroc value", what, (double)(*got)[0], value, tol);
        expect_close("auroc d/dT", what, (double)(*got)[1], grad_t, sizeof(T) == 4 ? 1e-3 : 1e-9);
        double diff2 = 0, norm2 = 0;
        for (int64_t i = 0; i < n; ++i) {
            diff2 += ((double)(*got)[2 + i] - grad_s[i]) * ((double)(*got)[2 + i] - grad_s[i]);
            norm2 += grad_s[i] * grad_s[i];
        }
        expect_small("auroc d/ds (error norm / norm)", what, std::sqrt(diff2 / std::max(norm2, 1e-24)),
                     sizeof(T) == 4 ? 1e-4 : 1e-9);
    }
    // The same cells as centres in three launches: each centre's gradient as in the whole
    // launch of the centre sweeps, the value and ∂/∂T shares adding up to its.
    double value_shares = 0, grad_t_shares = 0;
    for (Rows rows : thirds((int)n)) {
        if (rows.len == 0) continue;
        const std::vector<T> own = emulated_auroc(s, labels, t, n_pos, false, rows);
        value_shares += (double)own[0];
        grad_t_shares += (double)own[1];
        expect_same_rows("auroc row-range d/ds", label, std::vector<T>(own.begin() + 2, own.end()), out,
                         2 + (size_t)rows.start);
    }
    const double share_tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
    expect_close("auroc row-range value shares", label, value_shares, (double)out[0], share_tol);
    expect_close("auroc row-range d/dT shares", label, grad_t_shares, (double)out[1], share_tol);
}

// DIFFBIO_EMU_ONLY=mixing or =auroc runs one op's checks (e.g. to try a planted bug fast).
bool wanted(const char* op) {
    const char* only = std::getenv("DIFFBIO_EMU_ONLY");
    return only == nullptr || std::strcmp(only, op) == 0;
}

template <typename T>
void check_mixing_cases(std::mt19937_64& rng) {
    // n below a warp, not a multiple of a warp or a block, k = 1 and k = n - 1, B up to 64,
    // duplicate points, extreme temperatures.
    check_mixing<T>({5, 2, 3, 2, 1.0}, rng, true, false);
    check_mixing<T>({4, 2, 3, 3, 0.7}, rng, true, false);
    check_mixing<T>({10, 3, 9, 2, 1.0}, rng, false, true);
    check_mixing<T>({40, 5, 7, 3, 1.0}, rng, false, false);
    check_mixing<T>({33, 4, 1, 4, 2.0}, rng, false, true);
    check_mixing<T>({20, 3, 19, 5, 1e3}, rng, false, false);
    check_mixing<T>({9, 8, 5, 64, 1e-3}, rng, false, false);
    // Past the class sums' shared memory (B = 200: chunks of classes in the plan), on data
    // of its own (the cases above keep theirs); every case above also ran with radix select
    // and chunks forced. The plans' radix select at large k (k = 299, 1,000) is cargo's
    // parity suite's.
    std::mt19937_64 own(11);
    check_mixing<T>({40, 3, 7, 200, 1.0}, own, false, false);
    // The tiled forward: n and d around its tiles (64 in f32, 32 in f64; 16 dimensions a
    // step), a batch's run across tiles, duplicates; each also against the warp kernel.
    std::mt19937_64 tiles(12);
    check_mixing<T>({65, 17, 9, 3, 1.0}, tiles, false, false);
    check_mixing<T>({70, 16, 40, 2, 0.5}, tiles, false, true);
    check_mixing<T>({6, 33, 5, 3, 1.0}, tiles, false, false);
    // The warp backward (d > 128) with its columns in two blocks of 256, each third of the
    // rows against the whole launch (its gradient against cargo's parity suite).
    check_mixing<T>({260, 129, 5, 3, 1.0}, tiles, false, false);
}

template <typename T>
void check_auroc_cases(std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    // 2600: many row tiles per block and steps of others (64 centres, 256 others a tile)
    for (int64_t n : {5, 37, 1500, 2600}) {
        std::vector<double> s(n), y(n);
        for (int64_t i = 0; i < n; ++i) {
            s[i] = std::round(normal(rng) * 4) / 4;  // heavy ties
            y[i] = (double)(rng() % 3 == 0);
        }
        y[0] = 1;
        y[1] = 0;
        check_auroc<T>(s, y, 0.5, "n=" + std::to_string(n) + " ties");
    }
    // Exactly whole tiles (128 positives: two of 64; 512 negatives: two steps of 256) and
    // one past them (193, 513).
    for (auto [n_pos, n_neg] : {std::pair{128, 512}, std::pair{193, 513}}) {
        std::vector<double> s(n_pos + n_neg), y(n_pos + n_neg, 0.0);
        for (auto& v : s) v = normal(rng);
        for (int i = 0; i < n_pos; ++i) y[(size_t)i * (n_pos + n_neg) / n_pos] = 1;
        check_auroc<T>(s, y, 0.7, std::to_string(n_pos) + " x " + std::to_string(n_neg) + " tiles");
    }
    std::vector<double> one_pos(50, 0.0), s(50);
    for (auto& v : s) v = normal(rng);
    one_pos[17] = 1;
    check_auroc<T>(s, one_pos, 1.0, "one positive");
    std::vector<double> one_neg(50, 1.0);
    one_neg[3] = 0;
    check_auroc<T>(s, one_neg, 1e-3, "all but one positive");
    check_auroc<T>(s, std::vector<double>(50, 1.0), 1.0, "no negative");
}

}  // namespace

int main() {
    std::mt19937_64 rng(7);
    if (wanted("mixing")) {
        check_mixing_cases<double>(rng);
        check_mixing_cases<float>(rng);
    }
    if (wanted("auroc")) {
        check_auroc_cases<double>(rng);
        check_auroc_cases<float>(rng);
    }
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("cuda-emu selftest: every kernel matches its float64 reference\n");
    return 0;
}
