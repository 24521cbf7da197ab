//! Exact metrics against scikit-learn's own numbers and against their definitions.

mod common;

use common::Rng;
use diffbio::metrics::{self, average_precision, roc_auc};
use serde_json::Value;

#[test]
fn average_precision_equals_scikit_learn() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/average_precision_sklearn.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 16);
    for case in cases {
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let labels: Vec<bool> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64() == Some(1))
            .collect();
        let want = case["expected"].as_f64().unwrap();
        let got = average_precision(&scores, &labels).unwrap();
        assert!(
            (got - want).abs() < 1e-12,
            "{}: {got} vs scikit-learn {want}",
            case["id"]
        );
    }
}

/// AP from its definition: precision at each positive's threshold (ties included), averaged.
fn brute_force_ap(s: &[f64], y: &[bool]) -> f64 {
    let n_pos = y.iter().filter(|&&b| b).count() as f64;
    let mut ap = 0.0;
    let mut thresholds: Vec<f64> = s
        .iter()
        .zip(y)
        .filter(|(_, &b)| b)
        .map(|(&v, _)| v)
        .collect();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    thresholds.dedup();
    let mut prev_recall = 0.0;
    for t in thresholds {
        let tp = s.iter().zip(y).filter(|(&v, &b)| b && v >= t).count() as f64;
        let fp = s.iter().zip(y).filter(|(&v, &b)| !b && v >= t).count() as f64;
        ap += (tp / n_pos - prev_recall) * tp / (tp + fp);
        prev_recall = tp / n_pos;
    }
    ap
}

#[test]
fn average_precision_matches_its_definition_with_ties_and_infinities() {
    let mut rng = Rng::new(30);
    for n in [1usize, 3, 50, 400] {
        let mut s: Vec<f64> = (0..n).map(|_| (rng.below(9) as f64 - 4.0) * 0.5).collect();
        s[0] = f64::INFINITY;
        if n > 2 {
            s[1] = f64::NEG_INFINITY;
        }
        let mut y: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.4).collect();
        y[n - 1] = true;
        let got = average_precision(&s, &y).unwrap();
        let want = brute_force_ap(&s, &y);
        assert!((got - want).abs() < 1e-12, "n={n}: {got} vs {want}");
        let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        assert!((average_precision(&s32, &y).unwrap() - want).abs() < 1e-12);
    }
}

#[test]
fn perfect_and_reversed_rankings() {
    let s = [0.9f32, 0.8, 0.7, 0.2, 0.1];
    let y = [true, true, true, false, false];
    assert_eq!(average_precision(&s, &y).unwrap(), 1.0);
    assert_eq!(roc_auc(&s, &y).unwrap(), 1.0);
    let reversed: Vec<bool> = y.iter().map(|b| !b).collect();
    assert_eq!(roc_auc(&s, &reversed).unwrap(), 0.0);
    // The two positives ranked last among five: AP = (1/2)(1/4) + (1/2)(2/5).
    let ap = average_precision(&s, &reversed).unwrap();
    assert!((ap - (0.125 + 0.2)).abs() < 1e-15, "{ap}");
}

#[test]
fn average_precision_errors() {
    assert!(matches!(
        average_precision(&[0.1f64, 0.2], &[true]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        average_precision::<f64>(&[], &[]),
        Err(metrics::Error::Empty { .. })
    ));
    assert!(matches!(
        average_precision(&[0.1f32, 0.2], &[false, false]),
        Err(metrics::Error::SingleClass { .. })
    ));
    assert!(matches!(
        average_precision(&[f64::NAN, 0.2], &[true, false]),
        Err(metrics::Error::NaN { index: 0, .. })
    ));
    assert_eq!(
        average_precision(&[0.1f32, 0.2], &[true, true]),
        Ok(1.0),
        "no negatives: every threshold is exact"
    );
}

// ---- neighbourhood metrics ----

use diffbio::metrics::{batch_entropy, knn, knn_accuracy};

#[test]
fn knn_is_exact_with_ties_broken_by_index() {
    let mut rng = Rng::new(31);
    for (n, d, k) in [(2usize, 1usize, 1usize), (40, 3, 5), (200, 2, 199)] {
        // Integer coordinates: many exactly tied distances.
        let x: Vec<f32> = (0..n * d).map(|_| rng.below(4) as f32).collect();
        let g = knn(&x, d, k).unwrap();
        for i in 0..n {
            let mut all: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (
                        (0..d)
                            .map(|c| (x[i * d + c] - x[j * d + c]).powi(2) as f64)
                            .sum::<f64>(),
                        j,
                    )
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<usize> = all[..k].iter().map(|p| p.1).collect();
            assert_eq!(g.neighbors(i), want.as_slice(), "row {i}");
            assert!(g
                .distances(i)
                .iter()
                .zip(&all[..k])
                .all(|(a, b)| (a - b.0.sqrt()).abs() < 1e-12));
        }
        assert_eq!(g.truncate(1).unwrap().neighbors(0), &g.neighbors(0)[..1]);
    }
}

#[test]
fn batch_entropy_and_accuracy_on_mixed_and_separated_data() {
    let mut rng = Rng::new(32);
    let n = 300;
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let embed = |offset: f64, rng: &mut Rng| -> Vec<f64> {
        (0..n)
            .flat_map(|i| [rng.normal() + offset * (i % 3) as f64, rng.normal()])
            .collect()
    };
    let mixed = knn(&embed(0.0, &mut rng), 2, 30).unwrap();
    let separated = knn(&embed(50.0, &mut rng), 2, 30).unwrap();
    let h_mixed = batch_entropy(&mixed, &labels).unwrap();
    let h_separated = batch_entropy(&separated, &labels).unwrap();
    assert!(
        h_mixed.mean > 0.9 && h_separated.mean == 0.0,
        "{} {}",
        h_mixed.mean,
        h_separated.mean
    );
    assert_eq!(h_mixed.per_cell.len(), n);
    assert_eq!(knn_accuracy(&separated, &labels).unwrap().mean, 1.0);
    assert!(knn_accuracy(&mixed, &labels).unwrap().mean < 0.6);
}

#[test]
fn neighbourhood_metric_errors() {
    let x = [0.0f32, 1.0, 2.0, 3.0];
    assert!(matches!(knn(&x, 3, 1), Err(metrics::Error::Shape { .. })));
    assert!(matches!(knn(&x, 0, 1), Err(metrics::Error::Shape { .. })));
    assert!(matches!(
        knn::<f32>(&[], 2, 1),
        Err(metrics::Error::Shape { .. })
    ));
    assert!(matches!(
        knn(&x, 1, 4),
        Err(metrics::Error::InvalidK { k: 4, n: 4 })
    ));
    assert!(matches!(
        knn(&x, 1, 0),
        Err(metrics::Error::InvalidK { .. })
    ));
    assert!(matches!(
        knn(&[0.0f32, f32::NAN, 1.0], 1, 1),
        Err(metrics::Error::NaN { index: 1, .. })
    ));
    let g = knn(&x, 1, 2).unwrap();
    assert!(matches!(
        batch_entropy(&g, &[0, 0, 0, 0]),
        Err(metrics::Error::TooFewLabels { .. })
    ));
    assert!(matches!(
        batch_entropy(&g, &[0, 1]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        knn_accuracy(&g, &[0, 1, 1]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        g.truncate(3),
        Err(metrics::Error::InvalidK { .. })
    ));
}

/// The real PBMC data of `../shared/data/pbmc-3chem` (not copied into the repository: its
/// licence is GPL-3). Checked against the reference metrics shipped in its labels.json.
#[test]
fn pbmc_reference_metrics_when_the_shared_data_is_present() {
    use candle_core::{DType, Tensor};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pbmc-3chem");
    if !dir.join("labels.json").exists() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {} is absent", dir.display());
        return;
    }
    let read = |name: &str| Tensor::read_npy(dir.join(name)).unwrap();
    let batch: Vec<u32> = read("batch.npy")
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec1()
        .unwrap();
    let celltype: Vec<u32> = read("celltype.npy")
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec1()
        .unwrap();
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap();
    for name in ["X_pca", "X_pca_harmony"] {
        let x = read(&format!("{name}.npy"));
        let d = x.dim(1).unwrap();
        let x: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let reference = &info["info"]["reference_metrics"][name];
        let g30 = knn(&x, d, 30).unwrap();
        let entropy = batch_entropy(&g30, &batch).unwrap().mean;
        let accuracy = knn_accuracy(&g30.truncate(15).unwrap(), &celltype)
            .unwrap()
            .mean;
        let want_entropy = reference["batch_entropy_mean"].as_f64().unwrap();
        let want_accuracy = reference["celltype_knn15_accuracy"].as_f64().unwrap();
        assert!(
            (entropy - want_entropy).abs() < 1e-9,
            "{name}: batch entropy {entropy} vs {want_entropy}"
        );
        assert!(
            (accuracy - want_accuracy).abs() < 1e-12,
            "{name}: 15-NN accuracy {accuracy} vs {want_accuracy}"
        );
    }
}
