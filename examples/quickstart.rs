//! Computes every loss and its gradient on generated data and prints them.
//!
//! ```text
//! cargo run --release --example quickstart            # CPU
//! cargo run --release --features cuda --example quickstart -- --cuda
//! ```

use candle_core::{DType, Device, Tensor, Var};
use diffbio::metrics::roc_auc;
use diffbio::*;

/// `‖∂loss/∂v‖` for a loss already differentiated into `grads`.
fn grad_norm(grads: &candle_core::backprop::GradStore, v: &Var) -> candle_core::Result<f32> {
    grads
        .get(v)
        .expect("gradient")
        .sqr()?
        .sum_all()?
        .sqrt()?
        .to_scalar::<f32>()
}

fn main() -> Result<()> {
    let device = if std::env::args().any(|a| a == "--cuda") {
        Device::new_cuda(0)?
    } else {
        Device::Cpu
    };
    let (n, d, n_batches, k_clusters) = (2_000, 32, 3, 8);
    println!("diffbio quickstart: {n} cells x {d} dims, {n_batches} batches, on {device:?}\n");

    // Cells around 8 cell-type centres; each batch adds its own shift.
    let types = Tensor::rand(0f32, k_clusters as f32, n, &device)?.floor()?;
    let centres = Tensor::randn(0f32, 1.0, (k_clusters, d), &device)?;
    let type_ids = types.to_dtype(DType::U32)?;
    let batch = Tensor::rand(0f32, n_batches as f32, n, &device)?
        .floor()?
        .to_dtype(DType::U32)?;
    let shifts = Tensor::randn(0f32, 0.3, (n_batches, d), &device)?;
    let x = (centres.index_select(&type_ids, 0)? + shifts.index_select(&batch, 0)?)?;
    let x = Var::from_tensor(&(x + Tensor::randn(0f32, 1.0, (n, d), &device)?)?)?;
    let logits = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, k_clusters), &device)?)?;
    let assignments = candle_nn::ops::softmax(logits.as_tensor(), candle_core::D::Minus1)?;

    let report = |name: &str, loss: &Tensor, vars: &[(&str, &Var)]| -> Result<()> {
        let grads = loss.backward()?;
        let norms = vars
            .iter()
            .map(|(v_name, v)| Ok(format!("|d/d{v_name}| = {:.4e}", grad_norm(&grads, v)?)))
            .collect::<Result<Vec<_>>>()?;
        println!(
            "{name:<28} {:>10.6}   {}",
            loss.to_scalar::<f32>()?,
            norms.join(", ")
        );
        Ok(())
    };

    let mixing = BatchMixingLoss::new(BatchMixingConfig {
        n_neighbors: 15,
        n_batches,
        temperature: 1.0,
    })?;
    report(
        "BatchMixingLoss",
        &mixing.forward(x.as_tensor(), &batch)?,
        &[("x", &x)],
    )?;

    let compactness = ClusteringCompactnessLoss::new(ClusteringCompactnessConfig::default())?;
    report(
        "ClusteringCompactnessLoss",
        &compactness.forward(x.as_tensor(), &assignments, None)?,
        &[("x", &x), ("logits", &logits)],
    )?;

    let velocity = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, d), &device)?)?;
    let future = (x.as_tensor()
        + (velocity.as_tensor() * 0.1)?
        + Tensor::randn(0f32, 0.01, (n, d), &device)?)?;
    let vc = VelocityConsistencyLoss::new(VelocityConsistencyConfig::default())?;
    report(
        "VelocityConsistencyLoss",
        &vc.forward(x.as_tensor(), velocity.as_tensor(), &future)?,
        &[("velocity", &velocity)],
    )?;

    report(
        "ShannonDiversityLoss",
        &ShannonDiversityLoss.forward(&assignments)?,
        &[("logits", &logits)],
    )?;
    report(
        "SimpsonDiversityLoss",
        &SimpsonDiversityLoss.forward(&assignments)?,
        &[("logits", &logits)],
    )?;

    // A classifier score for "is cell type 0", with a learnable temperature.
    let scores = Var::from_tensor(
        &(types.eq(0f32)?.to_dtype(DType::F32)? + Tensor::randn(0f32, 0.7, n, &device)?)?,
    )?;
    let is_type0 = types.eq(0f32)?;
    let temperature = Var::new(0.5f32, &device)?;
    let surrogate = DifferentiableAuroc::with_temperature(temperature.as_tensor().clone())?;
    report(
        "DifferentiableAuroc",
        &surrogate.forward(scores.as_tensor(), &is_type0)?,
        &[("scores", &scores), ("T", &temperature)],
    )?;

    let exact = roc_auc(
        &scores.as_tensor().to_vec1::<f32>()?,
        &is_type0
            .to_vec1::<u8>()?
            .iter()
            .map(|&y| y == 1)
            .collect::<Vec<_>>(),
    )
    .map_err(candle_core::Error::wrap)?;
    println!(
        "{:<28} {exact:>10.6}   (exact, tie-aware)",
        "metrics::roc_auc"
    );
    Ok(())
}
