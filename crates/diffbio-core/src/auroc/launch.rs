//! The launches of the pairwise-sigmoid AUROC surrogate (`kernels/pairwise_sigmoid_auroc.cu`)
//! on any [`KernelDevice`]. Output layout as on the CPU: `[value, ∂/∂T, ∂/∂s of each
//! centre]`, the centres a range of the cells (all of them on one device).
//!
//! `auroc_compact` splits the scores into positives and negatives (with their input
//! indices, counts and the centres' run in each class). When the centres are every cell,
//! `auroc_pairs` sweeps all positives × negatives once, in tiles of 64 × 256, summing per
//! positive and, per block, per negative (`auroc_columns` totals the blocks); otherwise
//! (a rank's cells, or per-block sums over [`PARTIALS_BUDGET`]) `auroc_centres` sweeps
//! each class's centres against the whole other class. `auroc_finish` scatters the
//! per-centre sums into the output.

use std::ops::Range;

use super::contract::{counts, GRAD_SCORES};
use super::kernels::{self, PAIR_ROWS, PAIR_WARPS};
use crate::launch::{
    Buffers, DeviceKernel, KernelDevice, KernelInput, KernelReal, Launch, LaunchShape,
    ScalarArg::{Size, Value},
};

/// Threads per block of the pair sweeps, and centres per block and tile.
const PAIR_THREADS: u32 = 32 * PAIR_WARPS as u32;
const PAIR_TILE_ROWS: usize = PAIR_WARPS * PAIR_ROWS;
/// Blocks of the one-sweep form at most (two per SM of an H100), and at least unless a
/// tile of positives is all there is (one per SM); their per-negative sums take
/// `blocks · |N|` elements. The count depends on the sizes alone, so the sums' order is the
/// same on every GPU.
const MAX_PAIR_BLOCKS: usize = 256;
const MIN_PAIR_BLOCKS: usize = 128;
/// The most memory the one-sweep form's per-block sums may take (bytes); where fewer than
/// [`MIN_PAIR_BLOCKS`] would fit it, the two centre sweeps (twice the pairs, no extra
/// memory) run instead.
pub(crate) const PARTIALS_BUDGET: usize = 256 << 20;

/// Blocks of the one-sweep form for `n_pos × n_neg` in `T`, or `None` when too few fit
/// [`PARTIALS_BUDGET`].
pub(crate) fn pair_blocks<T: KernelReal>(n_pos: usize, n_neg: usize) -> Option<usize> {
    let row_tiles = n_pos.div_ceil(PAIR_TILE_ROWS);
    let fit = PARTIALS_BUDGET / (n_neg * std::mem::size_of::<T>()).max(1);
    let blocks = row_tiles.min(MAX_PAIR_BLOCKS).min(fit);
    (blocks >= row_tiles.min(MIN_PAIR_BLOCKS)).then_some(blocks)
}

/// [`kernels::COMPACT`].
pub(crate) fn compact_plan<X: KernelInput, B>(
    n: usize,
    rows: &Range<usize>,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let scalars = [
        ("n", Size(n)),
        ("row_start", Size(rows.start)),
        ("n_rows", Size(rows.len())),
    ];
    Launch::build::<X>(
        &kernels::COMPACT,
        LaunchShape::single_block(),
        buffers,
        &scalars,
    )
}

/// `blocks` blocks of the pair sweeps (their shared memory is static).
fn pair_shape(blocks: usize) -> LaunchShape {
    LaunchShape {
        grid: blocks as u32,
        block: PAIR_THREADS,
        shared_bytes: 0,
    }
}

/// [`kernels::CENTRES`]: per centre c of `class[first..end]`, `sums[3(c − first)..]` over
/// all others; a block per tile of 64 of the whole class that holds centres (the tiles do
/// not move with the range, so a centre's sums have the same bits in every launch).
pub(crate) fn centres_plan<T: KernelReal, B>(
    centres: &Range<usize>,
    n_others: usize,
    scale: f64,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let tiles = centres.end.div_ceil(PAIR_TILE_ROWS) - centres.start / PAIR_TILE_ROWS;
    let scalars = [
        ("first", Size(centres.start)),
        ("end", Size(centres.end)),
        ("n_others", Size(n_others)),
        ("scale", Value(scale)),
    ];
    Launch::build::<T>(&kernels::CENTRES, pair_shape(tiles), buffers, &scalars)
}

/// [`kernels::PAIRS`] on `blocks` blocks: the positives' sums and `partials[b·n_neg + j]`,
/// block b's Σ σ' of negative j.
pub(crate) fn pairs_plan<T: KernelReal, B>(
    (n_pos, n_neg): (usize, usize),
    blocks: usize,
    temperature: f64,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let scalars = [
        ("n_pos", Size(n_pos)),
        ("n_neg", Size(n_neg)),
        ("scale", Value(1.0 / temperature)),
    ];
    Launch::build::<T>(&kernels::PAIRS, pair_shape(blocks), buffers, &scalars)
}

/// [`kernels::COLUMNS`]: each negative's Σ σ' over the blocks, in block order, one thread
/// per negative.
pub(crate) fn columns_plan<T: KernelReal, B>(
    blocks: usize,
    n_neg: usize,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let shape = LaunchShape::threads(n_neg, PAIR_THREADS);
    let scalars = [("n_blocks", Size(blocks)), ("n_neg", Size(n_neg))];
    Launch::build::<T>(&kernels::COLUMNS, shape, buffers, &scalars)
}

/// [`kernels::FINISH`], with norm = 1/(n_pos·n_neg).
pub(crate) fn finish_plan<T: KernelReal, B>(
    (n_pos, n_neg): (usize, usize),
    row_start: usize,
    temperature: f64,
    buffers: Buffers<B>,
) -> candle_core::Result<Launch<B>> {
    let scalars = [
        ("row_start", Size(row_start)),
        ("norm", Value(1.0 / (n_pos as f64 * n_neg as f64))),
        ("inv_t", Value(1.0 / temperature)),
    ];
    Launch::build::<T>(
        &kernels::FINISH,
        LaunchShape::single_block(),
        buffers,
        &scalars,
    )
}

/// The launches on the scores, with their labels as 0/1 in the same dtype, the cells
/// `rows` (not empty) as centres.
pub(crate) struct Forward<'a, D: KernelDevice> {
    pub dev: &'a D,
    pub labels: (&'a D::Storage, &'a candle_core::Layout),
    pub rows: &'a Range<usize>,
    pub temperature: f64,
}

impl<D: KernelDevice> DeviceKernel<D> for Forward<'_, D> {
    const OP: &'static str = super::AurocOp::NAME;

    /// Scores of any float dtype (f16/bf16 read as f32), labels in the dtype the kernels
    /// compute in.
    fn run<X: KernelInput>(self, scores: D::Input<'_, X>) -> candle_core::Result<D::Storage> {
        let labels = D::input::<X::Real>(self.labels.0, self.labels.1)?;
        forward::<D, X, X::Real>(self.dev, (&scores, &labels), self.rows, self.temperature)
    }
}

fn forward<D: KernelDevice, X: KernelInput<Real = T>, T: KernelReal>(
    dev: &D,
    (scores, labels): (&D::Input<'_, X>, &D::Input<'_, T>),
    rows: &Range<usize>,
    temperature: f64,
) -> candle_core::Result<D::Storage> {
    let n = D::input_len(scores);
    let mut pos_scores = dev.alloc_zeros::<T>(n)?;
    let mut neg_scores = dev.alloc_zeros::<T>(n)?;
    let mut pos_index = dev.alloc_zeros::<i64>(n)?;
    let mut neg_index = dev.alloc_zeros::<i64>(n)?;
    let mut counts = dev.alloc_zeros::<i64>(counts::LEN)?;
    let compact = compact_plan::<X, _>(
        n,
        rows,
        vec![
            ("scores", D::read_input_from(scores, 0)),
            ("labels", D::read_input_from(labels, 0)),
            ("pos_scores", D::write_from(&mut pos_scores, 0)),
            ("pos_index", D::write_from(&mut pos_index, 0)),
            ("neg_scores", D::write_from(&mut neg_scores, 0)),
            ("neg_index", D::write_from(&mut neg_index, 0)),
            ("counts", D::write_from(&mut counts, 0)),
        ],
    )?;
    // SAFETY: the plan orders the arguments as `auroc_compact_*` declares them; every
    // buffer holds n elements, counts `counts::LEN`; rows lie in 0..n.
    unsafe { dev.launch(compact) }?;
    let count = dev
        .to_host(&counts)?
        .into_iter()
        .map(|c| c as usize)
        .collect::<Vec<_>>();
    let (n_pos, n_neg) = (count[counts::POS], count[counts::NEG]);
    if n_pos == 0 || n_neg == 0 {
        // value 0, zero gradients (SPEC.md §6)
        return Ok(dev.storage(dev.alloc_zeros::<T>(GRAD_SCORES + rows.len())?));
    }
    let own_pos = count[counts::POS_FIRST]..count[counts::POS_END];
    let own_neg = count[counts::NEG_FIRST]..count[counts::NEG_END];
    // One element at least: a class may have no centre in the range.
    let mut pos_sums = dev.alloc_output::<T>(3 * own_pos.len().max(1))?;
    let mut neg_sums = dev.alloc_output::<T>(3 * own_neg.len().max(1))?;
    let whole = own_pos.len() == n_pos && own_neg.len() == n_neg;
    match pair_blocks::<T>(n_pos, n_neg).filter(|_| whole) {
        Some(blocks) => {
            let mut partials = dev.alloc_zeros::<T>(blocks * n_neg)?;
            let pairs = pairs_plan::<T, _>(
                (n_pos, n_neg),
                blocks,
                temperature,
                vec![
                    ("pos", D::read_from(&pos_scores, 0)),
                    ("neg", D::read_from(&neg_scores, 0)),
                    ("pos_sums", D::write_from(&mut pos_sums, 0)),
                    ("partials", D::write_from(&mut partials, 0)),
                ],
            )?;
            // SAFETY: the plan orders the arguments as `auroc_pairs_*` declares them;
            // pos_sums holds 3 per positive, partials blocks × n_neg zeros.
            unsafe { dev.launch(pairs) }?;
            let columns = columns_plan::<T, _>(
                blocks,
                n_neg,
                vec![
                    ("partials", D::read_from(&partials, 0)),
                    ("neg_sums", D::write_from(&mut neg_sums, 0)),
                ],
            )?;
            // SAFETY: as `auroc_columns_*` declares them; neg_sums holds 3 per negative.
            unsafe { dev.launch(columns) }?;
        }
        None => {
            let inv_t = 1.0 / temperature;
            let sweeps = [
                (
                    &own_pos,
                    n_neg,
                    inv_t,
                    &pos_scores,
                    &neg_scores,
                    &mut pos_sums,
                ),
                (
                    &own_neg,
                    n_pos,
                    -inv_t,
                    &neg_scores,
                    &pos_scores,
                    &mut neg_sums,
                ),
            ];
            for (centres, n_others, scale, class, others, sums) in sweeps {
                if centres.is_empty() {
                    continue;
                }
                let sweep = centres_plan::<T, _>(
                    centres,
                    n_others,
                    scale,
                    vec![
                        ("class_scores", D::read_from(class, 0)),
                        ("others", D::read_from(others, 0)),
                        ("sums", D::write_from(sums, 0)),
                    ],
                )?;
                // SAFETY: the plan orders the arguments as `auroc_centres_*` declares them;
                // `sums` holds 3 per centre, the centres are a run of their class, `others`
                // holds its count.
                unsafe { dev.launch(sweep) }?;
            }
        }
    }
    let mut out = dev.alloc_output::<T>(GRAD_SCORES + rows.len())?;
    let finish = finish_plan::<T, _>(
        (n_pos, n_neg),
        rows.start,
        temperature,
        vec![
            ("pos_sums", D::read_from(&pos_sums, 0)),
            ("pos_index", D::read_from(&pos_index, 0)),
            ("neg_sums", D::read_from(&neg_sums, 0)),
            ("neg_index", D::read_from(&neg_index, 0)),
            ("counts", D::read_from(&counts, 0)),
            ("out", D::write_from(&mut out, 0)),
        ],
    )?;
    // SAFETY: the plan orders the arguments as `auroc_finish_*` declares them; `out` holds
    // 2 + n_rows elements and every centre's index lies in rows.
    unsafe { dev.launch(finish) }?;
    Ok(dev.storage(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{placeholder_buffers, Arg};

    #[test]
    fn the_pair_sweeps_take_64_centres_a_block() {
        let c = centres_plan::<f64, ()>(
            &(0..257),
            5,
            -2.0,
            placeholder_buffers::<f64>(&kernels::CENTRES),
        )
        .unwrap();
        assert_eq!(c.kernel, "auroc_centres_f64");
        assert_eq!((c.shape.grid, c.shape.block), (5, PAIR_THREADS));
        assert!(
            matches!(c.args[2], Arg::I64(257)) && matches!(c.args[5], Arg::F64(v) if v == -2.0)
        );
        // Centres 100..120 lie in the class's tile 1 (64..128), 100..140 in tiles 1 and 2.
        let r = centres_plan::<f32, ()>(
            &(100..120),
            5,
            1.0,
            placeholder_buffers::<f32>(&kernels::CENTRES),
        )
        .unwrap();
        assert_eq!(r.shape.grid, 1);
        let r = centres_plan::<f32, ()>(
            &(100..140),
            5,
            1.0,
            placeholder_buffers::<f32>(&kernels::CENTRES),
        )
        .unwrap();
        assert_eq!(r.shape.grid, 2);
        assert!(matches!(
            (&r.args[1], &r.args[2]),
            (Arg::I64(100), Arg::I64(140))
        ));
        let p = pairs_plan::<f32, ()>(
            (300, 7),
            5,
            0.5,
            placeholder_buffers::<f32>(&kernels::PAIRS),
        )
        .unwrap();
        assert_eq!((p.kernel.as_str(), p.shape.grid), ("auroc_pairs_f32", 5));
        assert!(matches!(p.args[4], Arg::F32(v) if v == 2.0));
        let s =
            columns_plan::<f32, ()>(5, 300, placeholder_buffers::<f32>(&kernels::COLUMNS)).unwrap();
        assert_eq!((s.shape.grid, s.shape.block), (2, PAIR_THREADS));
        assert!(matches!(s.args[1], Arg::I32(5)));
        let f =
            finish_plan::<f32, ()>((4, 5), 7, 0.5, placeholder_buffers::<f32>(&kernels::FINISH))
                .unwrap();
        assert!(matches!(f.args[5], Arg::I64(7)));
        assert!(matches!(f.args[6], Arg::F64(v) if v == 0.05));
        assert!(matches!(f.args[7], Arg::F32(v) if v == 2.0));
        let c = compact_plan::<f64, ()>(10, &(3..8), placeholder_buffers::<f64>(&kernels::COMPACT))
            .unwrap();
        assert!(matches!(
            (&c.args[3], &c.args[4]),
            (Arg::I64(3), Arg::I64(5))
        ));
    }

    #[test]
    fn one_sweep_while_the_block_sums_fit_their_budget() {
        assert_eq!(pair_blocks::<f32>(100, 50), Some(2));
        assert_eq!(pair_blocks::<f32>(1 << 20, 50_000), Some(MAX_PAIR_BLOCKS));
        let all = PARTIALS_BUDGET / (MAX_PAIR_BLOCKS * 4);
        assert_eq!(pair_blocks::<f32>(1 << 20, all), Some(MAX_PAIR_BLOCKS));
        assert_eq!(
            pair_blocks::<f32>(1 << 20, all + 1),
            Some(MAX_PAIR_BLOCKS - 1)
        );
        assert_eq!(pair_blocks::<f64>(1 << 20, all), Some(MIN_PAIR_BLOCKS));
        assert_eq!(pair_blocks::<f64>(1 << 20, all + 1), None);
        // Few positives: their tiles, however many negatives the budget leaves room for.
        assert_eq!(pair_blocks::<f32>(640, PARTIALS_BUDGET / 40), Some(10));
        assert_eq!(pair_blocks::<f32>(640, PARTIALS_BUDGET / 36), None);
    }
}
