//! The launches of the k-NN soft-neighbour entropy (`kernels/knn_entropy.cu`) on any
//! [`KernelDevice`]: one plan per kernel, one sequence per direction.
//!
//! The op output is the contract's (`super::contract`): `[loss, per-row statistics...]` in
//! f64, rows in input order, so the backward finds κ_i, j*(i), Dmin_i, γ_i, ∂L/∂κ_i and β_i·
//! without an n×n buffer. Memory: the statistics, one f64 entropy per row, shared memory per
//! block; the tiled forward adds the columns in batch order (n u32 and each batch's padding
//! to a tile), the column means (d f64), the centred norms (n) and R_c (n_rows·B f64).
//! Every kernel computes a range of rows against all n columns.

use std::ops::Range;

use super::contract::{Params, RowStats};
use crate::launch::{
    as_i32, kernel_name, warps_per_block, Arg, DeviceKernel, KernelDevice, KernelInput, KernelReal,
    Launch, Module, Shape, SHARED_MEMORY_LIMIT,
};

/// The forward's kernels for one launch: the tiled kernel while its per-row lists fit
/// [`TILED_SHARED_LIMIT`] (every k up to 135 in f32, 202 in f64), else the warp-per-row
/// kernel with the layout [`forward_layout`] chooses (any k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardKernel {
    Tiled { shared_bytes: usize },
    Warp(ForwardLayout),
}

/// The most shared memory a block of the tiled forward takes: 96 KiB, within what every
/// GPU since sm_80 lets a kernel opt in to (sm_86/89 99 KiB, sm_80 163, sm_90 227).
pub(crate) const TILED_SHARED_LIMIT: usize = 96 * 1024;

/// Threads of a tiled block, dimensions staged per step, shared-memory row padding
/// (`kernels/knn_entropy_tiles.cuh`).
const TILE_THREADS: u32 = 256;
const TILE_DEPTH: usize = 16;
const TILE_PAD: usize = 4;

/// Rows and columns of one tile of the tiled forward (the kernels' `TiledShape<T>`).
pub(crate) fn tile_shape<T: KernelReal>() -> (usize, usize) {
    match std::mem::size_of::<T>() {
        4 => (64, 64),
        _ => (32, 32),
    }
}

/// The tiled forward's shared memory per block, as its `TiledShared` carves it: the
/// staged dimensions, the distance tile, per-row and per-column state, and the rows'
/// sorted lists of k (distance, index) pairs; each part rounded up to 8 bytes.
fn tiled_forward_bytes<T: KernelReal>(k: usize) -> usize {
    let (rows, cols) = tile_shape::<T>();
    let t = std::mem::size_of::<T>();
    [
        t * TILE_DEPTH * (rows + TILE_PAD),
        t * TILE_DEPTH * (cols + TILE_PAD),
        t * rows * (cols + TILE_PAD),
        t * rows,
        t * cols,
        4 * rows,
        4 * cols,
        t * rows,
        t * rows,
        t * rows,
        8 * rows,
        4 * rows,
        4 * rows,
        t * rows * k,
        4 * rows * k,
    ]
    .iter()
    .map(|bytes| bytes.div_ceil(8) * 8)
    .sum()
}

/// The tiled kernel when it fits, else the warp kernel's layout.
pub(crate) fn forward_kernel<T: KernelReal>(p: &Params) -> candle_core::Result<ForwardKernel> {
    let shared_bytes = tiled_forward_bytes::<T>(p.k);
    if shared_bytes <= TILED_SHARED_LIMIT {
        return Ok(ForwardKernel::Tiled { shared_bytes });
    }
    Ok(ForwardKernel::Warp(forward_layout::<T>(p)?))
}

/// The columns of the tiled forward in batch order, each batch's run padded to whole tiles:
/// `order[p]` is the input row at position p (`u32::MAX` for padding), `tile_batch[t]` the
/// one batch of tile t. Stable: a batch's rows keep their input order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ColumnTiles {
    pub order: Vec<u32>,
    pub tile_batch: Vec<u32>,
}

impl ColumnTiles {
    /// For labels in `0..n_batches` and tiles of `cols` columns.
    pub(crate) fn new(labels: &[u32], n_batches: usize, cols: usize) -> Self {
        let mut counts = vec![0usize; n_batches];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        let tiles: Vec<usize> = counts.iter().map(|c| c.div_ceil(cols)).collect();
        let mut next: Vec<usize> = tiles
            .iter()
            .scan(0, |start, &t| {
                let here = *start;
                *start += t * cols;
                Some(here)
            })
            .collect();
        let mut order = vec![u32::MAX; tiles.iter().sum::<usize>() * cols];
        for (i, &l) in labels.iter().enumerate() {
            order[next[l as usize]] = i as u32;
            next[l as usize] += 1;
        }
        let tile_batch = tiles
            .iter()
            .enumerate()
            .flat_map(|(b, &t)| std::iter::repeat_n(b as u32, t))
            .collect();
        Self { order, tile_batch }
    }
}

/// `knn_entropy_mean_*(x, n, d, mean)`: one block of 256 threads per dimension.
fn mean_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    [x, mean]: [Arg<B>; 2],
) -> candle_core::Result<Launch<B>> {
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<X>("knn_entropy_mean"),
        shape: Shape {
            grid: as_i32(d, "d")? as u32,
            block: TILE_THREADS,
            shared_bytes: 0,
        },
        args: vec![
            x,
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            mean,
        ],
    })
}

/// `knn_entropy_norms_*(x, mean, n, d, norms)`: one thread per row.
fn norms_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    [x, mean, norms]: [Arg<B>; 3],
) -> candle_core::Result<Launch<B>> {
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<X>("knn_entropy_norms"),
        shape: Shape::threads(n, TILE_THREADS),
        args: vec![
            x,
            mean,
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            norms,
        ],
    })
}

/// `knn_entropy_fwd_tiled_*(x, mean, norms, order, tile_batch, n_tiles, n, d, k, B, 1/T,
/// row_start, n_rows, stats, class_r, entropy)`: one block per tile of rows.
pub(crate) fn tiled_forward_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    n_tiles: usize,
    shared_bytes: usize,
    [x, mean, norms, order, tile_batch, stats, class_r, entropy]: [Arg<B>; 8],
) -> candle_core::Result<Launch<B>> {
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<X>("knn_entropy_fwd_tiled"),
        shape: tiled_shape::<X::Real>(rows, shared_bytes)?,
        args: vec![
            x,
            mean,
            norms,
            order,
            tile_batch,
            Arg::I32(as_i32(n_tiles, "column tiles")?),
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            Arg::I32(as_i32(p.k, "k")?),
            Arg::I32(as_i32(p.n_batches, "B")?),
            Arg::real::<X::Real>(1.0 / p.temperature),
            Arg::I32(as_i32(rows.start, "row_start")?),
            Arg::I32(as_i32(rows.len(), "n_rows")?),
            stats,
            class_r,
            entropy,
        ],
    })
}

/// Dimensions a thread of the tiled backward keeps (`BWD_DIMS` in the kernel): it takes
/// d ≤ 16 · 8 = 128, the warp kernel any d.
const TILED_BACKWARD_DIMS: usize = 16 * 8;

/// The tiled backward's shared memory: the forward's without lists, per-row and
/// per-column statistics, and the column tile's points (`TiledBwdShared`).
fn tiled_backward_bytes<T: KernelReal>(d: usize) -> usize {
    let (rows, cols) = tile_shape::<T>();
    let t = std::mem::size_of::<T>();
    let parts = [
        t * rows,
        t * rows,
        t * rows,
        4 * rows,
        t * cols,
        t * cols,
        t * cols,
        t * cols,
        4 * cols,
        t * cols * d,
    ];
    tiled_forward_bytes::<T>(0)
        + parts
            .iter()
            .map(|bytes| bytes.div_ceil(8) * 8)
            .sum::<usize>()
}

/// The tiled backward's shared memory per block, when it takes these sizes.
pub(crate) fn tiled_backward<T: KernelReal>(d: usize) -> Option<usize> {
    let bytes = tiled_backward_bytes::<T>(d);
    (d <= TILED_BACKWARD_DIMS && bytes <= TILED_SHARED_LIMIT).then_some(bytes)
}

/// What both tiled kernels read besides x: the columns in batch order (`order`,
/// `tile_batch`: [`ColumnTiles`]), the column means and the centred norms.
struct TiledColumns<D: KernelDevice, T: KernelReal> {
    order: D::Buffer<u32>,
    tile_batch: D::Buffer<u32>,
    n_tiles: usize,
    mean: D::Buffer<f64>,
    norms: D::Buffer<T>,
}

impl<D: KernelDevice, T: KernelReal> TiledColumns<D, T> {
    /// The batch order of the labels (built on the host), then the column means
    /// (`knn_entropy_mean_*`) and the centred norms (`knn_entropy_norms_*`) on the device.
    fn new<X: KernelInput<Real = T>>(
        dev: &D,
        x: &D::Input<'_, X>,
        labels: &D::Input<'_, u32>,
        dims: (usize, usize),
        n_batches: usize,
    ) -> candle_core::Result<Self> {
        let (n, d) = dims;
        let cols = ColumnTiles::new(&dev.input_to_host(labels)?, n_batches, tile_shape::<T>().1);
        let mut mean = dev.alloc_output::<f64>(d)?;
        let mut norms = dev.alloc_output::<T>(n)?;
        let plan = mean_plan::<X, _>(
            dims,
            [D::read_input_from(x, 0), D::write_from(&mut mean, 0)],
        )?;
        // SAFETY: x holds n·d elements, mean d.
        unsafe { dev.launch(plan) }?;
        let plan = norms_plan::<X, _>(
            dims,
            [
                D::read_input_from(x, 0),
                D::read_from(&mean, 0),
                D::write_from(&mut norms, 0),
            ],
        )?;
        // SAFETY: x holds n·d elements, mean d, norms n.
        unsafe { dev.launch(plan) }?;
        Ok(Self {
            order: dev.upload(&cols.order)?,
            tile_batch: dev.upload(&cols.tile_batch)?,
            n_tiles: cols.tile_batch.len(),
            mean,
            norms,
        })
    }
}

/// How `knn_entropy_fwd` lays out one row's shared memory, chosen to fit a block: the k
/// nearest by per-lane sorted lists when 32·k pairs fit (the fast path), else by radix
/// select (any k, a 2 KiB histogram, 8 or 16 more sweeps over the columns, one for j*); the
/// class sums
/// of pass 2 for `class_chunk` classes at a time (all B when they fit, else one sweep per
/// chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForwardLayout {
    pub radix: bool,
    pub class_chunk: usize,
    pub per_warp: usize,
}

/// Bytes of the radix histogram (16 buckets per lane and their totals, i32).
const RADIX_HISTOGRAM: usize = 16 * 33 * 4;

/// The layout of `knn_entropy_fwd`'s shared memory per warp, as the kernel's
/// `forward_bytes` computes it: the class totals S_c, R_c (2·B f64), the selection, the
/// per-lane sums of one chunk of classes; rounded up to 8 bytes. (None of it grows with d.)
fn forward_bytes<T: KernelReal>(p: &Params, class_chunk: usize, radix: bool) -> usize {
    let size = std::mem::size_of::<T>();
    let selection = if radix {
        RADIX_HISTOGRAM
    } else {
        32 * p.k * (size + 4)
    };
    let bytes = 2 * p.n_batches * 8 + selection + 2 * class_chunk * 32 * size;
    bytes.div_ceil(8) * 8
}

/// The fast layout when it fits one block, else the lists with at least 32 classes a
/// sweep, else radix select with as many classes a sweep as fit.
pub(crate) fn forward_layout<T: KernelReal>(p: &Params) -> candle_core::Result<ForwardLayout> {
    let layout = |radix: bool, class_chunk: usize| ForwardLayout {
        radix,
        class_chunk,
        per_warp: forward_bytes::<T>(p, class_chunk, radix),
    };
    let fits = |l: &ForwardLayout| l.per_warp <= SHARED_MEMORY_LIMIT;
    let whole = layout(false, p.n_batches);
    if fits(&whole) {
        return Ok(whole);
    }
    let radix = !fits(&layout(false, p.n_batches.min(32)));
    let chunk_bytes = 2 * 32 * std::mem::size_of::<T>();
    let fixed = forward_bytes::<T>(p, 0, radix);
    let class_chunk = (SHARED_MEMORY_LIMIT.saturating_sub(fixed) / chunk_bytes).min(p.n_batches);
    if class_chunk == 0 {
        let per_warp = layout(true, 1).per_warp;
        candle_core::bail!(
            "diffbio: batch mixing needs {per_warp} bytes of shared memory per row for B = {}, \
             more than the {SHARED_MEMORY_LIMIT} a block has; use the CPU path for these sizes",
            p.n_batches
        );
    }
    Ok(layout(radix, class_chunk))
}

/// `knn_entropy_fwd_*(x, labels, n, d, k, B, class_chunk, radix, 1/T, row_start, n_rows,
/// stats, entropy)` with `layout` ([`forward_layout`]).
pub(crate) fn forward_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    layout: ForwardLayout,
    [x, labels, stats, entropy]: [Arg<B>; 4],
) -> candle_core::Result<Launch<B>> {
    let warps = warps_per_block(
        layout.per_warp,
        "batch mixing (k-NN selection and class sums)",
    )?;
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<X>("knn_entropy_fwd"),
        shape: Shape::rows(rows.len(), warps, layout.per_warp),
        args: vec![
            x,
            labels,
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            Arg::I32(as_i32(p.k, "k")?),
            Arg::I32(as_i32(p.n_batches, "B")?),
            Arg::I32(as_i32(layout.class_chunk, "class_chunk")?),
            Arg::I32(i32::from(layout.radix)),
            Arg::real::<X::Real>(1.0 / p.temperature),
            Arg::I32(as_i32(rows.start, "row_start")?),
            Arg::I32(as_i32(rows.len(), "n_rows")?),
            stats,
            entropy,
        ],
    })
}

/// `knn_entropy_loss_f64(entropy, n_rows, n, B, out)`: out[0] = the rows' share of the
/// loss of n cells, a fixed-order sum.
pub(crate) fn loss_plan<B>(
    (n_rows, n): (usize, usize),
    p: &Params,
    [entropy, out]: [Arg<B>; 2],
) -> candle_core::Result<Launch<B>> {
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: "knn_entropy_loss_f64".into(),
        shape: Shape::single_block(),
        args: vec![
            entropy,
            Arg::I32(as_i32(n_rows, "n_rows")?),
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(p.n_batches, "B")?),
            out,
        ],
    })
}

/// `knn_entropy_bwd_tiled_*(x, mean, norms, labels, order, tile_batch, stats, n_tiles, n, d,
/// B, 1/T, row_start, n_rows, grad)`: one block per tile of rows.
fn tiled_backward_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    n_tiles: usize,
    shared_bytes: usize,
    [x, mean, norms, labels, order, tile_batch, stats, grad]: [Arg<B>; 8],
) -> candle_core::Result<Launch<B>> {
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<X>("knn_entropy_bwd_tiled"),
        shape: tiled_shape::<X::Real>(rows, shared_bytes)?,
        args: vec![
            x,
            mean,
            norms,
            labels,
            order,
            tile_batch,
            stats,
            Arg::I32(as_i32(n_tiles, "column tiles")?),
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            Arg::I32(as_i32(p.n_batches, "B")?),
            Arg::real::<X::Real>(1.0 / p.temperature),
            Arg::I32(as_i32(rows.start, "row_start")?),
            Arg::I32(as_i32(rows.len(), "n_rows")?),
            grad,
        ],
    })
}

/// The launch shape of both tiled kernels: a block of 256 threads per tile of rows.
fn tiled_shape<T: KernelReal>(
    rows: &Range<usize>,
    shared_bytes: usize,
) -> candle_core::Result<Shape> {
    Ok(Shape {
        grid: as_i32(rows.len().div_ceil(tile_shape::<T>().0), "row tiles")? as u32,
        block: TILE_THREADS,
        shared_bytes: shared_bytes as u32,
    })
}

/// Warps (rows) per block of `knn_entropy_bwd` (`BWD_WARPS`; its shared memory, 256 C_ij
/// per warp, is static).
const BACKWARD_WARPS: usize = 8;

/// Elements of `knn_entropy_bwd`'s workspace: the rows' sums in f32 for an f16/bf16 input
/// (rounded into the gradient at the end), one unused element otherwise (the gradient
/// itself holds them).
fn backward_workspace<X: KernelInput>(n_rows: usize, d: usize) -> usize {
    // As the kernel's `std::is_same<T, X>`: does x come in the dtype it is computed in?
    if X::DTYPE == <X::Real as candle_core::WithDType>::DTYPE {
        1
    } else {
        n_rows * d
    }
}

/// `knn_entropy_bwd_*(x, labels, stats, n, d, B, 1/T, row_start, n_rows, grad,
/// workspace)`: one warp per row, 8 a block; any d.
pub(crate) fn backward_plan<X: KernelInput, B>(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    [x, labels, stats, grad, workspace]: [Arg<B>; 5],
) -> candle_core::Result<Launch<B>> {
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<X>("knn_entropy_bwd"),
        shape: Shape::rows(rows.len(), BACKWARD_WARPS, 0),
        args: vec![
            x,
            labels,
            stats,
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            Arg::I32(as_i32(p.n_batches, "B")?),
            Arg::real::<X::Real>(1.0 / p.temperature),
            Arg::I32(as_i32(rows.start, "row_start")?),
            Arg::I32(as_i32(rows.len(), "n_rows")?),
            grad,
            workspace,
        ],
    })
}

/// The forward on `x` (`[n, d]`) and its labels for the rows `rows` (not empty): `[their
/// share of the loss, stats of each row]` (f64).
pub(crate) struct Forward<'a, D: KernelDevice> {
    pub dev: &'a D,
    pub labels: D::Input<'a, u32>,
    pub dims: (usize, usize),
    pub rows: &'a Range<usize>,
    pub params: &'a Params,
}

impl<D: KernelDevice> DeviceKernel<D> for Forward<'_, D> {
    const OP: &'static str = "knn-entropy";

    fn run<X: KernelInput>(self, x: D::Input<'_, X>) -> candle_core::Result<D::Storage> {
        let (dev, n, p) = (self.dev, self.dims.0, self.params);
        let n_rows = self.rows.len();
        let mut out = dev.alloc_output::<f64>(1 + n_rows * RowStats::width(p.n_batches))?;
        let mut entropy = dev.alloc_output::<f64>(n_rows)?;
        match forward_kernel::<X::Real>(p)? {
            ForwardKernel::Tiled { shared_bytes } => {
                let cols = TiledColumns::new(dev, &x, &self.labels, self.dims, p.n_batches)?;
                let mut class_r = dev.alloc_output::<f64>(n_rows * p.n_batches)?;
                let plan = tiled_forward_plan::<X, _>(
                    self.dims,
                    self.rows,
                    p,
                    cols.n_tiles,
                    shared_bytes,
                    [
                        D::read_input_from(&x, 0),
                        D::read_from(&cols.mean, 0),
                        D::read_from(&cols.norms, 0),
                        D::read_from(&cols.order, 0),
                        D::read_from(&cols.tile_batch, 0),
                        D::write_from(&mut out, 1),
                        D::write_from(&mut class_r, 0),
                        D::write_from(&mut entropy, 0),
                    ],
                )?;
                // SAFETY: the plan orders the arguments as `knn_entropy_fwd_tiled_*` declares
                // them; order holds n_tiles·COLS indices (padding ≥ n), tile_batch n_tiles
                // batches, stats n_rows·(5 + B), class_r n_rows·B, entropy n_rows.
                unsafe { dev.launch(plan) }?;
            }
            ForwardKernel::Warp(layout) => {
                let plan = forward_plan::<X, _>(
                    self.dims,
                    self.rows,
                    p,
                    layout,
                    [
                        D::read_input_from(&x, 0),
                        D::read_input_from(&self.labels, 0),
                        D::write_from(&mut out, 1),
                        D::write_from(&mut entropy, 0),
                    ],
                )?;
                // SAFETY: the plan orders the arguments as `knn_entropy_fwd_*` declares
                // them; x holds n·d elements, labels n, stats n_rows·(5 + B), entropy
                // n_rows; rows lie in 0..n.
                unsafe { dev.launch(plan) }?;
            }
        }
        let entropy_in = D::read_from(&entropy, 0);
        let loss = loss_plan((n_rows, n), p, [entropy_in, D::write_from(&mut out, 0)])?;
        // SAFETY: `entropy` holds n_rows doubles; the kernel writes out[0] only.
        unsafe { dev.launch(loss) }?;
        Ok(dev.storage(out))
    }
}

/// The backward on `x` (`[n, d]`), its labels and the forward output with the statistics
/// of every row: rows `rows` (not empty) of `∂loss/∂x` for a unit upstream gradient.
pub(crate) struct Backward<'a, D: KernelDevice> {
    pub dev: &'a D,
    pub labels: D::Input<'a, u32>,
    pub forward_out: D::Input<'a, f64>,
    pub dims: (usize, usize),
    pub rows: &'a Range<usize>,
    pub params: &'a Params,
}

impl<D: KernelDevice> DeviceKernel<D> for Backward<'_, D> {
    const OP: &'static str = "knn-entropy-grad";

    /// The gradient in x's dtype (f16/bf16 rounded from f32).
    fn run<X: KernelInput>(self, x: D::Input<'_, X>) -> candle_core::Result<D::Storage> {
        let (dev, d, p) = (self.dev, self.dims.1, self.params);
        let mut grad = dev.alloc_output::<X>(self.rows.len() * d)?;
        if let Some(shared_bytes) = tiled_backward::<X::Real>(d) {
            let cols = TiledColumns::new(dev, &x, &self.labels, self.dims, p.n_batches)?;
            let plan = tiled_backward_plan::<X, _>(
                self.dims,
                self.rows,
                p,
                cols.n_tiles,
                shared_bytes,
                [
                    D::read_input_from(&x, 0),
                    D::read_from(&cols.mean, 0),
                    D::read_from(&cols.norms, 0),
                    D::read_input_from(&self.labels, 0),
                    D::read_from(&cols.order, 0),
                    D::read_from(&cols.tile_batch, 0),
                    D::read_input_from(&self.forward_out, 1),
                    D::write_from(&mut grad, 0),
                ],
            )?;
            // SAFETY: the plan orders the arguments as `knn_entropy_bwd_tiled_*` declares
            // them; the statistics hold n·(5 + B) values, `grad` n_rows·d; rows lie in 0..n.
            unsafe { dev.launch(plan) }?;
            return Ok(dev.storage(grad));
        }
        let mut workspace =
            dev.alloc_output::<X::Real>(backward_workspace::<X>(self.rows.len(), d))?;
        let plan = backward_plan::<X, _>(
            self.dims,
            self.rows,
            self.params,
            [
                D::read_input_from(&x, 0),
                D::read_input_from(&self.labels, 0),
                // The statistics follow the loss in the forward output.
                D::read_input_from(&self.forward_out, 1),
                D::write_from(&mut grad, 0),
                D::write_from(&mut workspace, 0),
            ],
        )?;
        // SAFETY: the plan orders the arguments as `knn_entropy_bwd_*` declares them; `grad`
        // holds n_rows·d elements, the statistics n·(5 + B), the workspace n_rows·d f32
        // for half inputs; rows lie in 0..n.
        unsafe { self.dev.launch(plan) }?;
        Ok(self.dev.storage(grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_plan_sizes_shared_memory_per_row() {
        let p = Params {
            k: 15,
            n_batches: 3,
            temperature: 0.5,
        };
        let args = || [(); 4].map(|_| Arg::Buffer(()));
        let layout = forward_layout::<f32>(&p).unwrap();
        let plan = forward_plan::<f32, ()>((1000, 64), &(200..500), &p, layout, args()).unwrap();
        let per_warp = 2 * 3 * 8 + 32 * 15 * 8 + 2 * 3 * 32 * 4;
        assert_eq!(plan.kernel, "knn_entropy_fwd_f32");
        assert_eq!(plan.shape, Shape::rows(300, 8, per_warp));
        assert_eq!(plan.args.len(), 13);
        assert!(matches!(
            (&plan.args[6], &plan.args[7]),
            (Arg::I32(3), Arg::I32(0))
        ));
        assert!(matches!(plan.args[8], Arg::F32(v) if v == 2.0));
        assert!(matches!(
            (&plan.args[9], &plan.args[10]),
            (Arg::I32(200), Arg::I32(300))
        ));
        let back_args = || [(); 5].map(|_| Arg::Buffer(()));
        let back = backward_plan::<f64, ()>((10, 3), &(0..10), &p, back_args()).unwrap();
        assert_eq!(back.shape, Shape::rows(10, 8, 0));
        assert_eq!(back.args.len(), 11);
        let huge_d = backward_plan::<f32, ()>((10, 100_000), &(0..10), &p, back_args()).unwrap();
        assert_eq!(huge_d.shape, back.shape);
        assert_eq!(backward_workspace::<f32>(10, 7), 1);
        assert_eq!(backward_workspace::<half::bf16>(10, 7), 70);
    }

    /// The tiled forward takes every k whose lists fit 96 KiB, the warp kernel the rest.
    #[test]
    fn forward_kernel_is_tiled_while_the_lists_fit() {
        let p = |k| Params {
            k,
            n_batches: 1024,
            temperature: 1.0,
        };
        let tiled = |kernel: ForwardKernel| matches!(kernel, ForwardKernel::Tiled { .. });
        assert!(tiled(forward_kernel::<f32>(&p(135)).unwrap()));
        assert!(!tiled(forward_kernel::<f32>(&p(136)).unwrap()));
        assert!(tiled(forward_kernel::<f64>(&p(202)).unwrap()));
        assert!(!tiled(forward_kernel::<f64>(&p(203)).unwrap()));
        // The backward: every d ≤ 128 (64,000 bytes in f32 at d = 128, 55,296 in f64).
        assert_eq!(tiled_backward::<f32>(128), Some(64_000));
        assert_eq!(tiled_backward::<f64>(128), Some(55_296));
        assert_eq!(tiled_backward::<f32>(129), None);
        // 15 nearest in f32: 28,928 bytes of tiles and row state, 64 lists of 15 pairs.
        assert_eq!(
            forward_kernel::<f32>(&p(15)).unwrap(),
            ForwardKernel::Tiled {
                shared_bytes: 28_928 + 64 * 15 * 8
            }
        );
    }

    /// Batch by batch, each run padded to whole tiles, a batch's rows in input order.
    #[test]
    fn column_tiles_pad_each_batch_to_whole_tiles() {
        let tiles = ColumnTiles::new(&[1, 0, 1, 1, 2, 1, 1], 4, 2);
        let pad = u32::MAX;
        assert_eq!(tiles.order, [1, pad, 0, 2, 3, 5, 6, pad, 4, pad]);
        assert_eq!(tiles.tile_batch, [0, 1, 1, 1, 2]);
    }

    /// Any k and any B up to 1024 get a layout within one block: the lists while they fit,
    /// then radix select; all classes in one sweep while they fit, then chunks.
    #[test]
    fn forward_layout_fits_every_k_and_batch_count() {
        let p = |k, n_batches| Params {
            k,
            n_batches,
            temperature: 1.0,
        };
        let f32_layout = |k, b| forward_layout::<f32>(&p(k, b)).unwrap();
        assert_eq!(
            f32_layout(128, 3),
            ForwardLayout {
                radix: false,
                class_chunk: 3,
                per_warp: 48 + 32768 + 768
            }
        );
        let big_k = f32_layout(1000, 3);
        assert_eq!((big_k.radix, big_k.class_chunk), (true, 3));
        let big_b = f32_layout(15, 1024);
        assert!(!big_b.radix && big_b.class_chunk < 1024, "{big_b:?}");
        for (k, b) in [
            (1, 1),
            (128, 64),
            (129, 64),
            (190, 3),
            (1000, 1024),
            (100_000, 1024),
        ] {
            for layout in [f32_layout(k, b), forward_layout::<f64>(&p(k, b)).unwrap()] {
                assert!(layout.per_warp <= SHARED_MEMORY_LIMIT && layout.per_warp % 8 == 0);
                assert!(
                    layout.class_chunk >= 1 && layout.class_chunk <= b,
                    "{layout:?}"
                );
            }
        }
        let huge_b = forward_layout::<f64>(&p(15, 5000)).unwrap_err().to_string();
        assert!(huge_b.contains("B = 5000"), "{huge_b}");
    }
}
