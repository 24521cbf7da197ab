//! The launches of the k-NN soft-neighbour entropy (`kernels/knn_entropy.cu`) on any
//! [`KernelDevice`]: one plan per kernel, one sequence per direction.
//!
//! The op output is the contract's (`super::contract`): `[loss, per-row statistics...]` in
//! f64, rows in input order, so the backward finds κ_i, j*(i), Dmin_i, γ_i, ∂L/∂κ_i and β_i·
//! without an n×n buffer. Memory: the statistics, one f64 entropy per row, and shared memory
//! per warp. Every kernel computes a range of rows against all n columns.

use std::ops::Range;

use super::contract::{Params, RowStats};
use crate::launch::{
    as_i32, kernel_name, warps_per_block, Arg, DeviceKernel, KernelDevice, KernelReal, Launch,
    Module, Shape, SHARED_MEMORY_LIMIT,
};

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
/// `forward_bytes` computes it: the class totals S_c, R_c (2·B f64), x_i, the selection,
/// the per-lane sums of one chunk of classes; rounded up to 8 bytes.
fn forward_bytes<T: KernelReal>(d: usize, p: &Params, class_chunk: usize, radix: bool) -> usize {
    let size = std::mem::size_of::<T>();
    let selection = if radix {
        RADIX_HISTOGRAM
    } else {
        32 * p.k * (size + 4)
    };
    let bytes = 2 * p.n_batches * 8 + d * size + selection + 2 * class_chunk * 32 * size;
    bytes.div_ceil(8) * 8
}

/// The fast layout when it fits one block, else the lists with at least 32 classes a
/// sweep, else radix select with as many classes a sweep as fit.
pub(crate) fn forward_layout<T: KernelReal>(
    d: usize,
    p: &Params,
) -> candle_core::Result<ForwardLayout> {
    let layout = |radix: bool, class_chunk: usize| ForwardLayout {
        radix,
        class_chunk,
        per_warp: forward_bytes::<T>(d, p, class_chunk, radix),
    };
    let fits = |l: &ForwardLayout| l.per_warp <= SHARED_MEMORY_LIMIT;
    let whole = layout(false, p.n_batches);
    if fits(&whole) {
        return Ok(whole);
    }
    let radix = !fits(&layout(false, p.n_batches.min(32)));
    let chunk_bytes = 2 * 32 * std::mem::size_of::<T>();
    let fixed = forward_bytes::<T>(d, p, 0, radix);
    let class_chunk = (SHARED_MEMORY_LIMIT.saturating_sub(fixed) / chunk_bytes).min(p.n_batches);
    if class_chunk == 0 {
        let per_warp = layout(true, 1).per_warp;
        candle_core::bail!(
            "diffbio: batch mixing needs {per_warp} bytes of shared memory per row for d = {d} \
             and B = {}, more than the {SHARED_MEMORY_LIMIT} a block has; use the CPU path for \
             these sizes",
            p.n_batches
        );
    }
    Ok(layout(radix, class_chunk))
}

/// `knn_entropy_fwd_*(x, labels, n, d, k, B, class_chunk, radix, 1/T, row_start, n_rows,
/// stats, entropy)`.
pub(crate) fn forward_plan<T: KernelReal, B>(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    [x, labels, stats, entropy]: [Arg<B>; 4],
) -> candle_core::Result<Launch<B>> {
    let layout = forward_layout::<T>(d, p)?;
    let warps = warps_per_block(
        layout.per_warp,
        "batch mixing (k-NN selection and class sums)",
    )?;
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<T>("knn_entropy_fwd"),
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
            Arg::real::<T>(1.0 / p.temperature),
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

/// `knn_entropy_bwd_*(x, labels, stats, n, d, B, 1/T, row_start, n_rows, grad)`: shared
/// memory holds x_i and the row's gradient slots.
pub(crate) fn backward_plan<T: KernelReal, B>(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    [x, labels, stats, grad]: [Arg<B>; 4],
) -> candle_core::Result<Launch<B>> {
    let per_warp = 2 * d * std::mem::size_of::<T>();
    let warps = warps_per_block(per_warp, "batch mixing backward (row and gradient)")?;
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<T>("knn_entropy_bwd"),
        shape: Shape::rows(rows.len(), warps, per_warp),
        args: vec![
            x,
            labels,
            stats,
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            Arg::I32(as_i32(p.n_batches, "B")?),
            Arg::real::<T>(1.0 / p.temperature),
            Arg::I32(as_i32(rows.start, "row_start")?),
            Arg::I32(as_i32(rows.len(), "n_rows")?),
            grad,
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

    fn run<T: KernelReal>(self, x: D::Input<'_, T>) -> candle_core::Result<D::Storage> {
        let (dev, (n, _), p) = (self.dev, self.dims, self.params);
        let n_rows = self.rows.len();
        let mut out = dev.alloc_output::<f64>(1 + n_rows * RowStats::width(p.n_batches))?;
        let mut entropy = dev.alloc_output::<f64>(n_rows)?;
        let rows = forward_plan::<T, _>(
            self.dims,
            self.rows,
            p,
            [
                D::read_input_from(&x, 0),
                D::read_input_from(&self.labels, 0),
                D::write_from(&mut out, 1),
                D::write_from(&mut entropy, 0),
            ],
        )?;
        // SAFETY: the plan orders the arguments as `knn_entropy_fwd_*` declares them; x holds
        // n·d elements, labels n, stats n_rows·(5 + B), entropy n_rows; rows lie in 0..n.
        unsafe { dev.launch(rows) }?;
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

    fn run<T: KernelReal>(self, x: D::Input<'_, T>) -> candle_core::Result<D::Storage> {
        let d = self.dims.1;
        let mut grad = self.dev.alloc_output::<T>(self.rows.len() * d)?;
        let plan = backward_plan::<T, _>(
            self.dims,
            self.rows,
            self.params,
            [
                D::read_input_from(&x, 0),
                D::read_input_from(&self.labels, 0),
                // The statistics follow the loss in the forward output.
                D::read_input_from(&self.forward_out, 1),
                D::write_from(&mut grad, 0),
            ],
        )?;
        // SAFETY: the plan orders the arguments as `knn_entropy_bwd_*` declares them; `grad`
        // holds n_rows·d elements, the statistics n·(5 + B); rows lie in 0..n.
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
        let plan = forward_plan::<f32, ()>((1000, 64), &(200..500), &p, args()).unwrap();
        let per_warp = 2 * 3 * 8 + 64 * 4 + 32 * 15 * 8 + 2 * 3 * 32 * 4;
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
        let back = backward_plan::<f64, ()>((10, 3), &(0..10), &p, args()).unwrap();
        assert_eq!(back.shape, Shape::rows(10, 8, 48));
        assert_eq!(back.args.len(), 10);
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
        let f32_layout = |k, b| forward_layout::<f32>(64, &p(k, b)).unwrap();
        assert_eq!(
            f32_layout(128, 3),
            ForwardLayout {
                radix: false,
                class_chunk: 3,
                per_warp: 48 + 256 + 32768 + 768
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
            for layout in [
                f32_layout(k, b),
                forward_layout::<f64>(64, &p(k, b)).unwrap(),
            ] {
                assert!(layout.per_warp <= SHARED_MEMORY_LIMIT && layout.per_warp % 8 == 0);
                assert!(
                    layout.class_chunk >= 1 && layout.class_chunk <= b,
                    "{layout:?}"
                );
            }
        }
        let huge_d = forward_layout::<f64>(6000, &p(15, 3))
            .unwrap_err()
            .to_string();
        assert!(huge_d.contains("d = 6000"), "{huge_d}");
    }
}
