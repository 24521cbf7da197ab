//! The `exact_auroc` cases of the float64 reference file the losses share
//! (`crates/diffbio-core/tests/data/golden-public.json`): the tie-aware value, in f64 and
//! f32 scores.

use diffbio_metrics::roc_auc;
use serde_json::Value;

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a flat array")
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn exact_auroc_golden_cases() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../diffbio-core/tests/data/golden-public.json"
    );
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    for case in cases.iter().filter(|c| c["fn"] == "exact_auroc") {
        let id = case["id"].as_str().unwrap();
        let scores = numbers(&case["inputs"]["predictions"]);
        let labels: Vec<bool> = numbers(&case["inputs"]["labels"])
            .iter()
            .map(|&y| y == 1.0)
            .collect();
        let f64_value = roc_auc(&scores, &labels);
        let scores32: Vec<f32> = scores.iter().map(|&s| s as f32).collect();
        let f32_value = roc_auc(&scores32, &labels);
        if case.get("expect").and_then(Value::as_str) == Some("error") {
            assert!(
                f64_value.is_err() && f32_value.is_err(),
                "{id}: expected an error"
            );
            continue;
        }
        // `value` is calibrax's order-dependent answer; `expected` the tie-aware one.
        let want = case["expected"]
            .as_f64()
            .or_else(|| case["value_midrank"].as_f64())
            .unwrap();
        for (precision, got) in [("f64", f64_value), ("f32", f32_value)] {
            let got = got.unwrap_or_else(|e| panic!("{id} [{precision}]: {e}"));
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-6),
                "{id} [{precision}]: {got} vs {want}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} exact_auroc cases");
}
