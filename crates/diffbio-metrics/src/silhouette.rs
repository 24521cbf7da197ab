//! Silhouette widths (ASW) by label and by batch, BRAS and the isolated-label score, with
//! scib-metrics' definitions and rescalings.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::neighbours::{
    at_least_two, check_finite_matrix, distinct, one_per_cell, sorted_distinct,
};

/// Distance between cells for a silhouette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    /// `|x − y|`.
    Euclidean,
    /// `1 − x·y / (|x||y|)`, clipped to [0, 2].
    Cosine,
}

/// Which distance to the other clusters a silhouette compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Between {
    /// The nearest other cluster's mean distance (the standard silhouette).
    Nearest,
    /// The mean distance to all cells of the other clusters (BRAS).
    MeanOther,
}

/// Per-cell silhouette `s_i = (b_i − a_i) / max(a_i, b_i)` of `labels` for a row-major
/// `[n × dims]` embedding: `a_i` the mean distance to the other cells of i's cluster,
/// `b_i` per [`Between`]. Cells of singleton clusters get 0 (as scikit-learn).
/// O(n²·d) time, O(n + clusters) memory per thread.
///
/// ```
/// use diffbio_metrics::{silhouette_samples, Between, Distance};
/// let x = [0.0f32, 1.0, 10.0, 11.0]; // d = 1: two tight clusters
/// let s = silhouette_samples(&x, 1, &[0, 0, 1, 1], Distance::Euclidean, Between::Nearest).unwrap();
/// assert!((s[0] - (10.5 - 1.0) / 10.5).abs() < 1e-12);
/// ```
pub fn silhouette_samples<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    distance: Distance,
    between: Between,
) -> Result<Vec<f64>> {
    let n = check_finite_matrix(embedding, dims)?;
    one_per_cell(labels, n, "labels")?;
    let rows: Vec<Vec<f64>> = embedding
        .chunks(dims)
        .map(|r| r.iter().map(|&v| v.into()).collect())
        .collect();
    let norms: Vec<f64> = rows
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let n_labels = *labels.iter().max().expect("non-empty") as usize + 1;
    let mut sizes = vec![0usize; n_labels];
    labels.iter().for_each(|&l| sizes[l as usize] += 1);
    let dist = |i: usize, j: usize| match distance {
        Distance::Euclidean => rows[i]
            .iter()
            .zip(&rows[j])
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt(),
        Distance::Cosine => {
            let dot: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
            (1.0 - dot / (norms[i] * norms[j])).clamp(0.0, 2.0)
        }
    };
    Ok((0..n)
        .into_par_iter()
        .map_init(
            || vec![0.0f64; n_labels],
            |sums, i| {
                sums.iter_mut().for_each(|s| *s = 0.0);
                (0..n).for_each(|j| sums[labels[j] as usize] += dist(i, j));
                let own = labels[i] as usize;
                if sizes[own] < 2 {
                    return 0.0;
                }
                let a = sums[own] / (sizes[own] - 1) as f64;
                let others = (0..n_labels).filter(|&c| c != own && sizes[c] > 0);
                let b = match between {
                    Between::Nearest => others
                        .map(|c| sums[c] / sizes[c] as f64)
                        .fold(f64::INFINITY, f64::min),
                    Between::MeanOther => {
                        others.map(|c| sums[c]).sum::<f64>() / (n - sizes[own]) as f64
                    }
                };
                let s = (b - a) / a.max(b);
                if s.is_finite() {
                    s
                } else {
                    0.0
                }
            },
        )
        .collect())
}

/// scib-metrics' `silhouette_label`: `(mean Euclidean silhouette of the labels + 1) / 2`.
pub fn silhouette_label<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
) -> Result<f64> {
    at_least_two(labels, "labels")?;
    let s = silhouette_samples(
        embedding,
        dims,
        labels,
        Distance::Euclidean,
        Between::Nearest,
    )?;
    Ok((mean(&s) + 1.0) / 2.0)
}

/// scib-metrics' `silhouette_batch`: within each label, `1 − |silhouette of the batches|`
/// per cell (Euclidean, nearest), averaged per label, then over labels. Labels present in
/// one batch only, or with one cell per batch, are skipped.
pub fn silhouette_batch<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    batch_silhouette(
        embedding,
        dims,
        labels,
        batches,
        Distance::Euclidean,
        Between::Nearest,
    )
}

/// BRAS (Rautenstrauch et al. 2025), the batch score of scib-metrics' Benchmarker:
/// [`silhouette_batch`] with cosine distance and the mean distance to all other batches.
pub fn bras<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    batch_silhouette(
        embedding,
        dims,
        labels,
        batches,
        Distance::Cosine,
        Between::MeanOther,
    )
}

fn batch_silhouette<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
    distance: Distance,
    between: Between,
) -> Result<f64> {
    let n = check_finite_matrix(embedding, dims)?;
    one_per_cell(labels, n, "labels")?;
    one_per_cell(batches, n, "batches")?;
    at_least_two(batches, "batches")?;
    let mut per_label = Vec::new();
    for label in sorted_distinct(labels) {
        let cells: Vec<usize> = (0..n).filter(|&i| labels[i] == label).collect();
        let sub_batches: Vec<u32> = cells.iter().map(|&i| batches[i]).collect();
        let n_batches = distinct(&sub_batches);
        if n_batches == 1 || n_batches == cells.len() {
            continue;
        }
        let sub: Vec<T> = cells
            .iter()
            .flat_map(|&i| embedding[i * dims..(i + 1) * dims].iter().copied())
            .collect();
        let s = silhouette_samples(&sub, dims, &sub_batches, distance, between)?;
        let scores: Vec<f64> = s.iter().map(|v| 1.0 - v.abs()).collect();
        per_label.push(mean(&scores));
    }
    if per_label.is_empty() {
        return Err(Error::TooFewLabels {
            input: "batches",
            found: 1,
            needed: 2,
        });
    }
    Ok(mean(&per_label))
}

/// scib-metrics' isolated-label score: the labels present in the fewest batches; for each,
/// the mean over its cells of the rescaled `(s + 1)/2` label silhouette computed on all
/// cells; the mean over those labels.
pub fn isolated_labels<T: Copy + Into<f64> + Send + Sync>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    batches: &[u32],
) -> Result<f64> {
    one_per_cell(batches, labels.len(), "batches")?;
    at_least_two(labels, "labels")?;
    let s = silhouette_samples(
        embedding,
        dims,
        labels,
        Distance::Euclidean,
        Between::Nearest,
    )?;
    let all = sorted_distinct(labels);
    let batch_count = |label: u32| {
        let in_label: Vec<u32> = (0..labels.len())
            .filter(|&i| labels[i] == label)
            .map(|i| batches[i])
            .collect();
        distinct(&in_label)
    };
    let counts: Vec<usize> = all.iter().map(|&l| batch_count(l)).collect();
    let fewest = *counts.iter().min().expect("labels present");
    let scores: Vec<f64> = all
        .iter()
        .zip(&counts)
        .filter(|(_, &c)| c == fewest)
        .map(|(&label, _)| {
            let cells: Vec<f64> = (0..labels.len())
                .filter(|&i| labels[i] == label)
                .map(|i| (s[i] + 1.0) / 2.0)
                .collect();
            mean(&cells)
        })
        .collect();
    Ok(mean(&scores))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}
