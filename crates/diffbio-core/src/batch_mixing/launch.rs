//! The launches of the k-NN soft-neighbour entropy (`kernels/knn_entropy.cu`) on any
//! [`KernelDevice`]: one plan per kernel, one sequence per direction.
//!
//! The op output is the contract's (`super::contract`): `[loss, per-row statistics...]` in
//! f64, rows in input order, so the backward finds κ_i, j*(i), Dmin_i, γ_i, ∂L/∂κ_i and β_i·
//! without an n×n buffer. Memory: the statistics, one f64 entropy per row, shared memory per
//! block; the tiled forward adds the columns in batch order (n u32 and each batch's padding
//! to a tile), the column means (d f64), the centred norms (n) and R_c (n_rows·B f64).
//! Every kernel computes a range of rows against all n columns.

//!
//! `shared_memory` sizes the blocks and picks the kernels, `columns` orders the tiled
//! kernels' columns, `plans` builds each launch; the two sequences are here.

mod columns;
mod plans;
mod shared_memory;

use std::ops::Range;

use super::contract::{Params, RowStats};
use super::KernelShared;
use crate::launch::{as_i32, DeviceKernel, KernelDevice, KernelInput};
use columns::TiledColumns;
use plans::{backward_plan, backward_workspace, forward_plan, loss_plan, tiled_plan};
use shared_memory::{forward_kernel, tiled_backward, ForwardKernel};

/// The sizes the kernels refuse, checked before the op runs so that they come back as
/// [`crate::Error::DeviceLimit`] (an error inside the op reaches the caller as Candle's
/// text): n, d, k and B as 32-bit kernel arguments, and the forward's shared memory for k
/// and B in the dtype it computes in.
pub(crate) fn check_limits(
    p: &Params,
    (n, d): (usize, usize),
    compute: candle_core::DType,
) -> crate::Result<()> {
    for (what, value) in [("n", n), ("d", d), ("k", p.k), ("B", p.n_batches)] {
        as_i32(value, what)?;
    }
    match compute {
        candle_core::DType::F64 => forward_kernel::<f64>(p).map(drop),
        _ => forward_kernel::<f32>(p).map(drop),
    }
}

/// The forward on `x` (`[n, d]`) and its labels for the rows `rows` (not empty): `[their
/// share of the loss, stats of each row]` (f64).
pub(crate) struct Forward<'a, D: KernelDevice> {
    pub dev: &'a D,
    pub labels: D::Input<'a, u32>,
    /// The labels on the host, and where the tiled forward leaves its columns.
    pub shared: &'a KernelShared,
    pub dims: (usize, usize),
    pub rows: &'a Range<usize>,
    pub params: &'a Params,
}

impl<D: KernelDevice> DeviceKernel<D> for Forward<'_, D> {
    const OP: &'static str = super::BatchMixingOp::NAME;

    fn run<X: KernelInput>(self, x: D::Input<'_, X>) -> candle_core::Result<D::Storage> {
        let (dev, n, p) = (self.dev, self.dims.0, self.params);
        let n_rows = self.rows.len();
        let mut out = dev.alloc_output::<f64>(1 + n_rows * RowStats::width(p.n_batches))?;
        let mut entropy = dev.alloc_output::<f64>(n_rows)?;
        match forward_kernel::<X::Real>(p)? {
            ForwardKernel::Tiled { shared_bytes } => {
                let cols =
                    TiledColumns::cached_or_new(self.shared, dev, &x, self.dims, p.n_batches)?;
                let mut class_r = dev.alloc_output::<f64>(n_rows * p.n_batches)?;
                let mut buffers = cols.buffers(&x);
                buffers.extend([
                    ("stats", D::write_from(&mut out, 1)),
                    ("class_r", D::write_from(&mut class_r, 0)),
                    ("entropy", D::write_from(&mut entropy, 0)),
                ]);
                let kernel = &super::kernels::TILED_FORWARD;
                let tiles = (cols.n_tiles, shared_bytes);
                let plan = tiled_plan::<X, _>(kernel, self.dims, self.rows, p, tiles, buffers)?;
                // SAFETY: the plan orders the arguments as `knn_entropy_fwd_tiled_*` declares
                // them; order holds n_tiles·COLS indices (padding ≥ n), tile_batch n_tiles
                // batches, stats n_rows·(5 + B), class_r n_rows·B, entropy n_rows.
                unsafe { dev.launch(plan) }?;
                cols.keep(self.shared);
            }
            ForwardKernel::Warp(layout) => {
                let plan = forward_plan::<X, _>(
                    self.dims,
                    self.rows,
                    p,
                    layout,
                    vec![
                        ("x", D::read_input_from(&x, 0)),
                        ("labels", D::read_input_from(&self.labels, 0)),
                        ("stats", D::write_from(&mut out, 1)),
                        ("entropy", D::write_from(&mut entropy, 0)),
                    ],
                )?;
                // SAFETY: the plan orders the arguments as `knn_entropy_fwd_*` declares
                // them; x holds n·d elements, labels n, stats n_rows·(5 + B), entropy
                // n_rows; rows lie in 0..n.
                unsafe { dev.launch(plan) }?;
            }
        }
        let entropy_in = D::read_from(&entropy, 0);
        let loss = loss_plan(
            (n_rows, n),
            p,
            vec![("entropy", entropy_in), ("out", D::write_from(&mut out, 0))],
        )?;
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
    /// The labels on the host, and the tiled forward's columns when it left them.
    pub shared: &'a KernelShared,
    pub forward_out: D::Input<'a, f64>,
    pub dims: (usize, usize),
    pub rows: &'a Range<usize>,
    pub params: &'a Params,
}

impl<D: KernelDevice> DeviceKernel<D> for Backward<'_, D> {
    const OP: &'static str = super::BatchMixingGradOp::NAME;

    /// The gradient in x's dtype (f16/bf16 rounded from f32).
    fn run<X: KernelInput>(self, x: D::Input<'_, X>) -> candle_core::Result<D::Storage> {
        let (dev, d, p) = (self.dev, self.dims.1, self.params);
        let mut grad = dev.alloc_output::<X>(self.rows.len() * d)?;
        if let Some(shared_bytes) = tiled_backward::<X::Real>(d) {
            let cols = TiledColumns::cached_or_new(self.shared, dev, &x, self.dims, p.n_batches)?;
            let mut buffers = cols.buffers(&x);
            buffers.extend([
                ("labels", D::read_input_from(&self.labels, 0)),
                ("stats", D::read_input_from(&self.forward_out, 1)),
                ("grad", D::write_from(&mut grad, 0)),
            ]);
            let kernel = &super::kernels::TILED_BACKWARD;
            let tiles = (cols.n_tiles, shared_bytes);
            let plan = tiled_plan::<X, _>(kernel, self.dims, self.rows, p, tiles, buffers)?;
            // SAFETY: the plan orders the arguments as `knn_entropy_bwd_tiled_*` declares
            // them; the statistics hold n·(5 + B) values, `grad` n_rows·d; rows lie in 0..n.
            unsafe { dev.launch(plan) }?;
            cols.keep(self.shared);
            return Ok(dev.storage(grad));
        }
        let mut workspace =
            dev.alloc_output::<X::Real>(backward_workspace::<X>(self.rows.len(), d))?;
        let plan = backward_plan::<X, _>(
            self.dims,
            self.rows,
            self.params,
            vec![
                ("x", D::read_input_from(&x, 0)),
                ("labels", D::read_input_from(&self.labels, 0)),
                (
                    "stats", // The statistics follow the loss in the forward output.
                    D::read_input_from(&self.forward_out, 1),
                ),
                ("grad", D::write_from(&mut grad, 0)),
                ("workspace", D::write_from(&mut workspace, 0)),
            ],
        )?;
        // SAFETY: the plan orders the arguments as `knn_entropy_bwd_*` declares them; `grad`
        // holds n_rows·d elements, the statistics n·(5 + B), the workspace n_rows·d f32
        // for half inputs; rows lie in 0..n.
        unsafe { self.dev.launch(plan) }?;
        Ok(self.dev.storage(grad))
    }
}
