//! The sharded losses on CPU ranks (threads): equal to the single-device loss on the
//! concatenation, value and every rank's gradient rows, for several world sizes, uneven
//! and empty shards, shards smaller than k, cells dealt at random; a model's summed
//! parameter gradients; the same typed error on every rank, never a hang.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use diffbio_core::dist::{sum_over_ranks, Communicator, ThreadComm};
use diffbio_core::*;
use diffbio_testing::{flat, norm_rel_err, rel_err, scalar, Rng};

/// Runs `f` on every rank of a `world`-thread group; fails (instead of hanging) if the
/// ranks do not all finish within a minute.
fn on_ranks<R: Send + 'static>(
    world: usize,
    f: impl Fn(ThreadComm) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let f = Arc::new(f);
    let (tx, rx) = mpsc::channel();
    for comm in ThreadComm::group(world) {
        let (f, tx) = (f.clone(), tx.clone());
        std::thread::spawn(move || {
            let rank = comm.rank();
            let _ = tx.send((rank, f(comm)));
        });
    }
    drop(tx);
    let mut results: Vec<Option<R>> = (0..world).map(|_| None).collect();
    for _ in 0..world {
        let (rank, r) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("every rank finishes (a rank hung or panicked)");
        results[rank] = Some(r);
    }
    results.into_iter().map(Option::unwrap).collect()
}

/// Cells dealt to `world` ranks: a random permutation cut into shards of random sizes;
/// with 3 ranks or more, rank 2 gets `small` cells and rank 1 none if `empty`.
fn deal(n: usize, world: usize, small: usize, empty: bool, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut cells: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        cells.swap(i, rng.below(i + 1));
    }
    let mut sizes = vec![0usize; world];
    let mut left = n;
    if world >= 3 {
        sizes[2] = small;
        left -= small;
    }
    let free: Vec<usize> = (0..world)
        .filter(|&r| world < 3 || (r != 2 && !(empty && r == 1)))
        .collect();
    for (i, &r) in free.iter().enumerate() {
        sizes[r] = if i + 1 == free.len() {
            left
        } else {
            rng.below(left / (free.len() - i) + 1) + 1
        };
        left -= sizes[r];
    }
    let mut start = 0;
    sizes
        .iter()
        .map(|&len| {
            let shard = cells[start..start + len].to_vec();
            start += len;
            shard
        })
        .collect()
}

fn rows(t: &Tensor, index: &[usize]) -> Tensor {
    let index: Vec<u32> = index.iter().map(|&i| i as u32).collect();
    let len = index.len();
    t.index_select(&Tensor::from_vec(index, len, t.device()).unwrap(), 0)
        .unwrap()
}

/// `grad` rows of each rank put back at their cells' places in the whole batch.
fn assemble(shards: &[Vec<usize>], grads: &[Vec<f64>], n: usize, width: usize) -> Vec<f64> {
    let mut whole = vec![f64::NAN; n * width];
    for (cells, grad) in shards.iter().zip(grads) {
        assert_eq!(
            grad.len(),
            cells.len() * width,
            "one gradient row per own cell"
        );
        for (r, &i) in cells.iter().enumerate() {
            whole[i * width..(i + 1) * width].copy_from_slice(&grad[r * width..(r + 1) * width]);
        }
    }
    whole
}

const WORLDS: [usize; 5] = [1, 2, 3, 4, 7];

/// Where the ranks compute: on a device (the CPU, a GPU), or on the CPU with the fused
/// ops' CUDA kernels run by the emulator.
#[derive(Clone)]
enum On {
    Device(Device),
    #[cfg(feature = "cuda-emu")]
    Emulator,
}

impl On {
    fn device(&self) -> Device {
        match self {
            On::Device(dev) => dev.clone(),
            #[cfg(feature = "cuda-emu")]
            On::Emulator => Device::Cpu,
        }
    }

    /// f64 agreement with the single-device CPU loss: the CPU path's rows are the same
    /// arithmetic; the kernels use the direct form of the distances (see the contract).
    fn tolerance(&self) -> f64 {
        match self {
            On::Device(dev) if dev.is_cpu() => 1e-12,
            _ => 1e-9,
        }
    }

    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            On::Device(_) => f(),
            #[cfg(feature = "cuda-emu")]
            On::Emulator => diffbio_core::emulator::with_emulated_kernels(f),
        }
    }
}

/// Batch mixing on random cells dealt to `world` ranks (rank 2 holding `small`, rank 1
/// none) computing `on`: every rank's value, and its gradient rows, equal the
/// single-device CPU loss's.
fn mixing_sharded_matches(
    loss: BatchMixingLoss,
    (n, d): (usize, usize),
    world: usize,
    small: usize,
    on: &On,
    rng: &mut Rng,
) {
    let x = Tensor::from_vec(rng.normals(n * d), (n, d), &Device::Cpu).unwrap();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
    let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
    let whole = Var::from_tensor(&x).unwrap();
    let single = loss.forward(whole.as_tensor(), &labels).unwrap();
    let single_grad = flat(single.backward().unwrap().get(&whole).unwrap());
    let single = scalar(&single);

    let shards = Arc::new(deal(n, world, small, true, rng));
    let (x, labels, dealt, ranks_on) = (x.clone(), labels.clone(), shards.clone(), on.clone());
    let results = on_ranks(world, move |comm| {
        ranks_on.run(|| {
            let device = ranks_on.device();
            let mine = &dealt[comm.rank()];
            let shard = Var::from_tensor(&rows(&x, mine).to_device(&device).unwrap()).unwrap();
            let labels = rows(&labels, mine).to_device(&device).unwrap();
            let l = loss
                .forward_sharded(&comm, shard.as_tensor(), &labels)
                .unwrap();
            let grad = l.backward().unwrap().get(&shard).unwrap().clone();
            assert!(l.device().same_device(&device) && grad.device().same_device(&device));
            (scalar(&l), flat(&grad))
        })
    });
    let tol = on.tolerance();
    for (rank, (value, _)) in results.iter().enumerate() {
        assert!(
            rel_err(*value, single, 1e-300) < tol,
            "W = {world}, rank {rank}: {value} vs {single}"
        );
    }
    let grads: Vec<Vec<f64>> = results.into_iter().map(|(_, g)| g).collect();
    let err = norm_rel_err(&assemble(&shards, &grads, n, d), &single_grad, 1e-300);
    assert!(err < tol, "W = {world}: gradient rows differ by {err:e}");
}

#[test]
fn batch_mixing_sharded_equals_the_single_device_loss() {
    let mut rng = Rng::new(7);
    for (case, &world) in WORLDS.iter().enumerate() {
        let config = BatchMixingConfig {
            n_neighbors: 6,
            n_batches: 3,
            temperature: 0.4 + 0.3 * case as f64,
        };
        let dims = (45 + 9 * case, 3 + case % 3);
        let loss = BatchMixingLoss::new(config).unwrap();
        mixing_sharded_matches(loss, dims, world, 4, &On::Device(Device::Cpu), &mut rng);
    }
}

/// Shards over several of the CPU path's blocks: a rank's last block is partly its own,
/// and the tiles of two blocks holding none of its cells are skipped.
#[test]
fn batch_mixing_sharded_over_several_blocks_equals_the_single_device_loss() {
    let mut rng = Rng::new(9);
    let config = BatchMixingConfig {
        n_neighbors: 10,
        n_batches: 3,
        temperature: 0.8,
    };
    let loss = BatchMixingLoss::new(config).unwrap();
    let n = 2 * diffbio_pairwise::BLOCK + 188;
    mixing_sharded_matches(loss, (n, 4), 4, 4, &On::Device(Device::Cpu), &mut rng);
}

#[test]
fn batch_mixing_sharded_f32_and_f16_shards_match_to_their_precision() {
    let mut rng = Rng::new(11);
    let (n, d) = (70, 4);
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 8,
        n_batches: 2,
        temperature: 1.0,
    })
    .unwrap();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(2) as u32).collect();
    let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
    for dtype in [DType::F32, DType::F16] {
        let x = Tensor::from_vec(rng.normals(n * d), (n, d), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let single = scalar(&loss.forward(&x, &labels).unwrap());
        let shards = Arc::new(deal(n, 3, 5, true, &mut rng));
        let (x, labels, dealt) = (x.clone(), labels.clone(), shards.clone());
        let values = on_ranks(3, move |comm| {
            let mine = &dealt[comm.rank()];
            let l = loss
                .forward_sharded(&comm, &rows(&x, mine), &rows(&labels, mine))
                .unwrap();
            assert_eq!(l.dtype(), dtype);
            scalar(&l)
        });
        let tol = if dtype == DType::F16 { 2e-3 } else { 1e-5 };
        for v in values {
            assert!(
                rel_err(v, single, 1e-12) < tol,
                "{dtype:?}: {v} vs {single}"
            );
        }
    }
}

/// The AUROC surrogate on `n` random scores (ties within and across ranks) dealt to
/// `world` ranks computing `on`, each with its own replica of a learnable temperature:
/// every rank's value, its ∂/∂s entries and the sum of the ∂/∂T shares equal the
/// single-device CPU ones.
fn auroc_sharded_matches(n: usize, world: usize, t0: f64, on: &On, rng: &mut Rng) {
    let scores: Vec<f64> = (0..n).map(|_| (rng.normal() * 4.0).round() / 4.0).collect();
    let labels: Vec<f64> = (0..n).map(|_| (rng.uniform() < 0.4) as u8 as f64).collect();
    let scores = Tensor::from_vec(scores, n, &Device::Cpu).unwrap();
    let labels = Tensor::from_vec(labels, n, &Device::Cpu).unwrap();
    let s = Var::from_tensor(&scores).unwrap();
    let t = Var::new(t0, &Device::Cpu).unwrap();
    let auroc = DifferentiableAuroc::with_temperature(t.as_tensor().clone()).unwrap();
    let single = auroc.forward(s.as_tensor(), &labels).unwrap();
    let grads = single.backward().unwrap();
    let (single_s, single_t) = (flat(grads.get(&s).unwrap()), scalar(grads.get(&t).unwrap()));
    let single = scalar(&single);

    let shards = Arc::new(deal(n, world, 1, true, rng));
    let on_tolerance = on.tolerance();
    let (scores, labels, dealt, on) = (scores.clone(), labels.clone(), shards.clone(), on.clone());
    let results = on_ranks(world, move |comm| {
        on.run(|| {
            let dev = on.device();
            let mine = &dealt[comm.rank()];
            let s = Var::from_tensor(&rows(&scores, mine).to_device(&dev).unwrap()).unwrap();
            let t = Var::new(t0, &dev).unwrap(); // each rank's replica
            let auroc = DifferentiableAuroc::with_temperature(t.as_tensor().clone()).unwrap();
            let labels = rows(&labels, mine).to_device(&dev).unwrap();
            let v = auroc
                .forward_sharded(&comm, s.as_tensor(), &labels)
                .unwrap();
            let grads = v.backward().unwrap();
            let (g_s, g_t) = (flat(grads.get(&s).unwrap()), scalar(grads.get(&t).unwrap()));
            (scalar(&v), g_s, g_t)
        })
    });
    let tol = on_tolerance;
    for (value, _, _) in &results {
        assert!(
            rel_err(*value, single, 1e-300) < tol,
            "W = {world}: {value} vs {single}"
        );
    }
    let grad_t: f64 = results.iter().map(|r| r.2).sum();
    assert!(
        rel_err(grad_t, single_t, 1e-300) < tol,
        "W = {world}: ∂/∂T {grad_t} vs {single_t}"
    );
    let grads: Vec<Vec<f64>> = results.into_iter().map(|r| r.1).collect();
    let err = norm_rel_err(&assemble(&shards, &grads, n, 1), &single_s, 1e-300);
    assert!(err < tol, "W = {world}: ∂/∂s differs by {err:e}");
}

#[test]
fn auroc_sharded_equals_the_single_device_surrogate_and_temperature_gradient() {
    let mut rng = Rng::new(3);
    for (case, &world) in WORLDS.iter().enumerate() {
        let (n, t0) = (50 + 7 * case, 0.3 + 0.2 * case as f64);
        auroc_sharded_matches(n, world, t0, &On::Device(Device::Cpu), &mut rng);
    }
}

/// A small model: a linear map, its output centred on the whole batch's mean (through
/// `sum_over_ranks` when sharded), then batch mixing plus an AUROC of its first column.
struct Model {
    layer: candle_nn::Linear,
    varmap: VarMap,
}

impl Model {
    fn new(weights: &Tensor, bias: &Tensor) -> Self {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
        let layer =
            candle_nn::linear(weights.dim(1).unwrap(), weights.dim(0).unwrap(), vb).unwrap();
        for (name, value) in [("weight", weights), ("bias", bias)] {
            varmap.data().lock().unwrap()[name].set(value).unwrap();
        }
        Self { layer, varmap }
    }

    fn grads(&self, loss: &Tensor) -> Vec<f64> {
        let grads = loss.backward().unwrap();
        let data = self.varmap.data().lock().unwrap();
        // A rank with no cells may have no gradient for a parameter: it is zero there.
        ["weight", "bias"]
            .iter()
            .flat_map(|name| {
                let param = data[*name].as_tensor();
                grads
                    .get(param)
                    .map(flat)
                    .unwrap_or_else(|| vec![0.0; param.elem_count()])
            })
            .collect()
    }
}

const MIXING: BatchMixingConfig = BatchMixingConfig {
    n_neighbors: 5,
    n_batches: 2,
    temperature: 0.8,
};

#[test]
fn a_models_parameter_gradients_summed_over_ranks_equal_the_single_device_ones() {
    let mut rng = Rng::new(5);
    let (n, d_in, d_out) = (48, 6, 3);
    let weights = Tensor::from_vec(rng.normals(d_out * d_in), (d_out, d_in), &Device::Cpu).unwrap();
    let bias = Tensor::from_vec(rng.normals(d_out), d_out, &Device::Cpu).unwrap();
    let x = Tensor::from_vec(rng.normals(n * d_in), (n, d_in), &Device::Cpu).unwrap();
    let batches: Vec<u32> = (0..n).map(|_| rng.below(2) as u32).collect();
    let batches = Tensor::from_vec(batches, n, &Device::Cpu).unwrap();
    let classes: Vec<u32> = (0..n).map(|_| rng.below(2) as u32).collect();
    let classes = Tensor::from_vec(classes, n, &Device::Cpu).unwrap();
    let mixing = BatchMixingLoss::new(MIXING).unwrap();
    let auroc = DifferentiableAuroc::new(0.5).unwrap();

    let model = Model::new(&weights, &bias);
    let z = model.layer.forward(&x).unwrap();
    let z = z.broadcast_sub(&z.mean_keepdim(0).unwrap()).unwrap();
    let objective = (mixing.forward(&z, &batches).unwrap()
        - auroc
            .forward(&z.narrow(1, 0, 1).unwrap().squeeze(1).unwrap(), &classes)
            .unwrap())
    .unwrap();
    let single = model.grads(&objective);

    // Every rank holds cells: Candle's binary ops on an empty result return their left
    // side, so on an empty shard `z − mean` would lose `mean`, and with it the collective
    // of `sum_over_ranks`' backward (see its docs).
    let shards = Arc::new(deal(n, 3, 2, false, &mut rng));
    let dealt = shards.clone();
    let summed = on_ranks(3, move |comm| {
        let mine = &dealt[comm.rank()];
        let model = Model::new(&weights, &bias);
        let z = model.layer.forward(&rows(&x, mine)).unwrap();
        let mean = (sum_over_ranks(&comm, &z.sum_keepdim(0).unwrap()).unwrap() / n as f64).unwrap();
        let z = z.broadcast_sub(&mean).unwrap();
        let scores = z.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
        let objective = (mixing
            .forward_sharded(&comm, &z, &rows(&batches, mine))
            .unwrap()
            - auroc
                .forward_sharded(&comm, &scores, &rows(&classes, mine))
                .unwrap())
        .unwrap();
        let grads = model.grads(&objective);
        let len = grads.len();
        let total = comm
            .all_reduce_sum(&Tensor::from_vec(grads, len, &Device::Cpu).unwrap())
            .unwrap();
        flat(&total)
    });
    for grads in summed {
        let err = norm_rel_err(&grads, &single, 1e-300);
        assert!(err < 1e-12, "summed parameter gradients differ by {err:e}");
    }
}

// ---- bad input on one rank: the same typed error on every rank, never a hang ----

/// Every rank's result of the batch-mixing loss on shards of 10 cells, rank `bad` given
/// `spoil(x, labels)` instead.
fn mixing_on_ranks(
    world: usize,
    k: usize,
    bad: usize,
    spoil: fn(Tensor, Tensor) -> (Tensor, Tensor),
) -> Vec<Result<f64>> {
    on_ranks(world, move |comm| {
        let mut rng = Rng::new(comm.rank() as u64);
        let x = Tensor::from_vec(rng.normals(30), (10, 3), &Device::Cpu).unwrap();
        let labels =
            Tensor::from_vec((0..10u32).map(|i| i % 2).collect(), 10, &Device::Cpu).unwrap();
        let (x, labels) = if comm.rank() == bad {
            spoil(x, labels)
        } else {
            (x, labels)
        };
        let loss = BatchMixingLoss::new(BatchMixingConfig {
            n_neighbors: k,
            n_batches: 2,
            temperature: 1.0,
        })
        .unwrap();
        loss.forward_sharded(&comm, &x, &labels).map(|l| scalar(&l))
    })
}

#[test]
fn a_nan_on_one_rank_is_the_same_error_on_every_rank() {
    let results = mixing_on_ranks(4, 5, 2, |x, labels| {
        let nan = Tensor::new(&[[f64::NAN, 0.0, 0.0]], &Device::Cpu).unwrap();
        (
            Tensor::cat(&[&x.narrow(0, 0, 9).unwrap(), &nan], 0).unwrap(),
            labels,
        )
    });
    for r in results {
        assert!(
            matches!(
                r,
                Err(Error::NonFinite {
                    input: "embeddings"
                })
            ),
            "{r:?}"
        );
    }
}

#[test]
fn a_label_out_of_range_on_one_rank_is_the_same_error_on_every_rank() {
    let results = mixing_on_ranks(3, 5, 1, |x, _| {
        (
            x,
            Tensor::from_vec((0..10u32).collect(), 10, &Device::Cpu).unwrap(),
        )
    });
    for r in results {
        assert!(
            matches!(r, Err(Error::LabelOutOfRange { input: "batch_labels", value, .. }) if value == 9.0),
            "{r:?}"
        );
    }
}

#[test]
fn k_is_checked_against_the_whole_batch() {
    // 2 ranks × 10 cells: k = 15 exceeds every shard but not the batch; k = 20 exceeds it.
    for r in mixing_on_ranks(2, 15, 0, |x, l| (x, l)) {
        assert!(r.is_ok(), "{r:?}");
    }
    for r in mixing_on_ranks(2, 20, 0, |x, l| (x, l)) {
        assert!(
            matches!(
                r,
                Err(Error::InvalidParameter {
                    name: "n_neighbors",
                    ..
                })
            ),
            "{r:?}"
        );
    }
}

#[test]
fn a_shard_of_the_wrong_width_is_the_same_error_on_every_rank() {
    let results = mixing_on_ranks(3, 5, 2, |x, labels| (x.narrow(1, 0, 2).unwrap(), labels));
    for r in results {
        assert!(
            matches!(&r, Err(Error::Shape { input: "embeddings", got, .. }) if got == &[10, 2]),
            "{r:?}"
        );
    }
}

#[test]
fn a_shard_that_cannot_be_gathered_is_its_error_and_a_peer_error_elsewhere() {
    let results = mixing_on_ranks(3, 5, 1, |x, labels| (x.flatten_all().unwrap(), labels));
    for (rank, r) in results.iter().enumerate() {
        if rank == 1 {
            assert!(
                matches!(
                    r,
                    Err(Error::Shape {
                        input: "embeddings",
                        ..
                    })
                ),
                "{r:?}"
            );
        } else {
            assert!(matches!(r, Err(Error::PeerInput { rank: 1 })), "{r:?}");
        }
    }
}

#[test]
fn float_batch_labels_are_refused_on_their_rank() {
    let results = mixing_on_ranks(2, 5, 0, |x, labels| {
        (x, labels.to_dtype(DType::F32).unwrap())
    });
    assert!(
        matches!(
            results[0],
            Err(Error::DType {
                input: "batch_labels",
                ..
            })
        ),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(results[1], Err(Error::PeerInput { rank: 0 })),
        "{:?}",
        results[1]
    );
}

#[test]
fn auroc_errors_agree_across_ranks() {
    // A label 2 on rank 1; then a temperature that differs on rank 2.
    let results = on_ranks(3, |comm| {
        let scores = Tensor::new(&[0.1f32, 0.7, 0.4], &Device::Cpu).unwrap();
        let y = if comm.rank() == 1 {
            [0u32, 2, 1]
        } else {
            [0, 1, 1]
        };
        let labels = Tensor::new(&y, &Device::Cpu).unwrap();
        let bad_label = DifferentiableAuroc::new(1.0)
            .unwrap()
            .forward_sharded(&comm, &scores, &labels);
        let t = if comm.rank() == 2 { 2.0 } else { 1.0 };
        let labels = Tensor::new(&[0u32, 1, 1], &Device::Cpu).unwrap();
        let bad_t = DifferentiableAuroc::new(t)
            .unwrap()
            .forward_sharded(&comm, &scores, &labels);
        (bad_label.map(|v| scalar(&v)), bad_t.map(|v| scalar(&v)))
    });
    for (label, t) in results {
        assert!(
            matches!(label, Err(Error::LabelOutOfRange { input: "labels", value, .. }) if value == 2.0),
            "{label:?}"
        );
        assert!(
            matches!(t, Err(Error::InvalidParameter { name: "temperature", value, .. }) if value == 2.0),
            "{t:?}"
        );
    }
}

#[test]
fn a_rank_that_leaves_fails_the_others_instead_of_hanging() {
    let results = on_ranks(3, |comm| {
        if comm.rank() == 1 {
            return None; // drops its communicator without taking part
        }
        let x = Tensor::new(&[[1.0f32, 2.0], [0.5, 0.1]], &Device::Cpu).unwrap();
        let labels = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let loss = BatchMixingLoss::new(BatchMixingConfig {
            n_neighbors: 1,
            n_batches: 2,
            temperature: 1.0,
        })
        .unwrap();
        Some(loss.forward_sharded(&comm, &x, &labels).map(|l| scalar(&l)))
    });
    for r in results.into_iter().flatten() {
        assert!(
            matches!(&r, Err(Error::Communication { reason }) if reason.contains("rank 1")),
            "{r:?}"
        );
    }
}

#[test]
fn mismatched_collectives_fail_every_rank() {
    let results = on_ranks(2, |comm| {
        let t = Tensor::new(&[1.0f32], &Device::Cpu).unwrap();
        if comm.rank() == 0 {
            comm.all_gather(&t).map(|_| ())
        } else {
            comm.all_reduce_sum(&t).map(|_| ())
        }
    });
    for r in results {
        assert!(matches!(r, Err(Error::Communication { .. })), "{r:?}");
    }
}

/// Two thread ranks on one GPU (the multi-GPU path without NCCL): the shards live on the
/// device, the values and gradient rows match the CPU's single-device ones.
#[cfg(feature = "cuda")]
#[test]
fn sharded_losses_on_cuda_ranks_match_the_cpu() {
    let Some(dev) = diffbio_testing::cuda_device() else {
        return;
    };
    diffbio_core::poison_kernel_outputs(true);
    let loss = BatchMixingLoss::new(BatchMixingConfig::default()).unwrap();
    let on = On::Device(dev);
    let mut rng = Rng::new(13);
    mixing_sharded_matches(loss, (300, 8), 2, 0, &on, &mut rng);
    auroc_sharded_matches(500, 3, 0.5, &on, &mut rng);
}

/// The sharded losses with every rank's row range computed by the fused ops' CUDA
/// kernels, run by the emulator on the CPU (under ASan + UBSan in CI).
#[cfg(feature = "cuda-emu")]
#[test]
fn sharded_losses_through_the_emulated_kernels_match_the_cpu() {
    let mut rng = Rng::new(17);
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 5,
        n_batches: 3,
        temperature: 0.7,
    })
    .unwrap();
    for world in [3, 4] {
        mixing_sharded_matches(loss, (40, 3), world, 3, &On::Emulator, &mut rng);
        auroc_sharded_matches(70, world, 0.4, &On::Emulator, &mut rng);
    }
}
