//! Every loss case of the float64 reference file (SPEC.md formulas): value and every
//! gradient, in f64 and f32, through Candle autograd, on every device (`test_device!`);
//! cases SPEC.md refuses must fail. (The file's `exact_auroc` cases are the metrics
//! crate's: `crates/diffbio-metrics/tests/golden.rs`.)
//!
//! The reference files are `tests/data/golden*.json`; set `DIFFBIO_GOLDEN=a.json:b.json`
//! to check further files of the same format (see `tests/data/GOLDEN.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use diffbio_core::*;
use diffbio_testing::{flat, norm_rel_err, rel_err, scalar, test_device};
use serde_json::Value;

struct Tolerance {
    value: f64,
    grad: f64,
}

const F64_TOL: Tolerance = Tolerance {
    value: 1e-7,
    grad: 1e-6,
};
const F32_TOL: Tolerance = Tolerance {
    value: 1e-4,
    grad: 1e-3,
};

/// How a case's float inputs are presented.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Precision {
    F64,
    F32,
    /// f64 tensors holding the f32-rounded inputs: the best any f32 implementation can do.
    F64OnF32Inputs,
}

impl Precision {
    fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            _ => DType::F64,
        }
    }
}

/// Value and named gradients of one evaluation.
struct Outcome {
    value: f64,
    grads: BTreeMap<String, Vec<f64>>,
}

fn golden_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data exists")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("golden") && name.ends_with(".json")
        })
        .collect();
    if let Ok(extra) = std::env::var("DIFFBIO_GOLDEN") {
        files.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    files.sort();
    assert!(!files.is_empty(), "no golden files in {dir:?}");
    files
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(x) => vec![x.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

fn shape(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(items) => {
            let mut s = vec![items.len()];
            if let Some(first) = items.first() {
                s.extend(shape(first));
            }
            s
        }
        _ => vec![],
    }
}

fn float_input(case: &Value, name: &str, precision: Precision, dev: &Device) -> Var {
    let v = &case["inputs"][name];
    let mut values = numbers(v);
    if precision == Precision::F64OnF32Inputs {
        values.iter_mut().for_each(|x| *x = *x as f32 as f64);
    }
    let t = Tensor::from_slice(&values, shape(v), dev).unwrap();
    Var::from_tensor(&t.to_dtype(precision.dtype()).unwrap()).unwrap()
}

fn param(case: &Value, name: &str) -> f64 {
    case["params"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("param {name}"))
}

/// Integer labels, in a dtype that rotates with `variant` so U8, U32 and I64 are all exercised.
fn int_labels(case: &Value, name: &str, variant: usize, dev: &Device) -> Tensor {
    let values: Vec<i64> = numbers(&case["inputs"][name])
        .iter()
        .map(|&v| v as i64)
        .collect();
    let t = Tensor::new(values.as_slice(), dev).unwrap();
    let dtype = [DType::I64, DType::U32, DType::U8][variant % 3];
    if dtype == DType::I64 || values.iter().all(|v| (0..256).contains(v)) {
        t.to_dtype(dtype).unwrap()
    } else {
        t
    }
}

fn outcome(loss: Tensor, vars: &[(&str, &Var)]) -> Outcome {
    let grads = loss.backward().unwrap();
    Outcome {
        value: scalar(&loss),
        grads: vars
            .iter()
            .map(|(name, v)| {
                let g = grads
                    .get(v)
                    .map(flat)
                    .unwrap_or_else(|| vec![0.0; v.elem_count()]);
                (name.to_string(), g)
            })
            .collect(),
    }
}

/// Runs one case through the public API in `dtype`.
fn evaluate(
    case: &Value,
    precision: Precision,
    variant: usize,
    dev: &Device,
) -> std::result::Result<Outcome, String> {
    let err = |e: Error| e.to_string();
    let dtype = precision;
    match case["fn"].as_str().unwrap() {
        "batch_mixing" => {
            let x = float_input(case, "embeddings", dtype, dev);
            let b = int_labels(case, "batch_labels", variant, dev);
            let loss = BatchMixingLoss::new(BatchMixingConfig {
                n_neighbors: param(case, "n_neighbors") as usize,
                n_batches: param(case, "n_batches") as usize,
                temperature: param(case, "temperature"),
            })
            .and_then(|l| l.forward(x.as_tensor(), &b))
            .map_err(err)?;
            Ok(outcome(loss, &[("embeddings", &x)]))
        }
        "clustering_compactness" => {
            let x = float_input(case, "embeddings", dtype, dev);
            let a = float_input(case, "assignments", dtype, dev);
            let c = case["inputs"]
                .get("centroids")
                .map(|_| float_input(case, "centroids", dtype, dev));
            let loss = ClusteringCompactnessLoss::new(ClusteringCompactnessConfig {
                separation_weight: param(case, "separation_weight"),
                min_separation: param(case, "min_separation"),
            })
            .and_then(|l| {
                l.forward(
                    x.as_tensor(),
                    a.as_tensor(),
                    c.as_ref().map(|c| c.as_tensor()),
                )
            })
            .map_err(err)?;
            let mut vars = vec![("embeddings", &x), ("assignments", &a)];
            if let Some(c) = &c {
                vars.push(("centroids", c));
            }
            Ok(outcome(loss, &vars))
        }
        "velocity_consistency" => {
            let e = float_input(case, "expression", dtype, dev);
            let v = float_input(case, "velocity", dtype, dev);
            let f = float_input(case, "future_expression", dtype, dev);
            let loss = VelocityConsistencyLoss::new(VelocityConsistencyConfig {
                dt: param(case, "dt"),
                cosine_weight: param(case, "cosine_weight"),
                magnitude_weight: param(case, "magnitude_weight"),
            })
            .and_then(|l| l.forward(e.as_tensor(), v.as_tensor(), f.as_tensor()))
            .map_err(err)?;
            Ok(outcome(
                loss,
                &[
                    ("expression", &e),
                    ("velocity", &v),
                    ("future_expression", &f),
                ],
            ))
        }
        "shannon_diversity" => {
            let a = float_input(case, "assignments", dtype, dev);
            let loss = ShannonDiversityLoss.forward(a.as_tensor()).map_err(err)?;
            Ok(outcome(loss, &[("assignments", &a)]))
        }
        "simpson_diversity" => {
            let a = float_input(case, "assignments", dtype, dev);
            let loss = SimpsonDiversityLoss.forward(a.as_tensor()).map_err(err)?;
            Ok(outcome(loss, &[("assignments", &a)]))
        }
        "differentiable_auroc" => {
            let s = float_input(case, "predictions", dtype, dev);
            let labels_f = float_input(case, "labels", dtype, dev);
            // Alternate float and integer labels where the labels allow it.
            let labels = if variant % 2 == 1
                && numbers(&case["inputs"]["labels"])
                    .iter()
                    .all(|v| *v == 0.0 || *v == 1.0)
            {
                labels_f.as_tensor().to_dtype(DType::U8).unwrap()
            } else {
                labels_f.as_tensor().clone()
            };
            let t = Var::new(case["inputs"]["temperature"].as_f64().unwrap(), dev).unwrap();
            let t = Var::from_tensor(&t.as_tensor().to_dtype(dtype.dtype()).unwrap()).unwrap();
            let loss = DifferentiableAuroc::with_temperature(t.as_tensor().clone())
                .and_then(|l| l.forward(s.as_tensor(), &labels))
                .map_err(err)?;
            Ok(outcome(loss, &[("predictions", &s), ("temperature", &t)]))
        }
        other => panic!("unknown fn {other}"),
    }
}

fn has_tag(case: &Value, tag: &str) -> bool {
    case["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == tag))
}

/// Compares an outcome with the expected value and gradients; returns each mismatch.
fn compare(
    case: &Value,
    out: &Outcome,
    want: &Outcome,
    tol: &Tolerance,
    label: &str,
) -> Vec<String> {
    let id = case["id"].as_str().unwrap();
    let mut problems = vec![];
    if !out.value.is_finite() || rel_err(out.value, want.value, 1e-6) > tol.value {
        problems.push(format!(
            "{id} [{label}]: value {} vs {}",
            out.value, want.value
        ));
    }
    let value_only = has_tag(case, "kth_tie") || has_tag(case, "below_eps");
    if !value_only {
        for (name, want_grad) in &want.grads {
            let err = norm_rel_err(&out.grads[name.as_str()], want_grad, 1e-6);
            if err.is_nan() || err > tol.grad {
                problems.push(format!(
                    "{id} [{label}]: grad {name} off by {err:.2e} (relative to its norm)"
                ));
            }
        }
    }
    problems
}

fn reference(case: &Value) -> Outcome {
    let value = case["value"].as_f64().unwrap();
    let grads = match &case["grads"] {
        Value::Null => BTreeMap::new(),
        g => g
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), numbers(v)))
            .collect(),
    };
    Outcome { value, grads }
}

/// Checks one case in one precision; returns a description of each mismatch.
fn check(case: &Value, precision: Precision, variant: usize, dev: &Device) -> Vec<String> {
    let id = case["id"].as_str().unwrap();
    let label = format!("{precision:?}");
    let result = evaluate(case, precision, variant, dev);
    if case.get("expect").and_then(Value::as_str) == Some("error") {
        return match result {
            Err(_) => vec![],
            Ok(o) => vec![format!(
                "{id} [{label}]: expected an error, got value {}",
                o.value
            )],
        };
    }
    let out = match result {
        Ok(o) => o,
        Err(e) => return vec![format!("{id} [{label}]: unexpected error: {e}")],
    };
    let want = reference(case);
    if precision == Precision::F64 {
        return compare(case, &out, &want, &F64_TOL, &label);
    }
    let problems = compare(case, &out, &want, &F32_TOL, &label);
    if problems.is_empty() {
        return problems;
    }
    // A case is f32-unstable when even exact arithmetic on its f32-rounded inputs misses the
    // f32 tolerance; then the f32 run must match that best-possible answer instead.
    let best = evaluate(case, Precision::F64OnF32Inputs, variant, dev).expect("f64 run succeeded");
    if compare(case, &best, &want, &F32_TOL, "f64 on f32 inputs").is_empty() {
        return problems;
    }
    eprintln!("{id}: f32-unstable (exact arithmetic on f32-rounded inputs misses the reference)");
    compare(case, &out, &best, &F32_TOL, "f32 vs f64 on f32 inputs")
}

fn golden_cases_f64_and_f32(dev: &Device) {
    let mut problems = vec![];
    let mut checked = 0;
    for file in golden_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
        for (variant, case) in cases.iter().enumerate() {
            if case["fn"] == "exact_auroc" {
                continue;
            }
            problems.extend(check(case, Precision::F64, variant, dev));
            if !has_tag(case, "f32_unstable") {
                problems.extend(check(case, Precision::F32, variant + 1, dev));
            }
            checked += 1;
        }
    }
    assert!(checked >= 104, "only {checked} loss cases found");
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

test_device!(golden_cases_f64_and_f32);
