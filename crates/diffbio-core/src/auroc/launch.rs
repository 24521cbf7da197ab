//! The launches of the pairwise-sigmoid AUROC surrogate (`kernels/pairwise_sigmoid_auroc.cu`)
//! on any [`KernelDevice`]. Output layout as on the CPU: `[value, ∂/∂T, ∂/∂s_0, ...,
//! ∂/∂s_{n−1}]`.
//!
//! `auroc_compact` splits the scores into positives and negatives (with their input
//! indices and counts), `auroc_pairs` sweeps each class against the other (one thread per
//! centre), and `auroc_finish` scatters the per-centre sums into the output.

use super::contract::GRAD_SCORES;
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

/// `auroc_compact_*(scores, labels, n, pos_scores, pos_index, neg_scores, neg_index,
/// counts)`.
pub(crate) fn compact_plan<T: KernelReal, B>(
    n: usize,
    [scores, labels, pos_scores, pos_index, neg_scores, neg_index, counts]: [Arg<B>; 7],
) -> Launch<B> {
    plan(
        kernel_name::<T>("auroc_compact"),
        Shape::single_block(),
        vec![
            scores,
            labels,
            Arg::I64(n as i64),
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

/// `auroc_finish_*(pos_sums, pos_index, neg_sums, neg_index, counts, 1/(n_pos·n_neg), 1/T,
/// out)`.
pub(crate) fn finish_plan<T: KernelReal, B>(
    (n_pos, n_neg): (usize, usize),
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
            Arg::F64(1.0 / (n_pos as f64 * n_neg as f64)),
            Arg::real::<T>(1.0 / temperature),
            out,
        ],
    )
}

/// The launches on the scores, with their labels as 0/1 in the same dtype.
pub(crate) struct Forward<'a, D: KernelDevice> {
    pub dev: &'a D,
    pub labels: (&'a D::Storage, &'a candle_core::Layout),
    pub temperature: f64,
}

impl<D: KernelDevice> DeviceKernel<D> for Forward<'_, D> {
    const OP: &'static str = "pairwise-sigmoid-auroc";

    fn run<T: KernelReal>(self, scores: D::Input<'_, T>) -> candle_core::Result<D::Storage> {
        let labels = D::input::<T>(self.labels.0, self.labels.1)?;
        forward::<D, T>(self.dev, &scores, &labels, self.temperature)
    }
}

fn forward<D: KernelDevice, T: KernelReal>(
    dev: &D,
    scores: &D::Input<'_, T>,
    labels: &D::Input<'_, T>,
    temperature: f64,
) -> candle_core::Result<D::Storage> {
    let n = D::input_len(scores);
    let mut pos_scores = dev.alloc_zeros::<T>(n)?;
    let mut neg_scores = dev.alloc_zeros::<T>(n)?;
    let mut pos_index = dev.alloc_zeros::<i64>(n)?;
    let mut neg_index = dev.alloc_zeros::<i64>(n)?;
    let mut counts = dev.alloc_zeros::<i64>(2)?;
    let compact = compact_plan::<T, _>(
        n,
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
    // buffer holds n elements, counts 2.
    unsafe { dev.launch(compact) }?;
    let host_counts = dev.to_host(&counts)?;
    let (n_pos, n_neg) = (host_counts[0] as usize, host_counts[1] as usize);
    if n_pos == 0 || n_neg == 0 {
        // value 0, zero gradients (SPEC.md §6)
        return Ok(dev.storage(dev.alloc_zeros::<T>(GRAD_SCORES + n)?));
    }
    let mut pos_sums = dev.alloc_output::<T>(3 * n_pos)?;
    let mut neg_sums = dev.alloc_output::<T>(3 * n_neg)?;
    let inv_t = 1.0 / temperature;
    let sweeps = [
        (n_pos, n_neg, inv_t, &pos_scores, &neg_scores, &mut pos_sums),
        (
            n_neg,
            n_pos,
            -inv_t,
            &neg_scores,
            &pos_scores,
            &mut neg_sums,
        ),
    ];
    for (n_centres, n_others, scale, centres, others, sums) in sweeps {
        let pairs = pairs_plan::<T, _>(
            n_centres,
            n_others,
            scale,
            [D::read(centres), D::read(others), D::write_from(sums, 0)],
        );
        // SAFETY: the plan orders the arguments as `auroc_pairs_*` declares them; `sums`
        // holds 3·n_centres elements, the classes their counts.
        unsafe { dev.launch(pairs) }?;
    }
    let mut out = dev.alloc_output::<T>(GRAD_SCORES + n)?;
    let finish = finish_plan::<T, _>(
        (n_pos, n_neg),
        temperature,
        [
            D::read(&pos_sums),
            D::read(&pos_index),
            D::read(&neg_sums),
            D::read(&neg_index),
            D::read(&counts),
            D::write_from(&mut out, 0),
        ],
    );
    // SAFETY: the plan orders the arguments as `auroc_finish_*` declares them; `out` holds
    // 2 + n elements and every index is < n.
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
        let f = finish_plan::<f32, ()>((4, 5), 0.5, [(); 6].map(|_| Arg::Buffer(())));
        assert!(matches!(f.args[5], Arg::F64(v) if v == 0.05));
        assert!(matches!(f.args[6], Arg::F32(v) if v == 2.0));
    }
}
