//! Where the losses and the metrics meet: the smooth AUROC surrogate against the exact
//! metric. (Each crate's own tests are in `crates/*/tests`.)

use candle_core::{Device, Tensor};
use diffbio::metrics::roc_auc;
use diffbio::DifferentiableAuroc;
use diffbio_testing::{scalar, Rng};

fn dev() -> Device {
    Device::Cpu
}

fn tensor(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape, &dev()).unwrap()
}

#[test]
fn auroc_surrogate_approaches_exact_auroc_as_temperature_falls() {
    let mut rng = Rng::new(13);
    // Scores on a 1e-3 grid: distinct pairs saturate at T = 1e-5 (|z| ≥ 100), and tied
    // pairs give σ(0) = ½, the exact metric's half credit.
    let s: Vec<f64> = rng
        .normals(400)
        .iter()
        .map(|v| (v * 100.0).round() / 1000.0)
        .collect();
    let y: Vec<bool> = s.iter().map(|v| rng.normal() * 0.1 + v > 0.03).collect();
    let exact = roc_auc(&s, &y).unwrap();
    let labels =
        Tensor::from_vec(y.iter().map(|&b| b as u8).collect::<Vec<_>>(), 400, &dev()).unwrap();
    let smooth = scalar(
        &DifferentiableAuroc::new(1e-5)
            .unwrap()
            .forward(&tensor(&s, &[400]), &labels)
            .unwrap(),
    );
    assert!((smooth - exact).abs() < 1e-12, "{smooth} vs {exact}");
}
