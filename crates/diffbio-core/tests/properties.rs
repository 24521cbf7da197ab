//! Behavioural properties (those DiffBio's own tests assert, and more), and the fused ops
//! against a dense, literal transcription of SPEC.md on random inputs larger than the
//! reference file's.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use diffbio_core::*;
use diffbio_testing::{rel_err, scalar, test_device, Rng};

fn tensor(v: &[f64], shape: &[usize], dev: &Device) -> Tensor {
    Tensor::from_slice(v, shape, dev).unwrap()
}

// ---- a literal, dense transcription of SPEC.md §1 and §6 (test-only: it is O(n²) memory) ----

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn dense_batch_mixing(x: &[f64], d: usize, labels: &[usize], k: usize, b: usize, t: f64) -> f64 {
    let n = labels.len();
    let mut total = 0.0;
    for i in 0..n {
        let dist: Vec<f64> = (0..n)
            .map(|j| {
                let dij: f64 = (0..d).map(|c| (x[i * d + c] - x[j * d + c]).powi(2)).sum();
                if i == j {
                    dij + 1e10
                } else {
                    dij
                }
            })
            .collect();
        let mut sorted = dist.clone();
        sorted.sort_by(f64::total_cmp);
        let kappa = sorted[k - 1];
        let max_logit = dist
            .iter()
            .map(|v| -v / t)
            .fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = dist.iter().map(|v| (-v / t - max_logit).exp()).sum();
        let am: Vec<f64> = dist
            .iter()
            .map(|v| (-v / t - max_logit).exp() / z * sigmoid((kappa - v - 1e-10) / t))
            .collect();
        let norm: f64 = am.iter().sum::<f64>() + 1e-8;
        let mut p = vec![0.0; b];
        for j in 0..n {
            p[labels[j]] += am[j] / norm;
        }
        let h: f64 = -p.iter().map(|pc| pc * (pc + 1e-8).ln()).sum::<f64>();
        total += h / ((b as f64).ln() + 1e-8);
    }
    -total / n as f64
}

fn dense_auroc(s: &[f64], y: &[bool], t: f64) -> f64 {
    let (mut sum, mut pairs) = (0.0, 0usize);
    for (i, &yi) in y.iter().enumerate() {
        for (j, &yj) in y.iter().enumerate() {
            if yi && !yj {
                sum += sigmoid((s[i] - s[j]) / t);
                pairs += 1;
            }
        }
    }
    sum / pairs.max(1) as f64
}

/// The CPU path's value and gradient are the same bits on one thread as on three: every
/// row block owns its rows' sums and its gradient rows, whichever thread runs it. n spans
/// several row blocks and column tiles, and the last of each is partial.
#[test]
fn batch_mixing_is_bitwise_independent_of_the_thread_count() {
    use diffbio_testing::flat;
    let dev = &Device::Cpu;
    let mut rng = Rng::new(14);
    let (n, d, k, b) = (1300, 6, 15, 3);
    let x = rng.normals(n * d);
    let labels: Vec<u32> = (0..n).map(|_| rng.below(b) as u32).collect();
    let label_t = Tensor::from_vec(labels, n, dev).unwrap();
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: k,
        n_batches: b,
        temperature: 0.7,
    })
    .unwrap();
    for dtype in [DType::F32, DType::F64] {
        let v = Var::from_tensor(&tensor(&x, &[n, d], dev).to_dtype(dtype).unwrap()).unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let out = loss.forward(v.as_tensor(), &label_t).unwrap();
                let grad = flat(out.backward().unwrap().get(&v).unwrap());
                let bits = |v: &[f64]| v.iter().map(|g| g.to_bits()).collect::<Vec<_>>();
                (scalar(&out).to_bits(), bits(&grad))
            })
        };
        let one = run(1);
        assert!(one.1.iter().any(|&g| g != 0), "{dtype:?}: zero gradient");
        assert_eq!(one, run(3), "{dtype:?}: one thread vs three");
    }
}

fn batch_mixing_matches_dense_spec_on_larger_random_inputs(dev: &Device) {
    let mut rng = Rng::new(11);
    for &(n, d, k, b, t) in &[
        (500, 10, 30, 3, 1.0),
        (257, 32, 15, 4, 0.3),
        (129, 3, 128, 2, 5.0),
        (300, 6, 1, 7, 1.0),
    ] {
        let x = rng.normals(n * d);
        let labels: Vec<usize> = (0..n).map(|_| rng.below(b)).collect();
        let want = dense_batch_mixing(&x, d, &labels, k, b, t);
        let label_t =
            Tensor::from_vec(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), n, dev).unwrap();
        let loss = BatchMixingLoss::new(BatchMixingConfig {
            n_neighbors: k,
            n_batches: b,
            temperature: t,
        })
        .unwrap();
        let got64 = scalar(&loss.forward(&tensor(&x, &[n, d], dev), &label_t).unwrap());
        assert!(
            rel_err(got64, want, 1e-12) < 1e-9,
            "n={n}: {got64} vs {want}"
        );
        let x32 = tensor(&x, &[n, d], dev).to_dtype(DType::F32).unwrap();
        let got32 = scalar(&loss.forward(&x32, &label_t).unwrap());
        assert!(
            rel_err(got32, want, 1e-12) < 1e-4,
            "n={n} f32: {got32} vs {want}"
        );
    }
}

fn auroc_window_is_exact_against_all_pairs(dev: &Device) {
    let mut rng = Rng::new(12);
    for &(n, t, spread) in &[
        (3000, 0.01, 1.0),
        (2000, 1.0, 1.0),
        (1500, 0.05, 100.0),
        (999, 1e3, 1.0),
    ] {
        let s: Vec<f64> = rng.normals(n).iter().map(|v| v * spread).collect();
        let y: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.3).collect();
        let want = dense_auroc(&s, &y, t);
        let labels =
            Tensor::from_vec(y.iter().map(|&b| b as u32).collect::<Vec<_>>(), n, dev).unwrap();
        let got = scalar(
            &DifferentiableAuroc::new(t)
                .unwrap()
                .forward(&tensor(&s, &[n], dev), &labels)
                .unwrap(),
        );
        assert!(
            rel_err(got, want, 1e-12) < 1e-12,
            "n={n} T={t}: {got} vs {want}"
        );
    }
}

/// The published dense references (`forward_slow`, Candle ops and autograd) against the
/// literal transcriptions above (value) and against the fused ops (value and gradient), in
/// f64 and f32, on random inputs of several shapes.
#[test]
fn forward_slow_matches_the_spec_and_the_fused_ops() {
    use diffbio_testing::{flat, norm_rel_err};
    let dev = &Device::Cpu;
    let mut rng = Rng::new(13);
    // (value, gradient) of `f` at `x` converted to `dtype`.
    let value_and_grad = |x: &Tensor, dtype: DType, f: &dyn Fn(&Tensor) -> Tensor| {
        let v = Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap();
        let out = f(v.as_tensor());
        let grad = flat(out.backward().unwrap().get(&v).unwrap());
        (scalar(&out), grad)
    };
    // `many` cells span four of the CPU path's blocks (tiles read both ways). In the last
    // case the cells of the last batch are `far` apart, their nearest neighbours too far
    // for one exponential per pair: the tile of the first two blocks, without them, shares
    // its exponentials, the tiles with them take one per end (checked when written, in f32
    // and f64).
    let many = 3 * diffbio_pairwise::BLOCK + 88;
    for &(n, d, k, b, t, far) in &[
        (60, 4, 9, 3, 1.0, 1.0),
        (33, 7, 32, 2, 0.3, 1.0),
        (80, 2, 1, 5, 2.0, 1.0),
        (many, 5, 12, 3, 0.7, 1.0),
        (many, 5, 12, 3, 0.7, 30.0),
    ] {
        let labels: Vec<usize> = (0..n).map(|_| rng.below(b)).collect();
        let x: Vec<f64> = rng
            .normals(n * d)
            .iter()
            .enumerate()
            .map(|(i, v)| if labels[i / d] == b - 1 { v * far } else { *v })
            .collect();
        let label_t = Tensor::from_vec(labels.iter().map(|&l| l as u32).collect(), n, dev).unwrap();
        let loss = BatchMixingLoss::new(BatchMixingConfig {
            n_neighbors: k,
            n_batches: b,
            temperature: t,
        })
        .unwrap();
        let want = dense_batch_mixing(&x, d, &labels, k, b, t);
        let xt = tensor(&x, &[n, d], dev);
        for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-4)] {
            let slow = value_and_grad(&xt, dtype, &|x| loss.forward_slow(x, &label_t).unwrap());
            let fused = value_and_grad(&xt, dtype, &|x| loss.forward(x, &label_t).unwrap());
            assert!(
                rel_err(slow.0, want, 1e-12) < tol,
                "n={n} {dtype:?}: {} vs {want}",
                slow.0
            );
            assert!(
                rel_err(fused.0, slow.0, 1e-12) < tol,
                "n={n} {dtype:?} value"
            );
            let e = norm_rel_err(&fused.1, &slow.1, 1e-12);
            assert!(e < tol, "n={n} {dtype:?}: gradient rel err {e:.1e}");
        }
    }
    for &(n, t) in &[(70, 1.0), (41, 0.05)] {
        let s = rng.normals(n);
        let y: Vec<bool> = (0..n).map(|i| i % 3 == 0 || rng.uniform() < 0.2).collect();
        let labels = Tensor::from_vec(y.iter().map(|&p| p as u8).collect(), n, dev).unwrap();
        let auroc = DifferentiableAuroc::new(t).unwrap();
        let st = tensor(&s, &[n], dev);
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let slow = value_and_grad(&st, dtype, &|s| auroc.forward_slow(s, &labels).unwrap());
            let fused = value_and_grad(&st, dtype, &|s| auroc.forward(s, &labels).unwrap());
            assert!(
                rel_err(slow.0, dense_auroc(&s, &y, t), 1e-12) < tol,
                "n={n}"
            );
            assert!(
                rel_err(fused.0, slow.0, 1e-12) < tol,
                "n={n} {dtype:?} value"
            );
            let e = norm_rel_err(&fused.1, &slow.1, 1e-12);
            assert!(e < tol, "n={n} {dtype:?}: gradient rel err {e:.1e}");
        }
    }
    // a learned temperature gets the same gradient through both
    let s = Var::from_tensor(&tensor(&rng.normals(30), &[30], dev)).unwrap();
    let y = Tensor::from_vec((0..30u8).map(|i| u8::from(i % 2 == 0)).collect(), 30, dev).unwrap();
    let grads_of_t = |slow: bool| {
        let t = Var::new(0.8f64, dev).unwrap();
        let auroc = DifferentiableAuroc::with_temperature(t.as_tensor().clone()).unwrap();
        let out = match slow {
            true => auroc.forward_slow(s.as_tensor(), &y),
            false => auroc.forward(s.as_tensor(), &y),
        };
        scalar(out.unwrap().backward().unwrap().get(&t).unwrap())
    };
    assert!(rel_err(grads_of_t(false), grads_of_t(true), 1e-12) < 1e-10);
}

// ---- properties ----

fn auroc_perfect_separation_at_low_temperature(dev: &Device) {
    let s = Tensor::new(&[0.9f32, 0.8, 0.7, 0.3, 0.2, 0.1], dev).unwrap();
    let y = Tensor::new(&[1f32, 1., 1., 0., 0., 0.], dev).unwrap();
    let a = DifferentiableAuroc::new(0.01).unwrap();
    assert!(scalar(&a.forward(&s, &y).unwrap()) > 0.99);
    let reversed = a.forward(&s.neg().unwrap(), &y).unwrap();
    assert!(scalar(&reversed) < 0.01);
}

fn auroc_is_half_for_identical_scores_and_higher_temperature_flattens(dev: &Device) {
    let y = Tensor::new(&[1u8, 0, 1, 0], dev).unwrap();
    let equal = Tensor::new(&[0.3f64, 0.3, 0.3, 0.3], dev).unwrap();
    assert_eq!(
        scalar(
            &DifferentiableAuroc::new(1.0)
                .unwrap()
                .forward(&equal, &y)
                .unwrap()
        ),
        0.5
    );
    let s = Tensor::new(&[0.9f64, 0.1, 0.8, 0.2], dev).unwrap();
    let sharp = scalar(
        &DifferentiableAuroc::new(0.1)
            .unwrap()
            .forward(&s, &y)
            .unwrap(),
    );
    let soft = scalar(
        &DifferentiableAuroc::new(5.0)
            .unwrap()
            .forward(&s, &y)
            .unwrap(),
    );
    assert!(sharp > soft && soft > 0.5);
}

fn auroc_degenerate_classes_give_zero_value_and_gradient(dev: &Device) {
    let s = Var::new(&[0.1f32, 0.5, 0.9], dev).unwrap();
    for y in [[1u8, 1, 1], [0, 0, 0]] {
        let y = Tensor::new(&y, dev).unwrap();
        let v = DifferentiableAuroc::default()
            .forward(s.as_tensor(), &y)
            .unwrap();
        assert_eq!(scalar(&v), 0.0);
        let g = v.backward().unwrap();
        assert_eq!(
            g.get(&s)
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }
}

fn learnable_temperature_from_a_var_map_trains(dev: &Device) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
    let auroc = DifferentiableAuroc::from_var_builder(vb.pp("head"), 2.0).unwrap();
    let s = Tensor::new(&[2.0f32, 1.5, -1.0, -2.0, 0.5, -0.4], dev).unwrap();
    let y = Tensor::new(&[1u32, 1, 0, 0, 1, 0], dev).unwrap();
    let mut opt = candle_nn::SGD::new(varmap.all_vars(), 0.5).unwrap();
    let before = scalar(&auroc.forward(&s, &y).unwrap());
    for _ in 0..5 {
        let loss = (auroc.forward(&s, &y).unwrap().neg().unwrap() + 1.0).unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let after = scalar(&auroc.forward(&s, &y).unwrap());
    let t = varmap.data().lock().unwrap()["head.temperature"]
        .as_tensor()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        t < 2.0,
        "perfectly separated scores: a sharper temperature raises the surrogate (T = {t})"
    );
    assert!(after > before, "{after} <= {before}");
}

fn shannon_and_simpson_on_uniform_and_one_hot(dev: &Device) {
    for k in [2usize, 5, 16] {
        let uniform = Tensor::full(1.0 / k as f64, (7, k), dev).unwrap();
        let h = scalar(&ShannonDiversityLoss.forward(&uniform).unwrap());
        assert!(
            (h - (k as f64).ln()).abs() < 1e-12,
            "Shannon uniform = ln K"
        );
        let s = scalar(&SimpsonDiversityLoss.forward(&uniform).unwrap());
        assert!((s - 1.0 / k as f64).abs() < 1e-12, "Simpson uniform = 1/K");
        let one_hot = Tensor::eye(k, DType::F64, dev).unwrap();
        assert_eq!(
            scalar(&ShannonDiversityLoss.forward(&one_hot).unwrap()),
            0.0
        );
        assert_eq!(
            scalar(&SimpsonDiversityLoss.forward(&one_hot).unwrap()),
            1.0
        );
    }
}

fn tight_clusters_score_lower_than_loose_ones(dev: &Device) {
    let mut rng = Rng::new(14);
    let loss = ClusteringCompactnessLoss::new(ClusteringCompactnessConfig::default()).unwrap();
    let centres = [[-5.0, 0.0], [5.0, 0.0]];
    let score = |spread: f64, rng: &mut Rng| {
        let mut x = vec![];
        let mut a = vec![];
        for i in 0..60 {
            let c = i % 2;
            x.extend([
                centres[c][0] + spread * rng.normal(),
                centres[c][1] + spread * rng.normal(),
            ]);
            a.extend(if c == 0 { [1.0, 0.0] } else { [0.0, 1.0] });
        }
        scalar(
            &loss
                .forward(&tensor(&x, &[60, 2], dev), &tensor(&a, &[60, 2], dev), None)
                .unwrap(),
        )
    };
    let tight = score(0.1, &mut rng);
    let loose = score(2.0, &mut rng);
    assert!(tight < loose, "{tight} !< {loose}");
    // Centroids closer than min_separation are penalised.
    let x = tensor(&[0.0, 0.0, 0.1, 0.0], &[2, 2], dev);
    let a = tensor(&[1.0, 0.0, 0.0, 1.0], &[2, 2], dev);
    let close = scalar(&loss.forward(&x, &a, None).unwrap());
    let far = scalar(
        &loss
            .forward(&(x.clone() * 20.0).unwrap(), &a, None)
            .unwrap(),
    );
    assert!(
        close > far,
        "close centroids {close} should cost more than far ones {far}"
    );
}

fn consistent_velocity_scores_lower_than_opposite(dev: &Device) {
    let mut rng = Rng::new(15);
    let (n, g) = (20, 8);
    let e = tensor(&rng.normals(n * g), &[n, g], dev);
    let v = tensor(&rng.normals(n * g), &[n, g], dev);
    let loss = VelocityConsistencyLoss::new(VelocityConsistencyConfig::default()).unwrap();
    let consistent = (&e + (&v * 0.1).unwrap()).unwrap();
    let opposite = (&e - (&v * 0.1).unwrap()).unwrap();
    let good = scalar(&loss.forward(&e, &v, &consistent).unwrap());
    let bad = scalar(&loss.forward(&e, &v, &opposite).unwrap());
    assert!(
        good < 1e-6 && (bad - 2.0).abs() < 1e-6,
        "consistent {good}, opposite {bad}"
    );
}

/// Two batches, either interleaved in one blob or as two far-apart blobs.
fn two_batches(mixed: bool, rng: &mut Rng, dev: &Device) -> (Tensor, Tensor) {
    let n = 80;
    let mut x = vec![];
    for i in 0..n {
        let offset = if mixed || i % 2 == 0 { 0.0 } else { 20.0 };
        x.extend([rng.normal() + offset, rng.normal()]);
    }
    let labels = Tensor::from_vec((0..n as u32).map(|i| i % 2).collect(), n, dev).unwrap();
    (tensor(&x, &[n, 2], dev), labels)
}

fn mixed_batches_score_lower_than_separated_and_stay_in_range(dev: &Device) {
    let mut rng = Rng::new(16);
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 10,
        n_batches: 2,
        temperature: 1.0,
    })
    .unwrap();
    let (xm, lm) = two_batches(true, &mut rng, dev);
    let (xs, ls) = two_batches(false, &mut rng, dev);
    let mixed = scalar(&loss.forward(&xm, &lm).unwrap());
    let separated = scalar(&loss.forward(&xs, &ls).unwrap());
    assert!((-1.0..=0.0).contains(&mixed) && (-1.0..=0.0).contains(&separated));
    assert!(
        mixed < -0.8 && separated > -0.05,
        "mixed {mixed}, separated {separated}"
    );
}

fn gradient_descent_on_batch_mixing_mixes_batches(dev: &Device) {
    let mut rng = Rng::new(17);
    let n = 60;
    // Two batches offset by 3 along x: partly separated.
    let x: Vec<f64> = (0..n)
        .flat_map(|i| [rng.normal() + 3.0 * (i % 2) as f64, rng.normal()])
        .collect();
    let labels = Tensor::from_vec((0..n as u8).map(|i| i % 2).collect(), n, dev).unwrap();
    let x = Var::from_tensor(&tensor(&x, &[n, 2], dev).to_dtype(DType::F32).unwrap()).unwrap();
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 8,
        n_batches: 2,
        temperature: 1.0,
    })
    .unwrap();
    let mut opt = candle_nn::SGD::new(vec![x.clone()], 20.0).unwrap();
    let first = scalar(&loss.forward(x.as_tensor(), &labels).unwrap());
    for _ in 0..30 {
        opt.backward_step(&loss.forward(x.as_tensor(), &labels).unwrap())
            .unwrap();
    }
    let last = scalar(&loss.forward(x.as_tensor(), &labels).unwrap());
    assert!(last < first - 0.05, "loss did not fall: {first} -> {last}");
}

fn half_precision_inputs_are_accepted_and_close_to_f32(dev: &Device) {
    let mut rng = Rng::new(18);
    let (n, d) = (50, 4);
    let x32 = tensor(&rng.normals(n * d), &[n, d], dev)
        .to_dtype(DType::F32)
        .unwrap();
    let a32 = tensor(&rng.simplex_rows(n, 3, 1.0), &[n, 3], dev)
        .to_dtype(DType::F32)
        .unwrap();
    let labels = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect(), n, dev).unwrap();
    let mixing = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 5,
        ..Default::default()
    })
    .unwrap();
    for dtype in [DType::F16, DType::BF16] {
        let xh = Var::from_tensor(&x32.to_dtype(dtype).unwrap()).unwrap();
        let ah = a32.to_dtype(dtype).unwrap();
        let pairs: [(Tensor, Tensor); 4] = [
            (
                mixing.forward(xh.as_tensor(), &labels).unwrap(),
                mixing.forward(&x32, &labels).unwrap(),
            ),
            (
                ShannonDiversityLoss.forward(&ah).unwrap(),
                ShannonDiversityLoss.forward(&a32).unwrap(),
            ),
            (
                SimpsonDiversityLoss.forward(&ah).unwrap(),
                SimpsonDiversityLoss.forward(&a32).unwrap(),
            ),
            (
                DifferentiableAuroc::default()
                    .forward(
                        &xh.as_tensor().narrow(1, 0, 1).unwrap().squeeze(1).unwrap(),
                        &labels.ge(1u32).unwrap(),
                    )
                    .unwrap(),
                DifferentiableAuroc::default()
                    .forward(
                        &x32.narrow(1, 0, 1).unwrap().squeeze(1).unwrap(),
                        &labels.ge(1u32).unwrap(),
                    )
                    .unwrap(),
            ),
        ];
        for (half, full) in pairs {
            assert_eq!(half.dtype(), dtype, "a loss returns the dtype of its input");
            assert!(
                rel_err(scalar(&half), scalar(&full), 1e-3) < 1e-2,
                "{dtype:?}: {} vs {}",
                scalar(&half),
                scalar(&full)
            );
        }
        let grads = mixing
            .forward(xh.as_tensor(), &labels)
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(grads.get(&xh).unwrap().dtype(), dtype);
    }
}

fn non_contiguous_inputs_give_the_same_answer(dev: &Device) {
    let mut rng = Rng::new(19);
    let xt = tensor(&rng.normals(30 * 4), &[4, 30], dev);
    let x = xt.t().unwrap(); // [30, 4], strided
    assert!(!x.is_contiguous());
    let labels = Tensor::from_vec((0..30u32).map(|i| i % 3).collect(), 30, dev).unwrap();
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 5,
        ..Default::default()
    })
    .unwrap();
    let a = scalar(&loss.forward(&x, &labels).unwrap());
    let b = scalar(&loss.forward(&x.contiguous().unwrap(), &labels).unwrap());
    assert_eq!(a, b);
}

/// Far from the origin (every coordinate offset by 300, |x|² ≈ 4·10⁵), f32 inputs give the
/// f64 loss and gradient to f32 accuracy: distances are computed from points centred on
/// their mean, not as |x_i|² + |x_j|² − 2 x_i·x_j of the raw rows, which would lose
/// ε·|x|² ≈ 0.05 to rounding, as much as the near-tie gaps between neighbours.
fn batch_mixing_far_from_the_origin_keeps_f32_accuracy(dev: &Device) {
    let mut rng = Rng::new(12);
    let (n, d, b) = (200, 4, 3);
    let x: Vec<f64> = rng.normals(n * d).iter().map(|v| 300.0 + v).collect();
    // The f32-rounded inputs, so that both runs see the same points.
    let x: Vec<f64> = x.iter().map(|&v| v as f32 as f64).collect();
    let labels = Tensor::from_vec((0..n as u32).map(|i| i % b as u32).collect(), n, dev).unwrap();
    let loss = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 10,
        n_batches: b,
        temperature: 0.5,
    })
    .unwrap();
    let value_and_grad = |dtype: DType| {
        let v = Var::from_tensor(&tensor(&x, &[n, d], dev).to_dtype(dtype).unwrap()).unwrap();
        let l = loss.forward(v.as_tensor(), &labels).unwrap();
        let g = l.backward().unwrap();
        (scalar(&l), diffbio_testing::flat(g.get(&v).unwrap()))
    };
    let (want, want_grad) = value_and_grad(DType::F64);
    let (got, got_grad) = value_and_grad(DType::F32);
    assert!(rel_err(got, want, 1e-12) < 1e-5, "{got} vs {want}");
    let ge = diffbio_testing::norm_rel_err(&got_grad, &want_grad, 1e-12);
    assert!(ge < 1e-3, "gradient rel err {ge:.2e}");
}

test_device!(batch_mixing_far_from_the_origin_keeps_f32_accuracy);
test_device!(batch_mixing_matches_dense_spec_on_larger_random_inputs);
test_device!(auroc_window_is_exact_against_all_pairs);
test_device!(auroc_perfect_separation_at_low_temperature);
test_device!(auroc_is_half_for_identical_scores_and_higher_temperature_flattens);
test_device!(auroc_degenerate_classes_give_zero_value_and_gradient);
test_device!(learnable_temperature_from_a_var_map_trains);
test_device!(shannon_and_simpson_on_uniform_and_one_hot);
test_device!(tight_clusters_score_lower_than_loose_ones);
test_device!(consistent_velocity_scores_lower_than_opposite);
test_device!(mixed_batches_score_lower_than_separated_and_stay_in_range);
test_device!(gradient_descent_on_batch_mixing_mixes_batches);
test_device!(half_precision_inputs_are_accepted_and_close_to_f32);
test_device!(non_contiguous_inputs_give_the_same_answer);

/// The free functions of `diffbio_core::loss` are their structs' `forward`, parameters
/// checked the same way.
#[test]
fn free_functions_equal_their_structs() {
    let dev = &Device::Cpu;
    let mut rng = Rng::new(14);
    let x = tensor(&rng.normals(40 * 3), &[40, 3], dev);
    let batches = Tensor::from_vec((0..40u32).map(|i| i % 3).collect(), 40, dev).unwrap();
    let a = tensor(&rng.simplex_rows(40, 4, 1.0), &[40, 4], dev);
    let v = tensor(&rng.normals(40 * 3), &[40, 3], dev);
    let future = tensor(&rng.normals(40 * 3), &[40, 3], dev);
    let s = tensor(&rng.normals(40), &[40], dev);
    let y = Tensor::from_vec((0..40u8).map(|i| u8::from(i % 4 == 0)).collect(), 40, dev).unwrap();
    let mixing = BatchMixingConfig::default();
    let pairs = [
        (
            loss::batch_mixing(&x, &batches, mixing),
            BatchMixingLoss::new(mixing).unwrap().forward(&x, &batches),
        ),
        (
            loss::differentiable_auroc(&s, &y, 0.5),
            DifferentiableAuroc::new(0.5).unwrap().forward(&s, &y),
        ),
        (
            loss::clustering_compactness(&x, &a, None, Default::default()),
            ClusteringCompactnessLoss::new(Default::default())
                .unwrap()
                .forward(&x, &a, None),
        ),
        (
            loss::velocity_consistency(&x, &v, &future, Default::default()),
            VelocityConsistencyLoss::new(Default::default())
                .unwrap()
                .forward(&x, &v, &future),
        ),
        (
            loss::shannon_diversity(&a),
            ShannonDiversityLoss.forward(&a),
        ),
        (
            loss::simpson_diversity(&a),
            SimpsonDiversityLoss.forward(&a),
        ),
    ];
    for (i, (free, built)) in pairs.into_iter().enumerate() {
        assert_eq!(scalar(&free.unwrap()), scalar(&built.unwrap()), "loss {i}");
    }
    let bad = loss::differentiable_auroc(&s, &y, -1.0);
    assert!(
        matches!(bad, Err(Error::InvalidParameter { .. })),
        "{bad:?}"
    );
}
