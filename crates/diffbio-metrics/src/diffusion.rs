//! The neighbourhood graphs kBET works on: UMAP's fuzzy connectivities of a kNN graph and
//! the diffusion-map embedding of a connectivity graph (scanpy's and scib-metrics'
//! constructions).

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::SelfAdjointEigen;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Col, ColMut, ColRef, Mat, MatRef, Par, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::neighbours::KnnGraph;
use crate::vector_math::{dispatch, lane_sum, FastExp, Vectorised};

/// UMAP's tolerance on the smooth-kNN bisection and its minimum bandwidth scale.
const SMOOTH_K_TOLERANCE: f64 = 1e-5;
const MIN_K_DIST_SCALE: f64 = 1e-3;
/// Bisection steps of UMAP's smooth kNN distance.
const SMOOTH_K_STEPS: usize = 64;
/// Below this many nodes the eigenproblem is solved densely.
const DENSE_EIGEN_LIMIT: usize = 500;
/// Residual tolerance of the iterative eigensolver (the operator's norm is 1).
const EIGEN_TOLERANCE: f64 = 1e-10;
/// Restarts of the iterative eigensolver at most.
const MAX_RESTARTS: usize = 2000;
/// Ritz pairs kept at a Lanczos restart beyond the wanted ones (keeping few leaves more
/// room for new directions: 100 wanted + 10 took 12 % less time than half the basis).
const RESTART_MARGIN: usize = 10;
/// A Lanczos residual norm below this is a breakdown (an invariant subspace).
const BREAKDOWN: f64 = 1e-12;

/// A symmetric sparse graph in compressed rows, without self-loops; 32-bit column indices
/// (a quarter less to stream per product with the diffusion operator).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SparseGraph {
    row_ptr: Vec<usize>,
    cols: Vec<u32>,
    weights: Vec<f64>,
}

impl SparseGraph {
    pub(crate) fn n(&self) -> usize {
        self.row_ptr.len() - 1
    }

    fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let span = self.row_ptr[i]..self.row_ptr[i + 1];
        (&self.cols[span.clone()], &self.weights[span])
    }

    /// The graph induced on `cells` (ascending), renumbered 0..cells.len().
    pub(crate) fn induced(&self, cells: &[usize]) -> Self {
        let mut position = vec![usize::MAX; self.n()];
        cells.iter().enumerate().for_each(|(p, &c)| position[c] = p);
        let mut graph = Self {
            row_ptr: vec![0],
            cols: Vec::new(),
            weights: Vec::new(),
        };
        for &c in cells {
            let (cols, weights) = self.row(c);
            for (&j, &w) in cols.iter().zip(weights) {
                let p = position[j as usize];
                if p != usize::MAX {
                    graph.cols.push(p as u32);
                    graph.weights.push(w);
                }
            }
            graph.row_ptr.push(graph.cols.len());
        }
        graph
    }

    /// The connected component of every node (numbered by first node) and their count.
    pub(crate) fn components(&self) -> (Vec<usize>, usize) {
        let mut component = vec![usize::MAX; self.n()];
        let mut count = 0;
        let mut stack = Vec::new();
        for start in 0..self.n() {
            if component[start] != usize::MAX {
                continue;
            }
            component[start] = count;
            stack.push(start);
            while let Some(i) = stack.pop() {
                for &j in self.row(i).0 {
                    let j = j as usize;
                    if component[j] == usize::MAX {
                        component[j] = count;
                        stack.push(j);
                    }
                }
            }
            count += 1;
        }
        (component, count)
    }
}

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

/// scib-metrics' diffusion map of a connectivity graph (scanpy's `_compute_transitions` and
/// `_compute_eigen`): the density-normalised kernel `K = Q⁻¹ W Q⁻¹` (q = degrees), its
/// symmetric transition matrix `T = Z⁻¹ K Z⁻¹` (z = √ row sums of K), the `n_comps`
/// eigenpairs of largest |λ|, and each eigenvector scaled by `λ/(1 − λ)` (by 1 for λ = 1),
/// with scib's `λ + 1e-8` and its float32 rounding of λ. Rows are cells, row-major
/// `[n × n_comps]`.
pub(crate) fn diffusion_map(graph: &SparseGraph, n_comps: usize) -> Result<Vec<f64>> {
    let n = graph.n();
    let transition = transition_matrix(graph);
    let (values, vectors) = if n <= DENSE_EIGEN_LIMIT {
        dense_eigen(graph, &transition, n_comps)?
    } else {
        lanczos_eigen(graph, &transition, n_comps)?
    };
    let scales: Vec<f64> = values
        .iter()
        .map(|&value| {
            let shifted = value as f32 + 1e-8f32;
            f64::from(if shifted == 1.0 {
                shifted
            } else {
                shifted / (1.0 - shifted)
            })
        })
        .collect();
    Ok((0..n)
        .flat_map(|i| (0..values.len()).map(move |c| (i, c)))
        .map(|(i, c)| vectors[(i, c)] * scales[c])
        .collect())
}

/// The symmetric transition matrix `T = Z⁻¹ Q⁻¹ W Q⁻¹ Z⁻¹` of [`diffusion_map`], its values
/// in the graph's compressed-row order.
fn transition_matrix(graph: &SparseGraph) -> Vec<f64> {
    let n = graph.n();
    let degree: Vec<f64> = (0..n).map(|i| graph.row(i).1.iter().sum()).collect();
    let kernel_sums: Vec<f64> = (0..n)
        .map(|i| {
            let (cols, w) = graph.row(i);
            cols.iter()
                .zip(w)
                .map(|(&j, &wij)| wij / (degree[i] * degree[j as usize]))
                .sum::<f64>()
        })
        .collect();
    let scale: Vec<f64> = (0..n)
        .map(|i| 1.0 / (degree[i] * kernel_sums[i].sqrt()))
        .collect();
    (0..n)
        .flat_map(|i| {
            let (cols, w) = graph.row(i);
            let scale = &scale;
            cols.iter()
                .zip(w)
                .map(move |(&j, &wij)| wij * scale[i] * scale[j as usize])
        })
        .collect()
}

/// Every eigenpair of the (small) matrix, the `n_comps` largest in magnitude kept.
fn dense_eigen(
    graph: &SparseGraph,
    transition: &[f64],
    n_comps: usize,
) -> Result<(Vec<f64>, Mat<f64>)> {
    let n = graph.n();
    let mut dense = Mat::<f64>::zeros(n, n);
    for i in 0..n {
        let span = graph.row_ptr[i]..graph.row_ptr[i + 1];
        for (&j, &t) in graph.cols[span.clone()].iter().zip(&transition[span]) {
            dense[(i, j as usize)] = t;
        }
    }
    let (eigen, mut order) =
        eigen_by_magnitude(&dense, "dense eigendecomposition of the diffusion operator")?;
    let values = eigen.S().column_vector();
    order.truncate(n_comps);
    Ok((
        order.iter().map(|&c| values[c]).collect(),
        Mat::from_fn(n, order.len(), |i, c| eigen.U()[(i, order[c])]),
    ))
}

/// The `n_comps` eigenpairs of largest magnitude of the sparse symmetric `transition`, by
/// restarted Lanczos with full reorthogonalisation (the symmetric Krylov–Schur method,
/// Stewart 2002; what ARPACK's `eigsh(which="LM")` computes): a Krylov basis of
/// `2·n_comps + 20` vectors, the Ritz pairs of its projection, a restart from the best
/// `n_comps + 10`, until every wanted Ritz pair's residual `|β·s_m|` is below 1e-10 (|T| ≤ 1).
/// O(n·basis) memory.
fn lanczos_eigen(
    graph: &SparseGraph,
    transition: &[f64],
    n_comps: usize,
) -> Result<(Vec<f64>, Mat<f64>)> {
    let n = graph.n();
    let basis = (2 * n_comps + 20).min(n - 1);
    let restart = n_comps + RESTART_MARGIN;
    let apply = |x: ColRef<'_, f64>, y: ColMut<'_, f64>| {
        let x = x.try_as_col_major().expect("contiguous").as_slice();
        let y = y.try_as_col_major_mut().expect("contiguous").as_slice_mut();
        y.par_iter_mut()
            .enumerate()
            .with_min_len(256)
            .for_each(|(i, yi)| {
                let span = graph.row_ptr[i]..graph.row_ptr[i + 1];
                *yi = graph.cols[span.clone()]
                    .iter()
                    .zip(&transition[span])
                    .map(|(&j, &t)| t * x[j as usize])
                    .sum();
            });
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut v = Mat::<f64>::zeros(n, basis + 1);
    let mut h = Mat::<f64>::zeros(basis, basis);
    let mut w = Col::<f64>::zeros(n);
    v.col_mut(0)
        .iter_mut()
        .for_each(|x| *x = rng.random::<f64>() - 0.5);
    normalise(v.col_mut(0));
    let mut kept = 0;
    for _ in 0..MAX_RESTARTS {
        let mut beta = 0.0;
        for j in kept..basis {
            apply(v.col(j), w.as_mut());
            // The three-term recurrence first (the last two vectors, O(n)), so that the full
            // pass over the basis only removes rounding and usually needs no repeat.
            let recent = j.saturating_sub(1).max(kept);
            let local = project_out(v.as_ref().subcols(recent, j + 1 - recent), w.as_mut());
            let (mut coefficients, norm) = orthogonalise(v.as_ref().subcols(0, j + 1), w.as_mut());
            for (t, c) in local.iter().enumerate() {
                coefficients[recent + t] += c;
            }
            h.col_mut(j).subrows_mut(0, j + 1).copy_from(&coefficients);
            beta = norm;
            if beta < BREAKDOWN {
                // An invariant subspace: continue from a fresh direction, coupling 0.
                w.iter_mut().for_each(|x| *x = rng.random::<f64>() - 0.5);
                orthogonalise(v.as_ref().subcols(0, j + 1), w.as_mut());
                beta = 0.0;
            }
            let norm = w.norm_l2();
            v.col_mut(j + 1).copy_from(&w);
            v.col_mut(j + 1).iter_mut().for_each(|x| *x /= norm);
        }
        // The projection H = Vᵀ T V is symmetric: its upper triangle was computed.
        let projected = Mat::<f64>::from_fn(basis, basis, |i, j| h[(i.min(j), i.max(j))]);
        let (eigen, order) =
            eigen_by_magnitude(&projected, "eigendecomposition of the Lanczos projection")?;
        let values = eigen.S().column_vector();
        let residual = |c: usize| (beta * eigen.U()[(basis - 1, c)]).abs();
        let done = order[..n_comps]
            .iter()
            .all(|&c| residual(c) <= EIGEN_TOLERANCE);
        let take = if done { n_comps } else { restart };
        let ritz = Mat::<f64>::from_fn(basis, take, |i, c| eigen.U()[(i, order[c])]);
        let vectors = v.as_ref().subcols(0, basis) * &ritz;
        if done {
            return Ok((
                order[..n_comps].iter().map(|&c| values[c]).collect(),
                vectors,
            ));
        }
        // Restart: the kept Ritz vectors, then the residual direction.
        let next = v.col(basis).to_owned();
        v.as_mut().subcols_mut(0, take).copy_from(&vectors);
        v.col_mut(take).copy_from(&next);
        h.fill(0.0);
        for c in 0..take {
            h[(c, c)] = values[order[c]];
        }
        kept = take;
    }
    Err(Error::NoConvergence {
        what: "Lanczos eigensolver of the diffusion operator",
    })
}

/// The eigendecomposition of a symmetric matrix and its eigenvalues' indices by
/// decreasing magnitude.
fn eigen_by_magnitude(
    matrix: &Mat<f64>,
    what: &'static str,
) -> Result<(SelfAdjointEigen<f64>, Vec<usize>)> {
    let eigen = matrix
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| Error::NoConvergence { what })?;
    let values = eigen.S().column_vector();
    let mut order: Vec<usize> = (0..matrix.nrows()).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
    Ok((eigen, order))
}

fn normalise(x: ColMut<'_, f64>) {
    let norm = x.norm_l2();
    x.iter_mut().for_each(|v| *v /= norm);
}

/// Classical Gram–Schmidt of `w` against the orthonormal columns of `v`, repeated once
/// when a pass removed more than 1 − 0.717 of w's norm (the DGKS criterion as ARPACK
/// applies it; "twice is enough"): the coefficients and the norm left.
fn orthogonalise(v: MatRef<'_, f64>, mut w: ColMut<'_, f64>) -> (Col<f64>, f64) {
    const DGKS: f64 = 0.717;
    let mut norm = w.norm_l2();
    let mut coefficients = Col::<f64>::zeros(v.ncols());
    for _ in 0..2 {
        coefficients += project_out(v, w.rb_mut());
        let before = norm;
        norm = w.norm_l2();
        if norm >= DGKS * before {
            break;
        }
    }
    (coefficients, norm)
}

/// One classical Gram–Schmidt pass: `c = vᵀw`, `w −= v c`; returns c.
fn project_out(v: MatRef<'_, f64>, mut w: ColMut<'_, f64>) -> Col<f64> {
    let mut c = Col::<f64>::zeros(v.ncols());
    matmul(
        c.as_mut(),
        Accum::Replace,
        v.transpose(),
        w.rb(),
        1.0,
        Par::rayon(0),
    );
    matmul(w.rb_mut(), Accum::Add, v, c.as_ref(), -1.0, Par::rayon(0));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbours::knn;

    /// Connectivities of a seeded cloud large enough for the iterative eigensolver.
    fn cloud(n: usize) -> SparseGraph {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x: Vec<f64> = (0..n * 3).map(|_| rng.random::<f64>()).collect();
        umap_connectivities(&knn(&x, 3, 14).unwrap())
    }

    #[test]
    fn connectivities_are_symmetric_fuzzy_unions() {
        let graph = cloud(300);
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

    #[test]
    fn lanczos_and_dense_eigenpairs_agree() {
        let graph = cloud(DENSE_EIGEN_LIMIT + 400);
        let map = diffusion_map(&graph, 1).unwrap(); // the top component: λ = 1
        assert_eq!(map.len(), graph.n());
        let transition = transition_matrix(&graph);
        let (dense_values, dense_vectors) = dense_eigen(&graph, &transition, 40).unwrap();
        let (values, vectors) = lanczos_eigen(&graph, &transition, 40).unwrap();
        assert!((dense_values[0] - 1.0).abs() < 1e-12);
        for c in 0..40 {
            assert!((values[c] - dense_values[c]).abs() < 1e-9, "eigenvalue {c}");
            let overlap: f64 = (0..graph.n())
                .map(|i| vectors[(i, c)] * dense_vectors[(i, c)])
                .sum();
            assert!(
                (overlap.abs() - 1.0).abs() < 1e-6,
                "eigenvector {c}: {overlap}"
            );
        }
    }
}
