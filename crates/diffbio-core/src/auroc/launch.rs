//! The launches of the pairwise-sigmoid AUROC surrogate (`kernels/pairwise_sigmoid_auroc.cu`)
//! on any [`KernelDevice`]. Output layout as on the CPU: `[value, ∂/∂T, ∂/∂s of each
//! centre]`, the centres a range of the cells (all of them on one device).
//!
//! `auroc_compact` splits the scores into positives and negatives (with their input
//! indices, counts and the centres' run in each class), `auroc_pairs` sweeps each class's
//! centres against the whole other class (one thread per centre), and `auroc_finish`
//! scatters the per-centre sums into the output.

use std::ops::Range;

use super::contract::{counts, GRAD_SCORES};
use crate::launch::{
    kernel_name, Arg, DeviceKernel, KernelDevice, KernelReal, Launch, Module, Shape,
};

/// Centres (threads) per block in the pair sweep.
const CENTRES_PER_BLOCK: u32 = 256;

fn plan<B>(kernel: String, shape: Shape, args: Vec<Arg<B>>) -> Launch<B> {
    Launch {
        module: Module::PairwiseSigmoidAuroc,
        kernel,
        shape,
        args,
    }
}

/// `auroc_compact_*(scores, labels, n, row_start, n_rows, pos_scores, pos_index,
/// neg_scores, neg_index, counts)`.
pub(crate) fn compact_plan<T: KernelReal, B>(
    n: usize,
    rows: &Range<usize>,
    [scores, labels, pos_scores, pos_index, neg_scores, neg_index, counts]: [Arg<B>; 7],
) -> Launch<B> {
    plan(
        kernel_name::<T>("auroc_compact"),
        Shape::single_block(),
        vec![
            scores,
            labels,
            Arg::I64(n as i64),
            Arg::I64(rows.start as i64),
            Arg::I64(rows.len() as i64),
            pos_scores,
            pos_index,
            neg_scores,
            neg_index,
            counts,
        ],
    )
}

/// `auroc_pairs_*(centres, n_centres, others, n_others, scale, sums)`: per centre c,
/// `sums[3c..3c + 3]` over all others.
pub(crate) fn pairs_plan<T: KernelReal, B>(
    n_centres: usize,
    n_others: usize,
    scale: f64,
    [centres, others, sums]: [Arg<B>; 3],
) -> Launch<B> {
    plan(
        kernel_name::<T>("auroc_pairs"),
        Shape::threads(n_centres, CENTRES_PER_BLOCK),
        vec![
            centres,
            Arg::I64(n_centres as i64),
            others,
            Arg::I64(n_others as i64),
            Arg::real::<T>(scale),
            sums,
        ],
    )
}

/// `auroc_finish_*(pos_sums, pos_index, neg_sums, neg_index, counts, row_start,
/// 1/(n_pos·n_neg), 1/T, out)`.
pub(crate) fn finish_plan<T: KernelReal, B>(
    (n_pos, n_neg): (usize, usize),
    row_start: usize,
    temperature: f64,
    [pos_sums, pos_index, neg_sums, neg_index, counts, out]: [Arg<B>; 6],
) -> Launch<B> {
    plan(
        kernel_name::<T>("auroc_finish"),
        Shape::single_block(),
        vec![
            pos_sums,
            pos_index,
            neg_sums,
            neg_index,
            counts,
            Arg::I64(row_start as i64),
            Arg::F64(1.0 / (n_pos as f64 * n_neg as f64)),
            Arg::real::<T>(1.0 / temperature),
            out,
        ],
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
    const OP: &'static str = "pairwise-sigmoid-auroc";

    fn run<T: KernelReal>(self, scores: D::Input<'_, T>) -> candle_core::Result<D::Storage> {
        let labels = D::input::<T>(self.labels.0, self.labels.1)?;
        forward::<D, T>(self.dev, (&scores, &labels), self.rows, self.temperature)
    }
}

fn forward<D: KernelDevice, T: KernelReal>(
    dev: &D,
    (scores, labels): (&D::Input<'_, T>, &D::Input<'_, T>),
    rows: &Range<usize>,
    temperature: f64,
) -> candle_core::Result<D::Storage> {
    let n = D::input_len(scores);
    let mut pos_scores = dev.alloc_zeros::<T>(n)?;
    let mut neg_scores = dev.alloc_zeros::<T>(n)?;
    let mut pos_index = dev.alloc_zeros::<i64>(n)?;
    let mut neg_index = dev.alloc_zeros::<i64>(n)?;
    let mut counts = dev.alloc_zeros::<i64>(counts::LEN)?;
    let compact = compact_plan::<T, _>(
        n,
        rows,
        [
            D::read_input_from(scores, 0),
            D::read_input_from(labels, 0),
            D::write_from(&mut pos_scores, 0),
            D::write_from(&mut pos_index, 0),
            D::write_from(&mut neg_scores, 0),
            D::write_from(&mut neg_index, 0),
            D::write_from(&mut counts, 0),
        ],
    );
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
        let pairs = pairs_plan::<T, _>(
            centres.len(),
            n_others,
            scale,
            [
                D::read_from(class, centres.start),
                D::read_from(others, 0),
                D::write_from(sums, 0),
            ],
        );
        // SAFETY: the plan orders the arguments as `auroc_pairs_*` declares them; `sums`
        // holds 3 per centre, the centres are a run of their class, `others` holds its count.
        unsafe { dev.launch(pairs) }?;
    }
    let mut out = dev.alloc_output::<T>(GRAD_SCORES + rows.len())?;
    let finish = finish_plan::<T, _>(
        (n_pos, n_neg),
        rows.start,
        temperature,
        [
            D::read_from(&pos_sums, 0),
            D::read_from(&pos_index, 0),
            D::read_from(&neg_sums, 0),
            D::read_from(&neg_index, 0),
            D::read_from(&counts, 0),
            D::write_from(&mut out, 0),
        ],
    );
    // SAFETY: the plan orders the arguments as `auroc_finish_*` declares them; `out` holds
    // 2 + n_rows elements and every centre's index lies in rows.
    unsafe { dev.launch(finish) }?;
    Ok(dev.storage(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_sweep_has_one_thread_per_centre() {
        let args = [(); 3].map(|_| Arg::Buffer(()));
        let p = pairs_plan::<f64, ()>(257, 5, -2.0, args);
        assert_eq!(p.kernel, "auroc_pairs_f64");
        assert_eq!((p.shape.grid, p.shape.block), (2, CENTRES_PER_BLOCK));
        assert!(
            matches!(p.args[1], Arg::I64(257)) && matches!(p.args[4], Arg::F64(v) if v == -2.0)
        );
        let f = finish_plan::<f32, ()>((4, 5), 7, 0.5, [(); 6].map(|_| Arg::Buffer(())));
        assert!(matches!(f.args[5], Arg::I64(7)));
        assert!(matches!(f.args[6], Arg::F64(v) if v == 0.05));
        assert!(matches!(f.args[7], Arg::F32(v) if v == 2.0));
        let c = compact_plan::<f64, ()>(10, &(3..8), [(); 7].map(|_| Arg::Buffer(())));
        assert!(matches!(
            (&c.args[3], &c.args[4]),
            (Arg::I64(3), Arg::I64(5))
        ));
    }
}
