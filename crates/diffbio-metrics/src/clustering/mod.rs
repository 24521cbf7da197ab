//! Deterministic k-means and the agreement of two labellings (NMI, ARI): scib-metrics'
//! `nmi_ari_cluster_labels_kmeans`.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::embedding::{Embedding, EmbeddingValue};
use crate::error::{Error, Result};
use crate::labels::{dense, distinct, one_per_cell};

mod centroid_distances;

use centroid_distances::{shifts, sq_distances, Assignment};

/// Lloyd iterations at most (scib-metrics' `max_iter`).
const MAX_ITERATIONS: usize = 300;

/// k-means++ starts of every [`kmeans`] fit; the one of lowest inertia is kept
/// (scikit-learn's `n_init = 10`), so that one unlucky initialisation does not decide the
/// NMI/ARI scores.
pub const KMEANS_STARTS: usize = 10;

/// A k-means clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// The cluster of every cell, 0..k.
    pub labels: Vec<u32>,
    /// Row-major `[k × dims]` centroids.
    pub centroids: Vec<f64>,
    /// Sum of squared distances of the cells to their centroids.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
}

/// k-means of a row-major `[n × dims]` embedding with scib-metrics' algorithm, made
/// deterministic and run from [`KMEANS_STARTS`] initialisations: each one k-means++
/// seeding with `2 + ⌊ln k⌋` local trials per centroid drawn from a ChaCha8 stream (the
/// streams of the starts are drawn from one seeded with `seed`; scib draws from JAX's
/// PRNG, which cannot be reproduced here), then Lloyd iterations on the centred data until
/// the assignment no longer changes (at most 300; scib always runs 300, which changes
/// nothing after a fixed point; each iteration measures only the cells whose centroid could
/// change, by Hamerly's bounds, which give the labels of measuring every cell, bitwise); an
/// empty cluster's centroid is the data mean, as in scib; ties go to the lower cluster.
/// The fit of lowest inertia is returned (the first of
/// equals). scib-metrics runs one start: on the PBMC data its NMI/ARI vary by 0.07/0.14
/// from seed to seed, diffbio's by far less (README). Errors: shapes, non-finite values,
/// k = 0 or k > n.
///
/// ```
/// use diffbio_metrics::kmeans;
/// let x = [0.0f32, 0.1, 0.2, 9.0, 9.1, 9.2]; // d = 1: two groups
/// let fit = kmeans(&x, 1, 2, 0).unwrap();
/// assert_eq!(fit.labels[0], fit.labels[2]);
/// assert_ne!(fit.labels[0], fit.labels[3]);
/// assert!((fit.inertia - 0.04).abs() < 1e-6); // the f32 inputs are not exact tenths
/// ```
pub fn kmeans<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    k: usize,
    seed: u64,
) -> Result<KMeans> {
    kmeans_of(Embedding::new(embedding, dims)?, k, seed)
}

/// [`kmeans`] of a checked embedding.
fn kmeans_of<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    k: usize,
    seed: u64,
) -> Result<KMeans> {
    let (n, dims) = (embedding.n(), embedding.dims());
    if k == 0 || k > n {
        return Err(Error::InvalidK { k, n });
    }
    let (x, mean) = embedding.centred();
    let mut starts = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<KMeans> = None;
    for _ in 0..KMEANS_STARTS {
        let fit = lloyd(&x, dims, k, starts.random());
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    let mut best = best.expect("at least one start");
    best.centroids
        .chunks_mut(dims)
        .for_each(|c| c.iter_mut().zip(&mean).for_each(|(v, m)| *v += m));
    Ok(best)
}

/// One start on centred data `x`: k-means++ from `seed`, then Lloyd iterations to a fixed
/// point; centroids in the centred frame.
fn lloyd(x: &[f64], dims: usize, k: usize, seed: u64) -> KMeans {
    let mut centroids = plus_plus(x, dims, k, seed);
    let mut assignment = Assignment::new(x, dims, &centroids);
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        let moved = means(x, dims, &assignment.labels, k);
        let shifts = shifts(&centroids, &moved, dims);
        centroids = moved;
        iterations += 1;
        if !assignment.update(x, dims, &centroids, &shifts) {
            break;
        }
    }
    // The last assignment is to the final centroids: its inertia is the fit's.
    let inertia = assignment.inertia(x, dims, &centroids);
    let labels = assignment.labels;
    KMeans {
        labels,
        centroids,
        inertia,
        iterations,
    }
}

/// k-means++ (Arthur & Vassilvitskii) with greedy local trials, as scikit-learn and
/// scib-metrics: each new centroid is the best of `2 + ⌊ln k⌋` candidates drawn with
/// probability ∝ the squared distance to the nearest centroid so far.
fn plus_plus(x: &[f64], dims: usize, k: usize, seed: u64) -> Vec<f64> {
    let n = x.len() / dims;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let first = rng.random_range(0..n);
    let mut centroids = x[first * dims..(first + 1) * dims].to_vec();
    let mut nearest = sq_distances(x, dims, &centroids);
    let trials = 2 + (k as f64).ln().floor() as usize;
    for _ in 1..k {
        let total: f64 = nearest.iter().sum();
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let mut target = rng.random::<f64>() * total;
                nearest
                    .iter()
                    .position(|&w| {
                        target -= w;
                        target < 0.0
                    })
                    .unwrap_or(n - 1)
            })
            .collect();
        // Every row's distance to every candidate in one pass: `[n × trials]`.
        let centres: Vec<f64> = candidates
            .iter()
            .flat_map(|&c| &x[c * dims..(c + 1) * dims])
            .copied()
            .collect();
        let distances = sq_distances(x, dims, &centres);
        let (best, best_nearest) = candidates
            .iter()
            .enumerate()
            .map(|(t, &c)| {
                let to_candidate = distances.iter().skip(t).step_by(trials);
                let updated: Vec<f64> = nearest
                    .iter()
                    .zip(to_candidate)
                    .map(|(&d, &e)| d.min(e))
                    .collect();
                (c, updated)
            })
            .min_by(|a, b| {
                let pot = |v: &[f64]| v.iter().sum::<f64>();
                pot(&a.1).total_cmp(&pot(&b.1))
            })
            .expect("at least two trials");
        centroids.extend_from_slice(&x[best * dims..(best + 1) * dims]);
        nearest = best_nearest;
    }
    centroids
}

/// The mean of every cluster's rows; 0 (the data mean) for an empty cluster. Each
/// coordinate of a cluster's sum adds the cluster's rows in ascending order, whichever
/// task takes it: one pass over the rows in order (a stream the prefetchers follow), the
/// dimensions split between the tasks, so the sums are the same on any number of threads.
fn means(x: &[f64], dims: usize, labels: &[u32], k: usize) -> Vec<f64> {
    let mut counts = vec![0usize; k];
    labels.iter().for_each(|&c| counts[c as usize] += 1);
    let tasks = rayon::current_num_threads().clamp(1, dims.div_ceil(MIN_DIMS_PER_TASK));
    let width = dims.div_ceil(tasks);
    let parts: Vec<Range<usize>> = (0..dims)
        .step_by(width)
        .map(|start| start..(start + width).min(dims))
        .collect();
    let sums_by_part: Vec<(Range<usize>, Vec<f64>)> = parts
        .into_par_iter()
        .map(|part| {
            let w = part.len();
            let mut sums = vec![0.0f64; k * w];
            for (row, &c) in x.chunks_exact(dims).zip(labels) {
                let sum = &mut sums[c as usize * w..][..w];
                sum.iter_mut()
                    .zip(&row[part.clone()])
                    .for_each(|(s, v)| *s += v);
            }
            (part, sums)
        })
        .collect();
    let mut means = vec![0.0f64; k * dims];
    for (part, sums) in sums_by_part {
        for (c, sum) in sums.chunks_exact(part.len()).enumerate() {
            let count = counts[c].max(1) as f64;
            means[c * dims + part.start..][..part.len()]
                .iter_mut()
                .zip(sum)
                .for_each(|(m, s)| *m = s / count);
        }
    }
    means
}

/// The fewest dimensions per task of [`means`]: a task reads a run of each row, and runs
/// shorter than a cache line would fetch the same lines into several cores.
const MIN_DIMS_PER_TASK: usize = 8;

/// The contingency table of two labellings: row totals, column totals and the non-zero
/// cells `(row, column, count)`.
struct Contingency {
    rows: Vec<u64>,
    cols: Vec<u64>,
    cells: Vec<(u32, u32, u64)>,
}

impl Contingency {
    fn new(a: &[u32], b: &[u32]) -> Self {
        let (a, b) = (dense(a), dense(b));
        let mut rows = vec![0u64; a.count];
        let mut cols = vec![0u64; b.count];
        let mut pairs: Vec<(u32, u32)> = a
            .codes
            .iter()
            .copied()
            .zip(b.codes.iter().copied())
            .collect();
        pairs.par_sort_unstable();
        let mut cells: Vec<(u32, u32, u64)> = Vec::new();
        for (i, j) in pairs {
            rows[i as usize] += 1;
            cols[j as usize] += 1;
            match cells.last_mut() {
                Some(last) if (last.0, last.1) == (i, j) => last.2 += 1,
                _ => cells.push((i, j, 1)),
            }
        }
        Self { rows, cols, cells }
    }
}

fn check_pair(truth: &[u32], predicted: &[u32]) -> Result<()> {
    if truth.is_empty() {
        return Err(Error::Empty { input: "labels" });
    }
    one_per_cell(predicted, truth.len(), "predicted")
}

fn entropy(totals: &[u64], n: f64) -> f64 {
    0.0 - totals
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 / n * (c as f64 / n).ln())
        .sum::<f64>()
}

/// Normalised mutual information with the arithmetic mean of the entropies,
/// `NMI = I(U; V) / ((H(U) + H(V)) / 2)`, equal to scikit-learn's
/// `normalized_mutual_info_score(average_method="arithmetic")`, including its cases: 1 when
/// both labellings have a single class, 0 when the information is 0.
///
/// ```
/// use diffbio_metrics::nmi;
/// assert_eq!(nmi(&[0, 0, 1, 1], &[5, 5, 2, 2]).unwrap(), 1.0); // same partition
/// assert_eq!(nmi(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap(), 0.0); // independent
/// ```
pub fn nmi(truth: &[u32], predicted: &[u32]) -> Result<f64> {
    check_pair(truth, predicted)?;
    let (a, b) = (distinct(truth), distinct(predicted));
    if a == 1 && b == 1 {
        return Ok(1.0);
    }
    let n = truth.len() as f64;
    let table = Contingency::new(truth, predicted);
    let information: f64 = table
        .cells
        .iter()
        .map(|&(i, j, c)| {
            let c = c as f64;
            let expected = table.rows[i as usize] as f64 * table.cols[j as usize] as f64;
            c / n * (c * n / expected).ln()
        })
        .sum::<f64>()
        .max(0.0);
    if information < f64::EPSILON {
        return Ok(0.0);
    }
    let mean_entropy = (entropy(&table.rows, n) + entropy(&table.cols, n)) / 2.0;
    Ok(information / mean_entropy)
}

/// Adjusted Rand index (Hubert & Arabie), equal to scikit-learn's `adjusted_rand_score`:
/// from the pair-confusion counts, exact in 128-bit integers;
/// `ARI = 2 (tp·tn − fn·fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn))`, 1 for identical
/// partitions.
///
/// ```
/// use diffbio_metrics::ari;
/// assert_eq!(ari(&[0, 0, 1, 1], &[1, 1, 0, 0]).unwrap(), 1.0);
/// assert!((ari(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap() + 0.5).abs() < 1e-12);
/// ```
pub fn ari(truth: &[u32], predicted: &[u32]) -> Result<f64> {
    check_pair(truth, predicted)?;
    let n = truth.len() as i128;
    let table = Contingency::new(truth, predicted);
    let squares =
        |v: &mut dyn Iterator<Item = u64>| v.map(|c| (c as i128) * (c as i128)).sum::<i128>();
    let sum_squares = squares(&mut table.cells.iter().map(|c| c.2));
    let tp = sum_squares - n;
    let fp = squares(&mut table.cols.iter().copied()) - sum_squares;
    let fn_ = squares(&mut table.rows.iter().copied()) - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fn_ == 0 && fp == 0 {
        return Ok(1.0);
    }
    let numerator = 2 * (tp * tn - fn_ * fp);
    let denominator = (tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn);
    Ok(numerator as f64 / denominator as f64)
}

/// NMI and ARI of a k-means clustering (k = the number of labels, [`kmeans`] with `seed`)
/// against the labels: scib-metrics' `nmi_ari_cluster_labels_kmeans`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NmiAri {
    /// Normalised mutual information ([`nmi`]).
    pub nmi: f64,
    /// Adjusted Rand index ([`ari`]).
    pub ari: f64,
}

/// See [`NmiAri`]. Errors: shapes, non-finite values, fewer cells than labels.
///
/// ```
/// use diffbio_metrics::nmi_ari_kmeans;
/// let x = [0.0f32, 0.1, 0.2, 9.0, 9.1, 9.2]; // d = 1
/// let scores = nmi_ari_kmeans(&x, 1, &[3, 3, 3, 7, 7, 7], 0).unwrap();
/// assert_eq!((scores.nmi, scores.ari), (1.0, 1.0));
/// ```
pub fn nmi_ari_kmeans<T: EmbeddingValue>(
    embedding: &[T],
    dims: usize,
    labels: &[u32],
    seed: u64,
) -> Result<NmiAri> {
    nmi_ari_kmeans_of(Embedding::new(embedding, dims)?, labels, seed)
}

/// [`nmi_ari_kmeans`] of a checked embedding.
pub(crate) fn nmi_ari_kmeans_of<T: EmbeddingValue>(
    embedding: Embedding<'_, T>,
    labels: &[u32],
    seed: u64,
) -> Result<NmiAri> {
    one_per_cell(labels, embedding.n(), "labels")?;
    let clusters = kmeans_of(embedding, distinct(labels), seed)?;
    Ok(NmiAri {
        nmi: nmi(labels, &clusters.labels)?,
        ari: ari(labels, &clusters.labels)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_add_each_clusters_rows_in_order_on_any_number_of_threads() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // Many dimensions, one, fewer than a task's minimum, a multiple of it; cluster 2
        // of the third case is empty (its mean is 0).
        for (n, dims, k) in [
            (1000usize, 50usize, 10usize),
            (37, 1, 3),
            (500, 7, 4),
            (200, 64, 5),
        ] {
            let x: Vec<f64> = (0..n * dims)
                .map(|_| rng.random::<f64>() * 8.0 - 4.0)
                .collect();
            let labels: Vec<u32> = (0..n)
                .map(|_| rng.random_range(0..k as u32))
                .map(|c| if k == 4 && c == 2 { 3 } else { c })
                .collect();
            let mut want = vec![0.0f64; k * dims];
            for c in 0..k {
                let rows: Vec<&[f64]> = x
                    .chunks(dims)
                    .zip(&labels)
                    .filter(|&(_, &l)| l as usize == c)
                    .map(|(row, _)| row)
                    .collect();
                for t in 0..dims {
                    let sum = rows.iter().fold(0.0f64, |s, row| s + row[t]);
                    want[c * dims + t] = sum / rows.len().max(1) as f64;
                }
            }
            for threads in [1, 2, 5] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| means(&x, dims, &labels, k));
                let bits = |v: &[f64]| v.iter().map(|m| m.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "n {n}, dims {dims}, {threads} threads"
                );
            }
        }
    }
}
