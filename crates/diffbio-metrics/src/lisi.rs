//! Local inverse Simpson index (LISI; Korsunsky et al. 2019) with scib-metrics' calibration
//! and its scaled iLISI / cLISI summaries.

use diffbio_pairwise::{dispatch, lane_dot, lane_sum, FastExp, Vectorised};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::knn::KnnGraph;
use crate::labels::{at_least_two, check_labels, dense, Dense};
use crate::neighbourhood::PerCell;

/// Tolerance on `|H − ln(perplexity)|` of the bisection, as in scib-metrics.
const TOLERANCE: f64 = 1e-5;
/// Bisection steps at most, as in scib-metrics.
const MAX_TRIES: usize = 50;

/// Per-cell LISI of `labels` on the kNN graph (Euclidean distances), with the perplexity
/// `⌊(k + 1)/3⌋` that scib-metrics uses for a graph of k neighbours plus the cell itself.
///
/// For each cell, `P_j ∝ exp(−β d_j)` over its neighbours, β found by bisection (from β = 1,
/// doubling or halving until bracketed) so that the entropy of P equals ln(perplexity)
/// within 1e-5 (at most 50 steps); `LISI = 1 / Σ_c (Σ_{j: label c} P_j)²`, the effective
/// number of labels around the cell (1 … number of labels). A cell whose weights all
/// vanish gets −1, as in scib-metrics.
///
/// ```
/// use diffbio_metrics::{knn, lisi};
/// let x: Vec<f64> = (0..60).map(|i| i as f64).collect(); // d = 1
/// let mixed: Vec<u32> = (0..60).map(|i| i % 2).collect();
/// let g = knn(&x, 1, 29).unwrap();
/// let l = lisi(&g, &mixed).unwrap();
/// assert!((l.per_cell[30] - 1.866).abs() < 1e-3); // alternating labels: nearly 2 labels around it
/// let apart = lisi(&g, &(0..60).map(|i| u32::from(i >= 30)).collect::<Vec<_>>()).unwrap();
/// assert!((apart.per_cell[0] - 1.0).abs() < 1e-9); // cell 0: its 29 neighbours share its label
/// ```
pub fn lisi(graph: &KnnGraph, labels: &[u32]) -> Result<PerCell> {
    LisiWeights::new(graph)?.lisi(labels)
}

/// scib-metrics' iLISI: `(median LISI of the batches − 1) / (B − 1)`; 1 = perfectly mixed.
pub fn ilisi(graph: &KnnGraph, batches: &[u32]) -> Result<f64> {
    LisiWeights::new(graph)?.ilisi(batches)
}

/// scib-metrics' cLISI: `(L − median LISI of the labels) / (L − 1)`; 1 = cell types kept apart.
pub fn clisi(graph: &KnnGraph, labels: &[u32]) -> Result<f64> {
    LisiWeights::new(graph)?.clisi(labels)
}

/// The calibrated neighbour weights `P_ij` of every cell of a kNN graph: they depend on
/// the distances only, so one calibration serves the LISI of any labelling (iLISI and
/// cLISI share it). O(n·k) memory.
#[derive(Debug, Clone)]
pub struct LisiWeights<'g> {
    graph: &'g KnnGraph,
    /// Row-major `[n × k]`; a row of NaN where every weight vanished.
    weights: Vec<f64>,
}

impl<'g> LisiWeights<'g> {
    /// Calibrates every cell (perplexity `⌊(k + 1)/3⌋`); errors when that is below 1.
    pub fn new(graph: &'g KnnGraph) -> Result<Self> {
        let perplexity = ((graph.k() + 1) / 3) as f64;
        if perplexity < 1.0 {
            return Err(Error::InvalidK {
                k: graph.k(),
                n: graph.n(),
            });
        }
        let mut weights = vec![0.0f64; graph.n() * graph.k()];
        weights
            .par_chunks_mut(graph.k())
            .enumerate()
            .for_each(|(i, row)| {
                let calibration = Calibration {
                    distances: graph.distances(i),
                    perplexity,
                    weights: row,
                };
                if !dispatch(calibration) {
                    row.fill(f64::NAN);
                }
            });
        Ok(Self { graph, weights })
    }

    /// Per-cell LISI of `labels` (see [`lisi`]).
    pub fn lisi(&self, labels: &[u32]) -> Result<PerCell> {
        check_labels(self.graph, labels, "labels")?;
        let Dense {
            codes,
            count: n_labels,
        } = dense(labels);
        let labels: &[u32] = &codes;
        let k = self.graph.k();
        let per_cell = self
            .weights
            .par_chunks(k)
            .enumerate()
            .map_init(
                || vec![0.0f64; n_labels],
                |sums, (i, row)| {
                    if row[0].is_nan() {
                        return -1.0; // every weight vanished, as scib-metrics reports
                    }
                    sums.iter_mut().for_each(|s| *s = 0.0);
                    for (&j, &p) in self.graph.neighbors(i).iter().zip(row) {
                        sums[labels[j as usize] as usize] += p;
                    }
                    1.0 / sums.iter().map(|s| s * s).sum::<f64>()
                },
            )
            .collect();
        Ok(PerCell::new(per_cell))
    }

    /// See [`ilisi`].
    pub fn ilisi(&self, batches: &[u32]) -> Result<f64> {
        Ok(self.ilisi_and_per_cell(batches)?.0)
    }

    /// See [`clisi`].
    pub fn clisi(&self, labels: &[u32]) -> Result<f64> {
        Ok(self.clisi_and_per_cell(labels)?.0)
    }

    /// [`Self::ilisi`] and the per-cell LISI of the batches it summarises, from one pass.
    pub(crate) fn ilisi_and_per_cell(&self, batches: &[u32]) -> Result<(f64, Vec<f64>)> {
        let n_batches = at_least_two(batches, "batches")?;
        let per_cell = self.lisi(batches)?.per_cell;
        Ok(((median(&per_cell) - 1.0) / (n_batches - 1) as f64, per_cell))
    }

    /// [`Self::clisi`] and the per-cell LISI of the labels it summarises, from one pass.
    pub(crate) fn clisi_and_per_cell(&self, labels: &[u32]) -> Result<(f64, Vec<f64>)> {
        let n_labels = at_least_two(labels, "labels")? as f64;
        let per_cell = self.lisi(labels)?.per_cell;
        Ok(((n_labels - median(&per_cell)) / (n_labels - 1.0), per_cell))
    }
}

/// One cell's neighbour weights, calibrated to the perplexity by bisection on β.
struct Calibration<'a> {
    distances: &'a [f64],
    perplexity: f64,
    weights: &'a mut [f64],
}

impl Vectorised for Calibration<'_> {
    /// Whether any weight is left (false when they all vanish).
    type Output = bool;

    /// Writes the calibrated weights.
    #[inline(always)]
    fn run(self) -> bool {
        calibrate(self.distances, self.perplexity, self.weights)
    }
}

#[inline(always)]
fn calibrate(distances: &[f64], perplexity: f64, weights: &mut [f64]) -> bool {
    let target = perplexity.ln();
    let (mut beta, mut low, mut high) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
    let mut h = entropy(distances, beta, weights);
    for _ in 0..MAX_TRIES {
        let diff = h - target;
        if diff.abs() < TOLERANCE {
            break;
        }
        if diff > 0.0 {
            low = beta;
            beta = if high == f64::INFINITY {
                beta * 2.0
            } else {
                (beta + high) / 2.0
            };
        } else {
            high = beta;
            beta = if low == f64::NEG_INFINITY {
                beta / 2.0
            } else {
                (beta + low) / 2.0
            };
        }
        h = entropy(distances, beta, weights);
    }
    h != 0.0
}

/// Entropy of `P ∝ exp(−β d)`, normalising `weights` to P (zero when all weights vanish).
#[inline(always)]
fn entropy(distances: &[f64], beta: f64, weights: &mut [f64]) -> f64 {
    for (w, &d) in weights.iter_mut().zip(distances) {
        *w = (-d * beta).fast_exp();
    }
    let total = lane_sum(weights);
    if total == 0.0 {
        return 0.0;
    }
    let weighted = lane_dot(distances, weights);
    weights.iter_mut().for_each(|w| *w /= total);
    total.ln() + beta * weighted / total
}

/// Median (mean of the two middle values for an even count), ignoring NaN.
fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len() / 2;
    if sorted.is_empty() {
        f64::NAN
    } else if sorted.len() % 2 == 1 {
        sorted[m]
    } else {
        (sorted[m - 1] + sorted[m]) / 2.0
    }
}
