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
