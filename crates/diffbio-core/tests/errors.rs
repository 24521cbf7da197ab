//! Every error case of SPEC.md returns a typed `Err`: never a panic, never a NaN.

use candle_core::{DType, Device, Tensor};
use diffbio_core::*;

fn dev() -> Device {
    Device::Cpu
}

fn x(n: usize, d: usize) -> Tensor {
    Tensor::randn(0f32, 1.0, (n, d), &dev()).unwrap()
}

fn labels(n: usize, b: u32) -> Tensor {
    Tensor::from_vec((0..n as u32).map(|i| i % b).collect(), n, &dev()).unwrap()
}

fn with_value(t: &Tensor, index: (usize, usize), value: f32) -> Tensor {
    let mut v = t.to_vec2::<f32>().unwrap();
    v[index.0][index.1] = value;
    Tensor::new(v, &dev()).unwrap()
}

fn mixing(k: usize, b: usize, t: f64) -> Result<BatchMixingLoss> {
    BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: k,
        n_batches: b,
        temperature: t,
    })
}

// ---- BatchMixingLoss ----

/// One refused input of `BatchMixingLoss::forward` per row: what it is, the embeddings, the
/// labels, and the error it must give.
#[test]
fn batch_mixing_rejects_each_bad_input_of_forward() {
    type Expect = fn(&Error) -> bool;
    let cases: [(&str, Tensor, Tensor, Expect); 7] = [
        (
            "1-d embeddings",
            Tensor::ones(10, DType::F32, &dev()).unwrap(),
            labels(10, 2),
            |e| {
                matches!(
                    e,
                    Error::Shape {
                        input: "embeddings",
                        ..
                    }
                )
            },
        ),
        (
            "integer embeddings",
            Tensor::ones((10, 2), DType::U32, &dev()).unwrap(),
            labels(10, 2),
            |e| {
                matches!(
                    e,
                    Error::DType {
                        input: "embeddings",
                        ..
                    }
                )
            },
        ),
        (
            "2-d labels",
            x(10, 2),
            labels(10, 2).reshape((5, 2)).unwrap(),
            |e| {
                matches!(
                    e,
                    Error::Shape {
                        input: "batch_labels",
                        ..
                    }
                )
            },
        ),
        (
            "float labels",
            x(10, 2),
            labels(10, 2).to_dtype(DType::F32).unwrap(),
            |e| {
                matches!(
                    e,
                    Error::DType {
                        input: "batch_labels",
                        ..
                    }
                )
            },
        ),
        ("9 labels for 10 cells", x(10, 2), labels(9, 2), |e| {
            matches!(
                e,
                Error::Shape {
                    input: "batch_labels",
                    ..
                }
            )
        }),
        (
            "label 2 with 2 batches",
            x(10, 2),
            labels(10, 3),
            |e| matches!(e, Error::LabelOutOfRange { value, .. } if *value == 2.0),
        ),
        (
            "label -1",
            x(6, 2),
            Tensor::new(&[0i64, 1, -1, 0, 1, 0], &dev()).unwrap(),
            |e| matches!(e, Error::LabelOutOfRange { value, .. } if *value == -1.0),
        ),
    ];
    let loss = mixing(3, 2, 1.0).unwrap();
    for (what, embeddings, labels, expect) in cases {
        match loss.forward(&embeddings, &labels) {
            Err(e) if expect(&e) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn batch_mixing_rejects_k_zero() {
    assert!(matches!(
        mixing(0, 2, 1.0),
        Err(Error::InvalidParameter {
            name: "n_neighbors",
            ..
        })
    ));
}

#[test]
fn batch_mixing_rejects_k_equal_to_n() {
    let e = mixing(10, 2, 1.0)
        .unwrap()
        .forward(&x(10, 2), &labels(10, 2));
    assert!(
        matches!(
            e,
            Err(Error::InvalidParameter {
                name: "n_neighbors",
                ..
            })
        ),
        "{e:?}"
    );
    let ok = mixing(9, 2, 1.0)
        .unwrap()
        .forward(&x(10, 2), &labels(10, 2));
    assert!(ok.is_ok(), "k = n - 1 is allowed: {ok:?}");
}

#[test]
fn batch_mixing_rejects_fewer_than_two_batches() {
    assert!(matches!(
        mixing(3, 1, 1.0),
        Err(Error::InvalidParameter {
            name: "n_batches",
            ..
        })
    ));
}

#[test]
fn batch_mixing_rejects_bad_temperature() {
    for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                mixing(3, 2, t),
                Err(Error::InvalidParameter {
                    name: "temperature",
                    ..
                })
            ),
            "T = {t}"
        );
    }
}

#[test]
fn batch_mixing_rejects_nan_and_inf_embeddings() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let e = mixing(3, 2, 1.0)
            .unwrap()
            .forward(&with_value(&x(10, 2), (4, 1), bad), &labels(10, 2));
        assert!(
            matches!(
                e,
                Err(Error::NonFinite {
                    input: "embeddings"
                })
            ),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn batch_mixing_rejects_a_single_cell_and_empty_input() {
    let e = mixing(1, 2, 1.0).unwrap().forward(&x(1, 2), &labels(1, 2));
    assert!(matches!(e, Err(Error::Empty { .. })), "{e:?}");
    let empty = Tensor::zeros((0, 2), DType::F32, &dev()).unwrap();
    let e = mixing(1, 2, 1.0).unwrap().forward(&empty, &labels(0, 2));
    assert!(matches!(e, Err(Error::Empty { .. })), "{e:?}");
}

// ---- ClusteringCompactnessLoss ----

fn compactness() -> ClusteringCompactnessLoss {
    ClusteringCompactnessLoss::new(ClusteringCompactnessConfig::default()).unwrap()
}

fn soft(n: usize, k: usize) -> Tensor {
    Tensor::full(1.0 / k as f32, (n, k), &dev()).unwrap()
}

#[test]
fn clustering_rejects_assignment_rows_other_than_n() {
    let e = compactness().forward(&x(10, 3), &soft(9, 2), None);
    assert!(
        matches!(
            e,
            Err(Error::Shape {
                input: "assignments",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn clustering_rejects_centroids_of_wrong_shape() {
    for c in [x(3, 3), x(2, 4)] {
        let e = compactness().forward(&x(10, 3), &soft(10, 2), Some(&c));
        assert!(
            matches!(
                e,
                Err(Error::Shape {
                    input: "centroids",
                    ..
                })
            ),
            "{e:?}"
        );
    }
}

#[test]
fn clustering_rejects_zero_clusters() {
    let e = compactness().forward(
        &x(10, 3),
        &Tensor::zeros((10, 0), DType::F32, &dev()).unwrap(),
        None,
    );
    assert!(
        matches!(
            e,
            Err(Error::Empty {
                input: "assignments",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn clustering_rejects_non_finite_inputs() {
    let e = compactness().forward(&with_value(&x(10, 3), (0, 0), f32::NAN), &soft(10, 2), None);
    assert!(
        matches!(
            e,
            Err(Error::NonFinite {
                input: "embeddings"
            })
        ),
        "{e:?}"
    );
    let e = compactness().forward(
        &x(10, 3),
        &with_value(&soft(10, 2), (1, 1), f32::INFINITY),
        None,
    );
    assert!(
        matches!(
            e,
            Err(Error::NonFinite {
                input: "assignments"
            })
        ),
        "{e:?}"
    );
    let e = compactness().forward(
        &x(10, 3),
        &soft(10, 2),
        Some(&with_value(&x(2, 3), (1, 2), f32::NAN)),
    );
    assert!(
        matches!(e, Err(Error::NonFinite { input: "centroids" })),
        "{e:?}"
    );
}

#[test]
fn clustering_rejects_negative_or_non_finite_parameters() {
    for (w, s) in [
        (-0.1, 1.0),
        (1.0, -1.0),
        (f64::NAN, 1.0),
        (1.0, f64::INFINITY),
    ] {
        let e = ClusteringCompactnessLoss::new(ClusteringCompactnessConfig {
            separation_weight: w,
            min_separation: s,
        });
        assert!(
            matches!(e, Err(Error::InvalidParameter { .. })),
            "w={w} s={s}"
        );
    }
}

// ---- VelocityConsistencyLoss ----

fn velocity() -> VelocityConsistencyLoss {
    VelocityConsistencyLoss::new(VelocityConsistencyConfig::default()).unwrap()
}

#[test]
fn velocity_rejects_shape_mismatch() {
    let e = velocity().forward(&x(5, 4), &x(5, 3), &x(5, 4));
    assert!(
        matches!(
            e,
            Err(Error::Shape {
                input: "velocity",
                ..
            })
        ),
        "{e:?}"
    );
    let e = velocity().forward(&x(5, 4), &x(5, 4), &x(6, 4));
    assert!(
        matches!(
            e,
            Err(Error::Shape {
                input: "future_expression",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn velocity_rejects_bad_dt() {
    for dt in [0.0, -0.1, f64::NAN] {
        let e = VelocityConsistencyLoss::new(VelocityConsistencyConfig {
            dt,
            ..Default::default()
        });
        assert!(
            matches!(e, Err(Error::InvalidParameter { name: "dt", .. })),
            "dt = {dt}"
        );
    }
}

#[test]
fn velocity_rejects_non_finite_inputs() {
    let e = velocity().forward(&x(5, 4), &with_value(&x(5, 4), (2, 2), f32::NAN), &x(5, 4));
    assert!(
        matches!(e, Err(Error::NonFinite { input: "velocity" })),
        "{e:?}"
    );
    let e = velocity().forward(
        &with_value(&x(5, 4), (0, 3), f32::INFINITY),
        &x(5, 4),
        &x(5, 4),
    );
    assert!(
        matches!(
            e,
            Err(Error::NonFinite {
                input: "expression"
            })
        ),
        "{e:?}"
    );
}

// ---- Shannon / Simpson ----

#[test]
fn diversity_rejects_bad_assignments() {
    let one_d = Tensor::ones(4, DType::F32, &dev()).unwrap();
    let nan = with_value(&soft(4, 3), (1, 1), f32::NAN);
    let empty = Tensor::zeros((0, 3), DType::F32, &dev()).unwrap();
    for (a, what) in [(&one_d, "1-D"), (&nan, "NaN"), (&empty, "empty")] {
        assert!(
            ShannonDiversityLoss.forward(a).is_err(),
            "shannon accepted {what}"
        );
        assert!(
            SimpsonDiversityLoss.forward(a).is_err(),
            "simpson accepted {what}"
        );
    }
}

// ---- DifferentiableAuroc ----

fn scores() -> Tensor {
    Tensor::new(&[0.9f32, 0.2, 0.4, 0.8], &dev()).unwrap()
}

#[test]
fn auroc_rejects_inputs_that_are_not_1d() {
    let s2 = scores().reshape((2, 2)).unwrap();
    let e =
        DifferentiableAuroc::default().forward(&s2, &Tensor::new(&[1u8, 0, 1, 0], &dev()).unwrap());
    assert!(
        matches!(
            e,
            Err(Error::Shape {
                input: "predictions",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn auroc_rejects_length_mismatch() {
    let e = DifferentiableAuroc::default()
        .forward(&scores(), &Tensor::new(&[1u8, 0, 1], &dev()).unwrap());
    assert!(
        matches!(
            e,
            Err(Error::Shape {
                input: "labels",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn auroc_rejects_labels_other_than_zero_and_one() {
    for bad in [2.0f32, 0.5, -1.0, f32::NAN] {
        let l = Tensor::new(&[1f32, 0., bad, 0.], &dev()).unwrap();
        let e = DifferentiableAuroc::default().forward(&scores(), &l);
        assert!(
            matches!(
                e,
                Err(Error::LabelOutOfRange {
                    input: "labels",
                    ..
                })
            ),
            "{bad}: {e:?}"
        );
    }
    let e = DifferentiableAuroc::default()
        .forward(&scores(), &Tensor::new(&[1i64, 0, 3, 0], &dev()).unwrap());
    assert!(
        matches!(e, Err(Error::LabelOutOfRange { value, .. }) if value == 3.0),
        "{e:?}"
    );
}

#[test]
fn auroc_rejects_bad_temperature() {
    for t in [0.0, -2.0, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                DifferentiableAuroc::new(t),
                Err(Error::InvalidParameter { .. })
            ),
            "T = {t}"
        );
    }
    let t = Tensor::new(&[1f32, 2.], &dev()).unwrap();
    assert!(matches!(
        DifferentiableAuroc::with_temperature(t),
        Err(Error::Shape { .. })
    ));
    let t = Tensor::new(-1f32, &dev()).unwrap();
    assert!(matches!(
        DifferentiableAuroc::with_temperature(t),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn auroc_rechecks_a_learned_temperature_on_every_forward() {
    let t = candle_core::Var::new(1f32, &dev()).unwrap();
    let auroc = DifferentiableAuroc::with_temperature(t.as_tensor().clone()).unwrap();
    t.set(&Tensor::new(-0.5f32, &dev()).unwrap()).unwrap(); // e.g. after an optimiser step
    let e = auroc.forward(&scores(), &Tensor::new(&[1u8, 0, 1, 0], &dev()).unwrap());
    assert!(
        matches!(
            e,
            Err(Error::InvalidParameter {
                name: "temperature",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn auroc_rejects_non_finite_scores() {
    for bad in [f32::NAN, f32::INFINITY] {
        let s = Tensor::new(&[0.9f32, bad, 0.4, 0.8], &dev()).unwrap();
        let e = DifferentiableAuroc::default()
            .forward(&s, &Tensor::new(&[1u8, 0, 1, 0], &dev()).unwrap());
        assert!(
            matches!(
                e,
                Err(Error::NonFinite {
                    input: "predictions"
                })
            ),
            "{e:?}"
        );
    }
}

#[test]
fn auroc_rejects_empty_input() {
    let empty = Tensor::zeros(0, DType::F32, &dev()).unwrap();
    let e = DifferentiableAuroc::default().forward(&empty, &empty);
    assert!(matches!(e, Err(Error::Empty { .. })), "{e:?}");
}

// ---- exact AUROC ----

// ---- conversion into candle's error ----

#[test]
fn errors_convert_into_candle_errors_for_question_mark() {
    fn inside_candle_code() -> candle_core::Result<Tensor> {
        let loss = BatchMixingLoss::new(BatchMixingConfig::default())?;
        Ok(loss.forward(&Tensor::ones(3, DType::F32, &Device::Cpu)?, &labels(3, 3))?)
    }
    let e = inside_candle_code().unwrap_err();
    assert!(e.to_string().contains("embeddings"), "{e}");
}
