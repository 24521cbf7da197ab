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
    // Row-major `[n × k]`: cell i's memberships of its neighbours.
    let mut memberships = vec![0.0f64; n * k];
    memberships
        .par_chunks_mut(k)
        .enumerate()
        .for_each(|(i, row)| {
            let d = rounded(i);
            let rho = d.iter().copied().find(|&v| v > 0.0).unwrap_or(0.0);
            let sigma = smooth_knn_sigma(&d, rho, target, mean_distance, k + 1);
            for (a, &dij) in row.iter_mut().zip(&d) {
                *a = if dij - rho <= 0.0 || sigma == 0.0 {
                    1.0
                } else {
                    (-(dij - rho) / sigma).exp()
                };
            }
        });
    FuzzyUnion::new(graph, &memberships).compressed()
}

/// Rows per parallel task when the union's rows are written.
const UNION_ROWS_PER_TASK: usize = 4096;

/// `w_ij = a_ij + a_ji − a_ij a_ji` of the directed memberships `a` (row-major `[n × k]`,
/// row i: cell i's neighbours): each row merges the cell's own neighbours with the cells
/// that have it as a neighbour (the transpose, by counting). The rows are merged twice,
/// once to count and once to write, so that the compressed rows are allocated once at
/// their size (at a million cells, rows collected first took gigabytes more).
struct FuzzyUnion<'a> {
    graph: &'a KnnGraph,
    memberships: &'a [f64],
    /// Cell j's incoming memberships `incoming[incoming_ptr[j]..incoming_ptr[j + 1]]`,
    /// each an index into `memberships` (`i·k + p`), ascending in i.
    incoming_ptr: Vec<usize>,
    incoming: Vec<usize>,
}

impl<'a> FuzzyUnion<'a> {
    fn new(graph: &'a KnnGraph, memberships: &'a [f64]) -> Self {
        let (n, k) = (graph.n(), graph.k());
        let mut incoming_ptr = vec![0usize; n + 1];
        (0..n).for_each(|i| {
            graph
                .neighbors(i)
                .iter()
                .for_each(|&j| incoming_ptr[j as usize + 1] += 1)
        });
        for j in 0..n {
            incoming_ptr[j + 1] += incoming_ptr[j];
        }
        let mut fill = incoming_ptr.clone();
        let mut incoming = vec![0usize; incoming_ptr[n]];
        for i in 0..n {
            for (p, &j) in graph.neighbors(i).iter().enumerate() {
                let j = j as usize;
                incoming[fill[j]] = i * k + p; // rows i ascending: each list is sorted
                fill[j] += 1;
            }
        }
        Self {
            graph,
            memberships,
            incoming_ptr,
            incoming,
        }
    }

    /// Row i's non-zero `(j, w_ij)`, by ascending j; `own` is scratch space.
    fn row(&self, i: usize, own: &mut Vec<(usize, f64)>, mut emit: impl FnMut(usize, f64)) {
        let k = self.graph.k();
        own.clear();
        own.extend(
            self.graph
                .neighbors(i)
                .iter()
                .map(|&j| j as usize)
                .zip(self.memberships[i * k..(i + 1) * k].iter().copied()),
        );
        own.sort_unstable_by_key(|e| e.0);
        let other = &self.incoming[self.incoming_ptr[i]..self.incoming_ptr[i + 1]];
        let other = |q: usize| other.get(q).map(|&e| (e / k, self.memberships[e]));
        let (mut p, mut q) = (0, 0);
        loop {
            let (j, forward, backward) = match (own.get(p), other(q)) {
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
                (None, None) => return,
            };
            let w = forward + backward - forward * backward;
            if w != 0.0 {
                emit(j, w);
            }
        }
    }

    /// The union in compressed rows sorted by column.
    fn compressed(&self) -> SparseGraph {
        let n = self.graph.n();
        let mut lengths = vec![0usize; n];
        lengths
            .par_chunks_mut(UNION_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(task, lengths)| {
                let mut own = Vec::new();
                for (r, length) in lengths.iter_mut().enumerate() {
                    self.row(task * UNION_ROWS_PER_TASK + r, &mut own, |_, _| {
                        *length += 1
                    });
                }
            });
        let mut row_ptr = Vec::with_capacity(n + 1);
        row_ptr.push(0);
        for length in lengths {
            row_ptr.push(row_ptr.last().copied().unwrap_or(0) + length);
        }
        let mut cols = vec![0u32; row_ptr[n]];
        let mut weights = vec![0.0f64; row_ptr[n]];
        // Each task's rows and their disjoint spans of the entries.
        let mut tasks = Vec::new();
        let (mut cols_left, mut weights_left) = (cols.as_mut_slice(), weights.as_mut_slice());
        for first in (0..n).step_by(UNION_ROWS_PER_TASK) {
            let rows = first..(first + UNION_ROWS_PER_TASK).min(n);
            let entries = row_ptr[rows.end] - row_ptr[rows.start];
            let (c, rest_c) = cols_left.split_at_mut(entries);
            let (w, rest_w) = weights_left.split_at_mut(entries);
            (cols_left, weights_left) = (rest_c, rest_w);
            tasks.push((rows, c, w));
        }
        tasks.into_par_iter().for_each(|(rows, cols, weights)| {
            let mut own = Vec::new();
            let mut at = 0;
            for i in rows {
                self.row(i, &mut own, |j, w| {
                    cols[at] = u32::try_from(j).expect("fewer than 2^32 cells");
                    weights[at] = w;
                    at += 1;
                });
            }
        });
        SparseGraph {
            row_ptr,
            cols,
            weights,
        }
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
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};

    use super::{test_cloud, FuzzyUnion, UNION_ROWS_PER_TASK};

    #[test]
    fn the_union_is_the_fuzzy_or_of_both_directions() {
        // Rows of several tasks (the last one partial); some memberships exactly 0, so that
        // pairs of two zero memberships must be left out.
        let n = 2 * UNION_ROWS_PER_TASK + 123;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let x: Vec<f64> = (0..n * 2).map(|_| rng.random::<f64>()).collect();
        let graph = crate::knn::knn(&x, 2, 6).unwrap();
        let memberships: Vec<f64> = (0..n * 6)
            .map(|_| {
                if rng.random::<f64>() < 0.2 {
                    0.0
                } else {
                    rng.random::<f64>()
                }
            })
            .collect();
        // The reference: a map of both directions' memberships of every pair.
        let mut pairs: BTreeMap<(usize, usize), (f64, f64)> = BTreeMap::new();
        for i in 0..n {
            for (p, &j) in graph.neighbors(i).iter().enumerate() {
                let (j, a) = (j as usize, memberships[i * 6 + p]);
                pairs.entry((i, j)).or_insert((0.0, 0.0)).0 = a;
                pairs.entry((j, i)).or_insert((0.0, 0.0)).1 = a;
            }
        }
        let mut want: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for (&(i, j), &(forward, backward)) in &pairs {
            let w = forward + backward - forward * backward;
            if w != 0.0 {
                want[i].push((j as u32, w));
            }
        }
        let union = FuzzyUnion::new(&graph, &memberships).compressed();
        assert_eq!(union.n(), n);
        for (i, want) in want.iter().enumerate() {
            let (cols, weights) = union.row(i);
            let got: Vec<(u32, f64)> = cols.iter().copied().zip(weights.iter().copied()).collect();
            assert_eq!(&got, want, "row {i}");
        }
    }

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
