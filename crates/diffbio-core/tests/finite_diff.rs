//! Autograd gradients of every loss against central finite differences in f64, on random
//! inputs of several shapes (never all-zero).

use candle_core::{Device, Tensor, Var};
use diffbio_core::*;
use diffbio_testing::{finite_diff, flat, norm_rel_err, scalar, test_device, Rng};

const STEP: f64 = 1e-6;
const TOL: f64 = 1e-6;

/// Checks `∂f/∂(input at position `which`)` for a loss of several float inputs.
fn check_inputs(
    name: &str,
    dev: &Device,
    inputs: &[(Vec<f64>, Vec<usize>)],
    loss: impl Fn(&[Tensor]) -> Tensor,
) {
    let vars: Vec<_> = inputs
        .iter()
        .map(|(v, s)| Var::from_tensor(&Tensor::from_slice(v, s.as_slice(), dev).unwrap()).unwrap())
        .collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = loss(&tensors);
    assert!(scalar(&out).is_finite(), "{name}: non-finite value");
    let grads = out.backward().unwrap();
    for (which, (values, shape)) in inputs.iter().enumerate() {
        let auto = grads
            .get(&vars[which])
            .map(flat)
            .unwrap_or_else(|| vec![0.0; values.len()]);
        let numeric = finite_diff(
            |perturbed| {
                let mut ts = tensors.clone();
                ts[which] = Tensor::from_slice(perturbed, shape.as_slice(), dev).unwrap();
                scalar(&loss(&ts))
            },
            values,
            STEP,
        );
        let err = norm_rel_err(&auto, &numeric, 1e-8);
        assert!(
            err < TOL,
            "{name}: input {which} gradient off by {err:.2e}\nauto {auto:?}\nfd   {numeric:?}"
        );
    }
}

fn batch_mixing_matches_finite_differences(dev: &Device) {
    let mut rng = Rng::new(1);
    // (n, d, k, B, T): includes k = 1 and k = n − 1, several temperatures.
    for &(n, d, k, b, t) in &[
        (12, 3, 3, 2, 1.0),
        (40, 5, 7, 3, 0.5),
        (33, 8, 1, 4, 2.0),
        (20, 2, 19, 3, 1.0),
        (70, 16, 15, 5, 4.0),
    ] {
        let x = rng.normals(n * d);
        let labels: Vec<u32> = (0..n).map(|_| rng.below(b) as u32).collect();
        let labels = Tensor::from_vec(labels, n, dev).unwrap();
        let loss = BatchMixingLoss::new(BatchMixingConfig {
            n_neighbors: k,
            n_batches: b,
            temperature: t,
        })
        .unwrap();
        check_inputs(
            &format!("batch_mixing n={n} d={d} k={k} B={b} T={t}"),
            dev,
            &[(x, vec![n, d])],
            |ts| loss.forward(&ts[0], &labels).unwrap(),
        );
    }
}

fn auroc_surrogate_matches_finite_differences(dev: &Device) {
    let mut rng = Rng::new(2);
    for &(n, t) in &[(10, 0.5), (57, 1.0), (200, 0.1), (31, 20.0)] {
        let scores = rng.normals(n);
        let labels: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
        let labels = Tensor::from_vec(labels, n, dev).unwrap();
        check_inputs(
            &format!("auroc n={n} T={t}"),
            dev,
            &[(scores, vec![n]), (vec![t], vec![])],
            |ts| {
                DifferentiableAuroc::with_temperature(ts[1].clone())
                    .unwrap()
                    .forward(&ts[0], &labels)
                    .unwrap()
            },
        );
    }
}

fn clustering_compactness_matches_finite_differences(dev: &Device) {
    let mut rng = Rng::new(3);
    for &(n, d, k, w, s, given) in &[
        (6, 2, 2, 1.0, 1.0, false),
        (25, 4, 5, 0.5, 3.0, false),
        (40, 8, 3, 2.0, 2.0, true),
        (15, 3, 1, 1.0, 1.0, false),
    ] {
        let x: Vec<f64> = rng.normals(n * d).iter().map(|v| v * 2.0).collect();
        let a = rng.simplex_rows(n, k, 1.5);
        let c = rng.normals(k * d);
        let loss = ClusteringCompactnessLoss::new(ClusteringCompactnessConfig {
            separation_weight: w,
            min_separation: s,
        })
        .unwrap();
        let mut inputs = vec![(x, vec![n, d]), (a, vec![n, k])];
        if given {
            inputs.push((c, vec![k, d]));
        }
        check_inputs(
            &format!("clustering n={n} d={d} K={k} centroids={given}"),
            dev,
            &inputs,
            |ts| loss.forward(&ts[0], &ts[1], ts.get(2)).unwrap(),
        );
    }
}

fn velocity_consistency_matches_finite_differences(dev: &Device) {
    let mut rng = Rng::new(4);
    for &(n, g, dt, cw, mw) in &[
        (1, 2, 0.1, 1.0, 1.0),
        (9, 5, 0.05, 2.0, 0.5),
        (30, 17, 1.0, 0.5, 2.0),
    ] {
        let inputs: Vec<_> = (0..3).map(|_| (rng.normals(n * g), vec![n, g])).collect();
        let loss = VelocityConsistencyLoss::new(VelocityConsistencyConfig {
            dt,
            cosine_weight: cw,
            magnitude_weight: mw,
        })
        .unwrap();
        check_inputs(&format!("velocity n={n} g={g}"), dev, &inputs, |ts| {
            loss.forward(&ts[0], &ts[1], &ts[2]).unwrap()
        });
    }
}

fn diversity_losses_match_finite_differences(dev: &Device) {
    let mut rng = Rng::new(5);
    for &(n, k, sharpness) in &[(1, 2, 1.0), (12, 4, 2.0), (50, 9, 0.5)] {
        let a = rng.simplex_rows(n, k, sharpness);
        check_inputs(
            &format!("shannon n={n} K={k}"),
            dev,
            &[(a.clone(), vec![n, k])],
            |ts| ShannonDiversityLoss.forward(&ts[0]).unwrap(),
        );
        check_inputs(
            &format!("simpson n={n} K={k}"),
            dev,
            &[(a, vec![n, k])],
            |ts| SimpsonDiversityLoss.forward(&ts[0]).unwrap(),
        );
    }
}

test_device!(
    batch_mixing_matches_finite_differences,
    not_emulated = "2,000 forward passes take 2 minutes there; cuda_parity checks the emulated gradient against the CPU one"
);
test_device!(auroc_surrogate_matches_finite_differences);
test_device!(clustering_compactness_matches_finite_differences);
test_device!(velocity_consistency_matches_finite_differences);
test_device!(diversity_losses_match_finite_differences);
