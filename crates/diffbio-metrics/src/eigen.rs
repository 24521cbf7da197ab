//! Eigenpairs of largest magnitude of a symmetric sparse operator: dense for small graphs,
//! restarted Lanczos for large ones.

use faer::linalg::matmul::dot::inner_prod;
use faer::linalg::matmul::matmul;
use faer::linalg::solvers::SelfAdjointEigen;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Col, ColMut, ColRef, Conj, Mat, MatMut, MatRef, Par, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::sparse_graph::SparseGraph;

/// Residual tolerance of the iterative eigensolver (the operator's norm is 1).
const EIGEN_TOLERANCE: f64 = 1e-10;
/// Restarts of the iterative eigensolver at most.
const MAX_RESTARTS: usize = 2000;
/// Ritz pairs kept at a Lanczos restart beyond the wanted ones (keeping few leaves more
/// room for new directions: 100 wanted + 10 took 12 % less time than half the basis).
const RESTART_MARGIN: usize = 10;
/// A Lanczos residual norm below this is a breakdown (an invariant subspace).
const BREAKDOWN: f64 = 1e-12;

/// Every eigenpair of the (small) matrix, the `n_comps` largest in magnitude kept.
pub(crate) fn dense_eigen(
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
/// O(n·basis) memory. Bitwise the same on any number of threads: its products with the
/// basis run in fixed row chunks ([`product_by_rows`]).
pub(crate) fn lanczos_eigen(
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
        let mut vectors = Mat::<f64>::zeros(n, take);
        product_by_rows(
            vectors.as_mut(),
            Accum::Replace,
            v.as_ref().subcols(0, basis),
            ritz.as_ref(),
            1.0,
        );
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

/// One classical Gram–Schmidt pass: `c = vᵀw`, `w −= v c`; returns c. Each `c_k` is one
/// sequential dot product and the update runs in [`product_by_rows`]' fixed row chunks, so
/// that both round the same on any number of threads.
fn project_out(v: MatRef<'_, f64>, mut w: ColMut<'_, f64>) -> Col<f64> {
    let dots: Vec<f64> = (0..v.ncols())
        .into_par_iter()
        .map(|k| inner_prod(v.col(k).transpose(), Conj::No, w.rb(), Conj::No))
        .collect();
    let c = Col::from_fn(dots.len(), |k| dots[k]);
    product_by_rows(w.rb_mut().as_mat_mut(), Accum::Add, v, c.as_mat(), -1.0);
    c
}

/// Rows per parallel task of [`product_by_rows`].
const ROWS_PER_TASK: usize = 4096;

/// `out = α·a·b` (or `out += α·a·b`) for a tall `a`: sequential products of fixed chunks
/// of [`ROWS_PER_TASK`] rows in parallel, so that the result does not depend on the
/// number of threads (a product split over threads by the library would depend on it).
fn product_by_rows(
    out: MatMut<'_, f64>,
    accum: Accum,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    alpha: f64,
) {
    out.par_row_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(chunk, out)| {
            let rows = a.subrows(chunk * ROWS_PER_TASK, out.nrows());
            matmul(out, accum, rows, b, alpha, Par::Seq);
        });
}

#[cfg(test)]
mod tests {
    use super::{dense_eigen, lanczos_eigen, ROWS_PER_TASK};
    use crate::diffusion::{diffusion_map, transition_matrix, DENSE_EIGEN_LIMIT};
    use crate::umap::test_cloud;

    #[test]
    fn lanczos_and_dense_eigenpairs_agree() {
        let graph = test_cloud(DENSE_EIGEN_LIMIT + 400);
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

    #[test]
    fn lanczos_is_bitwise_independent_of_the_thread_count() {
        // Several row chunks of the basis products, the last one partial.
        let graph = test_cloud(2 * ROWS_PER_TASK + 300);
        let transition = transition_matrix(&graph);
        let bits_on = |threads: usize| -> Vec<u64> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (values, vectors) = pool
                .install(|| lanczos_eigen(&graph, &transition, 10))
                .unwrap();
            let vectors = vectors.col_iter().flat_map(|c| c.iter().copied());
            values
                .iter()
                .copied()
                .chain(vectors)
                .map(f64::to_bits)
                .collect()
        };
        let (one, three) = (bits_on(1), bits_on(3));
        assert_eq!(one.len(), three.len());
        // Values first, then the vectors column by column.
        let first_difference = one.iter().zip(&three).position(|(a, b)| a != b);
        assert_eq!(first_difference, None);
    }
}
