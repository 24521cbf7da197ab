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
    Module, Shape,
};

/// Shared memory per warp (one row) of `knn_entropy_fwd`: x_i, 32 sorted top-k lists of
/// (distance, index), and the per-lane class sums S_c and R_c.
fn forward_bytes_per_warp<T: KernelReal>(d: usize, p: &Params) -> usize {
    let size = std::mem::size_of::<T>();
    d * size + 32 * p.k * (size + 4) + 2 * p.n_batches * 32 * size
}

/// `knn_entropy_fwd_*(x, labels, n, d, k, B, 1/T, row_start, n_rows, stats, entropy)`.
pub(crate) fn forward_plan<T: KernelReal, B>(
    (n, d): (usize, usize),
    rows: &Range<usize>,
    p: &Params,
    [x, labels, stats, entropy]: [Arg<B>; 4],
) -> candle_core::Result<Launch<B>> {
    let per_warp = forward_bytes_per_warp::<T>(d, p);
    let warps = warps_per_block(per_warp, "batch mixing (k-NN lists and class sums)")?;
    Ok(Launch {
        module: Module::KnnEntropy,
        kernel: kernel_name::<T>("knn_entropy_fwd"),
        shape: Shape::rows(rows.len(), warps, per_warp),
        args: vec![
            x,
            labels,
            Arg::I32(as_i32(n, "n")?),
            Arg::I32(as_i32(d, "d")?),
            Arg::I32(as_i32(p.k, "k")?),
            Arg::I32(as_i32(p.n_batches, "B")?),
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
        let per_warp = 64 * 4 + 32 * 15 * 8 + 2 * 3 * 32 * 4;
        assert_eq!(plan.kernel, "knn_entropy_fwd_f32");
        assert_eq!(plan.shape, Shape::rows(300, 8, per_warp));
        assert_eq!(plan.args.len(), 11);
        assert!(matches!(plan.args[6], Arg::F32(v) if v == 2.0));
        assert!(matches!(
            (&plan.args[7], &plan.args[8]),
            (Arg::I32(200), Arg::I32(300))
        ));
        let big_k = Params { k: 400, ..p };
        assert!(forward_plan::<f64, ()>((1000, 64), &(0..1000), &big_k, args()).is_err());
        let back = backward_plan::<f64, ()>((10, 3), &(0..10), &p, args()).unwrap();
        assert_eq!(back.shape, Shape::rows(10, 8, 48));
        assert_eq!(back.args.len(), 10);
    }
}
