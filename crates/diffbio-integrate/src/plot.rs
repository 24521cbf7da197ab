//! PNG plots of a run: the loss curves, and the embedding before and after projected on its
//! first two principal components, coloured by batch and by cell type.
//!
//! Text needs a TrueType font (`$DIFFBIO_FONT` or a system one, as
//! [`diffbio_io::read_font`] finds it); without one the plots are drawn without
//! titles and axis labels.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::data::Dataset;

type PlotResult = Result<(), Box<dyn Error>>;

/// Writes `losses.png` and `embedding.png` into `dir` (created if missing).
pub fn write_all(
    dir: &Path,
    history: &[(f32, f32)],
    dataset: &Dataset,
    corrected: &[f32],
    corrected_dims: usize,
) -> PlotResult {
    std::fs::create_dir_all(dir)?;
    let text = diffbio_io::read_font().is_some_and(|bytes| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    });
    losses(&dir.join("losses.png"), history, text)?;
    let before = principal_components(&dataset.x, dataset.dims);
    let after = principal_components(corrected, corrected_dims);
    embeddings(&dir.join("embedding.png"), &before, &after, dataset, text)
}

fn losses(path: &Path, history: &[(f32, f32)], text: bool) -> PlotResult {
    let root = BitMapBackend::new(path, (1200, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    let titles = [
        "batch-mixing loss (lower = mixed)",
        "reconstruction loss (MSE)",
    ];
    for (term, (panel, title)) in panels.iter().zip(titles).enumerate() {
        let values: Vec<f32> = history
            .iter()
            .map(|&(mixing, reconstruction)| [mixing, reconstruction][term])
            .collect();
        let (lo, hi) = bounds(values.iter().copied());
        let mut chart = ChartBuilder::on(panel);
        chart.margin(15);
        if text {
            chart
                .caption(title, ("sans-serif", 20))
                .x_label_area_size(30)
                .y_label_area_size(55);
        }
        let mut chart = chart.build_cartesian_2d(0..values.len().max(1), lo..hi)?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("step");
        } else {
            mesh.disable_x_mesh().disable_y_mesh();
        }
        mesh.draw()?;
        chart.draw_series(LineSeries::new(values.iter().copied().enumerate(), &BLUE))?;
    }
    root.present()?;
    Ok(())
}

fn embeddings(
    path: &Path,
    before: &[(f32, f32)],
    after: &[(f32, f32)],
    dataset: &Dataset,
    text: bool,
) -> PlotResult {
    // Rows: before, after; columns: batch, and cell type when known.
    let mut layout = vec![
        (before, &dataset.batch, "before: batch"),
        (after, &dataset.batch, "after: batch"),
    ];
    if let Some(celltype) = &dataset.celltype {
        layout.insert(1, (before, celltype, "before: cell type"));
        layout.push((after, celltype, "after: cell type"));
    }
    let columns = layout.len() / 2;
    let root = BitMapBackend::new(path, (600 * columns as u32, 1200)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, columns));
    for (panel, (points, labels, title)) in panels.iter().zip(layout) {
        let (x_lo, x_hi) = bounds(points.iter().map(|p| p.0));
        let (y_lo, y_hi) = bounds(points.iter().map(|p| p.1));
        let mut chart = ChartBuilder::on(panel);
        chart.margin(15);
        if text {
            chart.caption(format!("{title} (PC1 vs PC2)"), ("sans-serif", 20));
        }
        let mut chart = chart.build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .draw()?;
        chart.draw_series(points.iter().zip(labels.iter()).map(|(&(x, y), &label)| {
            Circle::new((x, y), 2, Palette99::pick(label as usize).filled())
        }))?;
    }
    root.present()?;
    Ok(())
}

/// Range of the values with 5% padding (a unit range when they are all equal).
fn bounds(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (lo, hi) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

/// Each row of a row-major `[n × dims]` matrix projected on its first two principal
/// components (power iteration with deflation on the `dims × dims` covariance).
pub fn principal_components(x: &[f32], dims: usize) -> Vec<(f32, f32)> {
    let n = x.len() / dims;
    let mut mean = vec![0.0f64; dims];
    for row in x.chunks(dims) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += v as f64 / n as f64);
    }
    let mut covariance = vec![0.0f64; dims * dims];
    for row in x.chunks(dims) {
        for a in 0..dims {
            let da = row[a] as f64 - mean[a];
            for b in 0..dims {
                covariance[a * dims + b] += da * (row[b] as f64 - mean[b]);
            }
        }
    }
    let first = leading_eigenvector(&covariance, dims);
    let lambda = rayleigh(&covariance, &first);
    for a in 0..dims {
        for b in 0..dims {
            covariance[a * dims + b] -= lambda * first[a] * first[b];
        }
    }
    let second = leading_eigenvector(&covariance, dims);
    let project = |row: &[f32], axis: &[f64]| {
        row.iter()
            .zip(&mean)
            .zip(axis)
            .map(|((&v, m), a)| (v as f64 - m) * a)
            .sum::<f64>() as f32
    };
    x.chunks(dims)
        .map(|row| (project(row, &first), project(row, &second)))
        .collect()
}

fn leading_eigenvector(matrix: &[f64], dims: usize) -> Vec<f64> {
    // A start vector with no special alignment; 500 iterations settle any realistic gap.
    let mut v: Vec<f64> = (0..dims).map(|i| 1.0 + (i as f64 * 0.7).sin()).collect();
    for _ in 0..500 {
        let next: Vec<f64> = (0..dims)
            .map(|a| (0..dims).map(|b| matrix[a * dims + b] * v[b]).sum())
            .collect();
        let norm = next.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        v = next.iter().map(|x| x / norm).collect();
    }
    v
}

fn rayleigh(matrix: &[f64], v: &[f64]) -> f64 {
    let dims = v.len();
    (0..dims)
        .map(|a| v[a] * (0..dims).map(|b| matrix[a * dims + b] * v[b]).sum::<f64>())
        .sum()
}
