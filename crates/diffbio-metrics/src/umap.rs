//! UMAP's fuzzy connectivities of a kNN graph (scanpy's and scib-metrics' construction).

use diffbio_pairwise::{dispatch, lane_sum, FastExp, Vectorised};
use rayon::prelude::*;

use crate::knn::KnnGraph;
use crate::sparse_graph::SparseGraph;

/// UMAP's tolerance on the smooth-kNN bisection and its minimum bandwidth scale.
const SMOOTH_K_TOLERANCE: f64 = 1e-5;
const MIN_K_DIST_SCALE: f64 = 1e-3;
/// Bisection steps of UMAP's smooth kNN distance.
const SMOOTH_K_STEPS: usize = 64;

/// UMAP's fuzzy simplicial set of a kNN graph (`umap.fuzzy_simplicial_set` with
/// `local_connectivity = 1`, `set_op_mix_ratio = 1`), as scib-metrics builds
/// `knn_graph_connectivities` from a graph of k neighbours *counting the cell itself*
/// (`graph.k() + 1` here): per cell `ρ_i` = the nearest non-zero distance and `σ_i` by
/// bisection so that `Σ_j exp(−max(0, d_ij − ρ_i)/σ_i) = log2(k + 1)`; memberships
/// `a_ij = exp(−max(0, d_ij − ρ_i)/σ_i)`; symmetrised `w_ij = a_ij + a_ji − a_ij a_ji`.
/// Distances are rounded to f32 first, as UMAP does.
pub(crate) fn umap_connectivities(graph: &KnnGraph) -> SparseGraph {
    let n = graph.n();
    let k = graph.k();
    let rounded = |i: usize| -> Vec<f64> {
        graph
            .distances(i)
            .iter()
            .map(|&d| f64::from(d as f32))
            .collect()
    };
    // UMAP's mean over all rows includes each cell's zero distance to itself.
    let mean_distance =
        (0..n).map(|i| rounded(i).iter().sum::<f64>()).sum::<f64>() / (n * (k + 1)) as f64;
    let target = ((k + 1) as f64).log2();
    let memberships: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let d = rounded(i);
            let rho = d.iter().copied().find(|&v| v > 0.0).unwrap_or(0.0);
            let sigma = smooth_knn_sigma(&d, rho, target, mean_distance, k + 1);
            d.iter()
                .map(|&dij| {
                    if dij - rho <= 0.0 || sigma == 0.0 {
                        1.0
                    } else {
                        (-(dij - rho) / sigma).exp()
                    }
                })
                .collect()
        })
        .collect();
    symmetric_union(graph, &memberships)
}

/// `w_ij = a_ij + a_ji − a_ij a_ji` of the directed memberships `a` (row i: cell i's
/// neighbours), in compressed rows sorted by column: each row merges the cell's own
/// neighbours with the cells that have it as a neighbour (the transpose, by counting).
fn symmetric_union(graph: &KnnGraph, memberships: &[Vec<f64>]) -> SparseGraph {
    let n = graph.n();
    let mut incoming_ptr = vec![0usize; n + 1];
    (0..n).for_each(|i| {
        graph
            .neighbors(i)
            .iter()
            .for_each(|&j| incoming_ptr[j + 1] += 1)
    });
    for j in 0..n {
        incoming_ptr[j + 1] += incoming_ptr[j];
    }
    let mut fill = incoming_ptr.clone();
    let mut incoming = vec![(0usize, 0.0f64); incoming_ptr[n]];
    for (i, row) in memberships.iter().enumerate() {
        for (&j, &a) in graph.neighbors(i).iter().zip(row) {
            incoming[fill[j]] = (i, a); // rows i ascending: each list is sorted
            fill[j] += 1;
        }
    }
    let rows: Vec<Vec<(usize, f64)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut own: Vec<(usize, f64)> = graph
                .neighbors(i)
                .iter()
                .copied()
                .zip(memberships[i].iter().copied())
                .collect();
            own.sort_unstable_by_key(|e| e.0);
            let other = &incoming[incoming_ptr[i]..incoming_ptr[i + 1]];
            let mut merged = Vec::with_capacity(own.len() + other.len());
            let (mut p, mut q) = (0, 0);
            while p < own.len() || q < other.len() {
                let (j, forward, backward) = match (own.get(p), other.get(q)) {
                    (Some(a), Some(b)) if a.0 == b.0 => {
                        p += 1;
                        q += 1;
                        (a.0, a.1, b.1)
                    }
                    (Some(a), Some(b)) if a.0 < b.0 => {
                        p += 1;
                        (a.0, a.1, 0.0)
                    }
                    (Some(a), None) => {
                        p += 1;
                        (a.0, a.1, 0.0)
                    }
                    (_, Some(b)) => {
                        q += 1;
                        (b.0, 0.0, b.1)
                    }
                    (None, None) => unreachable!("loop condition"),
                };
                let w = forward + backward - forward * backward;
                if w != 0.0 {
                    merged.push((j, w));
                }
            }
            merged
        })
        .collect();
    let mut row_ptr = Vec::with_capacity(n + 1);
    row_ptr.push(0);
    let mut cols = Vec::new();
    let mut weights = Vec::new();
    for row in rows {
        for (j, w) in row {
            cols.push(u32::try_from(j).expect("fewer than 2^32 cells"));
            weights.push(w);
        }
        row_ptr.push(cols.len());
    }
    SparseGraph {
        row_ptr,
        cols,
        weights,
    }
}

/// One cell's fuzzy memberships `exp(−max(0, d − ρ)/σ)` (exactly 1 where d ≤ ρ).
struct Memberships<'a> {
    distances: &'a [f64],
    rho: f64,
    sigma: f64,
    memberships: &'a mut [f64],
}

impl Vectorised for Memberships<'_> {
    /// The memberships' sum.
    type Output = f64;

    #[inline(always)]
    fn run(self) -> f64 {
        for (m, &d) in self.memberships.iter_mut().zip(self.distances) {
            *m = (-((d - self.rho).max(0.0) / self.sigma)).fast_exp();
        }
        lane_sum(self.memberships)
    }
}

/// UMAP's `smooth_knn_dist` bandwidth for one cell's neighbour distances (self excluded).
fn smooth_knn_sigma(d: &[f64], rho: f64, target: f64, mean_distance: f64, k: usize) -> f64 {
    let (mut lo, mut hi, mut mid) = (0.0f64, f64::from(f32::MAX), 1.0f64);
    let mut memberships = vec![0.0f64; d.len()];
    for _ in 0..SMOOTH_K_STEPS {
        let psum = dispatch(Memberships {
            distances: d,
            rho,
            sigma: mid,
            memberships: &mut memberships,
        });
        if (psum - target).abs() < SMOOTH_K_TOLERANCE {
            break;
        }
        if psum > target {
            hi = mid;
            mid = (lo + hi) / 2.0;
        } else {
            lo = mid;
            mid = if hi >= f64::from(f32::MAX) {
                mid * 2.0
            } else {
                (lo + hi) / 2.0
            };
        }
    }
    let sigma = f64::from(mid as f32);
    // The row mean counts the cell's own zero distance, as UMAP's does.
    let floor = if rho > 0.0 {
        MIN_K_DIST_SCALE * d.iter().sum::<f64>() / k as f64
    } else {
        MIN_K_DIST_SCALE * mean_distance
    };
    sigma.max(floor)
}

/// Connectivities of a seeded cloud of `n` cells in 3 dimensions (14 neighbours): a graph
/// for the tests of the code built on it.
#[cfg(test)]
pub(crate) fn test_cloud(n: usize) -> SparseGraph {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f64> = (0..n * 3).map(|_| rng.random::<f64>()).collect();
    umap_connectivities(&crate::knn::knn(&x, 3, 14).unwrap())
}

#[cfg(test)]
mod tests {
    use super::test_cloud;

    #[test]
    fn connectivities_are_symmetric_fuzzy_unions() {
        let graph = test_cloud(300);
        for i in 0..graph.n() {
            let (cols, weights) = graph.row(i);
            for (j, &w) in cols.iter().map(|&j| j as usize).zip(weights) {
                assert!(j != i && w > 0.0 && w <= 1.0);
                let (back, back_w) = graph.row(j);
                let p = back
                    .iter()
                    .position(|&c| c as usize == i)
                    .expect("symmetric");
                assert_eq!(back_w[p], w);
            }
        }
        assert_eq!(graph.components().1, 1);
    }
}
