//! Eigenpairs of largest magnitude of a symmetric sparse operator: dense for small graphs,
//! restarted Lanczos for large ones.

use diffbio_pairwise::{dispatch, LaneSums, Vectorised, LANES};
use faer::linalg::matmul::dot::inner_prod;
use faer::linalg::matmul::matmul;
use faer::linalg::solvers::SelfAdjointEigen;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Col, ColMut, ColRef, Conj, Mat, MatMut, MatRef, Par, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::sliced_ell::SlicedEll;
use crate::sparse_graph::SparseGraph;

/// Residual tolerance of the iterative eigensolver (the operator's norm is 1).
const EIGEN_TOLERANCE: f64 = 1e-10;
/// Restarts of the iterative eigensolver at most.
const MAX_RESTARTS: usize = 2000;
/// Ritz pairs kept at a Lanczos restart beyond the wanted ones (keeping few leaves more
/// room for new directions: 100 wanted + 10 took 12 % less time than half the basis).
const RESTART_MARGIN: usize = 10;
/// A Gram–Schmidt pass that leaves less than this share of the vector's norm is repeated
/// (the DGKS criterion as ARPACK applies it; "twice is enough").
const DGKS: f64 = 0.717;
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

/// The `n_comps` eigenpairs of largest magnitude of the sparse symmetric `operator`, by
/// restarted Lanczos with full reorthogonalisation (the symmetric Krylov–Schur method,
/// Stewart 2002; what ARPACK's `eigsh(which="LM")` computes): a Krylov basis of
/// `2·n_comps + 20` vectors, the Ritz pairs of its projection, a restart from the best
/// `n_comps + 10`, until every wanted Ritz pair's residual `|β·s_m|` is below 1e-10 (|T| ≤ 1).
/// Each step reads the basis once ([`recurrence_step`]): the rounding a step leaves along
/// the basis is subtracted in the next step's pass. O(n·basis) memory. Bitwise the same on
/// any number of threads: its products with the basis run in fixed row chunks
/// ([`product_by_rows`], [`correct_and_project`]), and each entry of a product with the
/// operator is one sequential sum ([`SlicedEll::product`]).
pub(crate) fn lanczos_eigen(operator: &SlicedEll, n_comps: usize) -> Result<(Vec<f64>, Mat<f64>)> {
    let n = operator.n();
    let basis = (2 * n_comps + 20).min(n - 1);
    let restart = n_comps + RESTART_MARGIN;
    let apply = |x: ColRef<'_, f64>, y: ColMut<'_, f64>| {
        operator.product(
            x.try_as_col_major().expect("contiguous").as_slice(),
            y.try_as_col_major_mut().expect("contiguous").as_slice_mut(),
        );
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
        // v_j's subtraction of its rounding components along the basis before it, deferred
        // to step j's pass over the basis ([`recurrence_step`]).
        let mut deferred: Option<Col<f64>> = None;
        for j in kept..basis {
            apply(v.col(j), w.as_mut());
            let coefficients = if j == kept {
                // After a restart the new vector couples to every kept Ritz vector.
                let (coefficients, norm) = orthogonalise(v.as_ref().subcols(0, j + 1), w.as_mut());
                beta = norm;
                coefficients
            } else {
                let step = recurrence_step(
                    v.as_mut().subcols_mut(0, j + 1),
                    h.as_ref(),
                    beta,
                    deferred.take(),
                    w.as_mut(),
                );
                beta = step.beta;
                deferred = step.deferred;
                step.coefficients
            };
            h.col_mut(j).subrows_mut(0, j + 1).copy_from(&coefficients);
            if beta < BREAKDOWN {
                // An invariant subspace: continue from a fresh direction, coupling 0.
                deferred = None;
                w.iter_mut().for_each(|x| *x = rng.random::<f64>() - 0.5);
                orthogonalise(v.as_ref().subcols(0, j + 1), w.as_mut());
                beta = 0.0;
            }
            // With a deferred correction w's norm is not yet β_j: v_{j+1} = w / β_j − V p.
            let norm = if deferred.is_some() {
                beta
            } else {
                w.norm_l2()
            };
            v.col_mut(j + 1).copy_from(&w);
            v.col_mut(j + 1).iter_mut().for_each(|x| *x /= norm);
        }
        if let Some(correction) = deferred {
            let (older, mut newest) = v.as_mut().split_at_col_mut(basis);
            product_by_rows(
                newest.rb_mut(),
                Accum::Add,
                older.rb(),
                correction.as_mat(),
                -1.0,
            );
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
        ritz_vectors_in_place(v.as_mut(), ritz.as_ref());
        if done {
            v.truncate(n, n_comps);
            return Ok((order[..n_comps].iter().map(|&c| values[c]).collect(), v));
        }
        // Restart: the kept Ritz vectors, then the residual direction.
        let next = v.col(basis).to_owned();
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

/// Step j > kept of the restarted Lanczos recurrence, given `w = T v_j`.
struct Step {
    /// Column j of the projection: the coefficients removed from `T v_j`.
    coefficients: Col<f64>,
    /// β_j, the norm of what is left: `v_{j+1}`'s coupling.
    beta: f64,
    /// `v_{j+1}`'s components along `v_0..=v_j` (rounding), to subtract at step j + 1;
    /// `None` when they were subtracted at once.
    deferred: Option<Col<f64>>,
}

/// Step j > kept of the Lanczos recurrence: the three-term recurrence (the last two
/// vectors, O(n)), then one pass over the basis ([`correct_and_project`]) that subtracts
/// `v_j`'s deferred components `p` along the earlier vectors and measures `c = Vᵀ w`, what
/// is left of the basis in `w`: rounding, so its subtraction `w − V c` is deferred in turn
/// (DGKS: unless it removes more than 1 − 0.717 of w's norm). Full reorthogonalisation
/// reading the basis once per step instead of twice.
///
/// `T` was applied to `v_j` before its correction: `T V_{<j} p = V q` through the relation
/// of the earlier columns (`T v_k = Σ_i P_ik v_i`, P the projection so far, symmetric), so
/// the projection's column j is `c` plus the three-term coefficients, less `q`, plus the
/// diagonal coefficient times `p` (it was measured against the uncorrected `v_j`).
fn recurrence_step(
    mut v: MatMut<'_, f64>,
    h: MatRef<'_, f64>,
    previous_beta: f64,
    deferred: Option<Col<f64>>,
    mut w: ColMut<'_, f64>,
) -> Step {
    let j = v.ncols() - 1;
    let local = project_out(v.as_ref().subcols(j - 1, 2), w.rb_mut());
    let relation = deferred.as_ref().map(|p| {
        let projection = |i: usize, k: usize| h[(i.min(k), i.max(k))];
        Col::<f64>::from_fn(j + 1, |i| {
            if i == j {
                previous_beta * p[j - 1]
            } else {
                (0..j).map(|k| projection(i, k) * p[k]).sum::<f64>()
            }
        })
    });
    let mut coefficients = correct_and_project(v.rb_mut(), deferred.as_ref(), w.rb());
    let before = w.norm_l2();
    let left = (before * before - coefficients.squared_norm_l2())
        .max(0.0)
        .sqrt();
    let (beta, next) = if left >= DGKS * before {
        (left, Some(&coefficients / left))
    } else {
        product_by_rows(
            w.rb_mut().as_mat_mut(),
            Accum::Add,
            v.as_ref(),
            coefficients.as_mat(),
            -1.0,
        );
        let (again, norm) = orthogonalise(v.as_ref(), w.rb_mut());
        coefficients += again;
        (norm, None)
    };
    coefficients[j - 1] += local[0];
    coefficients[j] += local[1];
    if let (Some(p), Some(q)) = (deferred, relation) {
        for k in 0..j {
            coefficients[k] += local[1] * p[k];
        }
        coefficients -= q;
    }
    Step {
        coefficients,
        beta,
        deferred: next,
    }
}

/// The pass over the basis `v_0..=v_j` of a Lanczos step: `v_j −= V_{<j} p` (its deferred
/// correction), then `c = Vᵀ w` with the corrected `v_j`, reading each row chunk of the
/// basis once for both. Partial products of fixed [`ROWS_PER_TASK`] chunks are added in
/// chunk order, so the result does not depend on the number of threads.
fn correct_and_project(
    v: MatMut<'_, f64>,
    deferred: Option<&Col<f64>>,
    w: ColRef<'_, f64>,
) -> Col<f64> {
    let j = v.ncols() - 1;
    let (older, mut newest) = v.split_at_col_mut(j);
    let older = older.rb();
    let newest = newest
        .rb_mut()
        .col_mut(0)
        .try_as_col_major_mut()
        .expect("contiguous")
        .as_slice_mut();
    let w = w.try_as_col_major().expect("contiguous").as_slice();
    let deferred = deferred.map(|p| p.try_as_col_major().expect("contiguous").as_slice());
    let partial: Vec<Vec<f64>> = newest
        .par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .map(|(chunk, newest)| {
            let start = chunk * ROWS_PER_TASK;
            dispatch(CorrectAndProject {
                older: older.subrows(start, newest.len()),
                deferred,
                w: &w[start..start + newest.len()],
                newest,
            })
        })
        .collect();
    Col::from_fn(j + 1, |k| partial.iter().map(|dots| dots[k]).sum())
}

/// One row chunk of [`correct_and_project`], compiled for the CPU's SIMD width (the same
/// operations in the same order on every width).
struct CorrectAndProject<'a> {
    older: MatRef<'a, f64>,
    deferred: Option<&'a [f64]>,
    w: &'a [f64],
    newest: &'a mut [f64],
}

impl Vectorised for CorrectAndProject<'_> {
    /// `[v_0..=v_j]ᵀ w` over the chunk's rows.
    type Output = Vec<f64>;

    /// Block by block of [`CORRECTION_BLOCK`] rows, every column in turn: the block's
    /// rows of `v_j` and `w` stay in cache while the basis streams past, each column's
    /// rows asked for ([`prefetch`]) while the one before is used. Each dot product is
    /// taken in those pieces ([`LaneSums`]): the same sums as column by column.
    #[inline(always)]
    fn run(self) -> Vec<f64> {
        let Self {
            older,
            deferred,
            w,
            newest,
        } = self;
        let columns: Vec<&[f64]> = (0..older.ncols())
            .map(|k| {
                older
                    .col(k)
                    .try_as_col_major()
                    .expect("contiguous")
                    .as_slice()
            })
            .collect();
        let mut dots = vec![LaneSums::new(); columns.len() + 1];
        for start in (0..newest.len()).step_by(CORRECTION_BLOCK) {
            let rows = start..(start + CORRECTION_BLOCK).min(newest.len());
            let (newest, w) = (&mut newest[rows.clone()], &w[rows.clone()]);
            for (k, (column, dot)) in columns.iter().zip(&mut dots).enumerate() {
                if let Some(next) = columns.get(k + 1) {
                    prefetch(&next[rows.clone()]);
                }
                let column = &column[rows.clone()];
                if let Some(p) = deferred {
                    let pk = p[k];
                    for (x, &c) in newest.iter_mut().zip(column) {
                        *x -= pk * c;
                    }
                }
                dot.add_dot(column, w);
            }
            dots[columns.len()].add_dot(newest, w);
        }
        dots.iter().map(LaneSums::total).collect()
    }
}

/// Asks the CPU to bring `values` into its caches, a cache line at a time, ahead of their
/// use: each column's run of a [`CorrectAndProject`] block starts a new page, where the
/// hardware's own prefetchers would wait to see it read.
#[inline(always)]
fn prefetch(values: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(CACHE_LINE / size_of::<f64>()) {
        // SAFETY: a prefetch of an address inside `values`; it changes no memory.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// Bytes per cache line of the x86-64 CPUs [`prefetch`] asks.
const CACHE_LINE: usize = 64;

/// Rows per block of a [`CorrectAndProject`] chunk: 16 KiB of each vector, a multiple of
/// [`LANES`] so that the pieces of each dot product keep its lanes. With [`prefetch`], at
/// 100k cells kBET took 12.2–13.4 s against 13.9–14.7 with 512 rows and no prefetch (AMD
/// EPYC Zen 4, 2 cores, runs alternated; a throw-away harness had one thread read a basis
/// of 166 columns at 12–16 GB/s from L3 cache and 10–12 from memory, against 8–11 and 7–8).
const CORRECTION_BLOCK: usize = 2048;
const _: () = assert!(CORRECTION_BLOCK % LANES == 0);

/// Rows per parallel task of [`product_by_rows`].
const ROWS_PER_TASK: usize = 4096;

/// `V[:, ..r] = V[:, ..b] · ritz` for a `b × r` `ritz` (r ≤ b < V's columns): the Ritz
/// vectors written over the basis they are made of, one [`ROWS_PER_TASK`] chunk of rows at
/// a time (each chunk's product reads only its own rows), so that no second n × r matrix
/// is held. The same fixed chunks as [`product_by_rows`]: the same sums on any number of
/// threads.
fn ritz_vectors_in_place(v: MatMut<'_, f64>, ritz: MatRef<'_, f64>) {
    let (basis, take) = (ritz.nrows(), ritz.ncols());
    v.par_row_chunks_mut(ROWS_PER_TASK).for_each(|rows| {
        let mut rotated = Mat::<f64>::zeros(rows.nrows(), take);
        matmul(
            rotated.as_mut(),
            Accum::Replace,
            rows.rb().subcols(0, basis),
            ritz,
            1.0,
            Par::Seq,
        );
        rows.subcols_mut(0, take).copy_from(&rotated);
    });
}

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
    use faer::{Col, Mat};
    use rand::{Rng, SeedableRng};

    use diffbio_pairwise::lane_dot;

    use super::{
        correct_and_project, dense_eigen, lanczos_eigen, recurrence_step, CORRECTION_BLOCK,
        ROWS_PER_TASK,
    };
    use crate::diffusion::{diffusion_map, transition_matrix, DENSE_EIGEN_LIMIT};
    use crate::sliced_ell::SlicedEll;
    use crate::umap::test_cloud;

    #[test]
    fn lanczos_eigenpairs_are_orthonormal_with_small_residuals() {
        // Two row chunks of the basis passes, several restarts.
        let graph = test_cloud(ROWS_PER_TASK + 700);
        let transition = transition_matrix(&graph);
        let (values, vectors) = lanczos_eigen(&SlicedEll::new(&graph, &transition), 30).unwrap();
        for (c, &value) in values.iter().enumerate() {
            let residual = (0..graph.n())
                .map(|i| {
                    let span = graph.row_ptr[i]..graph.row_ptr[i + 1];
                    let product: f64 = graph.cols[span.clone()]
                        .iter()
                        .zip(&transition[span])
                        .map(|(&j, &t)| t * vectors[(j as usize, c)])
                        .sum();
                    (product - value * vectors[(i, c)]).powi(2)
                })
                .sum::<f64>()
                .sqrt();
            assert!(residual < 1e-9, "pair {c}: residual {residual:e}");
        }
        let gram = vectors.transpose() * &vectors;
        for a in 0..values.len() {
            for b in 0..values.len() {
                let expected = if a == b { 1.0 } else { 0.0 };
                assert!((gram[(a, b)] - expected).abs() < 1e-12, "({a}, {b})");
            }
        }
    }

    #[test]
    fn a_step_defers_only_rounding() {
        let (n, columns) = (300, 4);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut random =
            |rows, cols| Mat::<f64>::from_fn(rows, cols, |_, _| rng.random::<f64>() - 0.5);
        let basis = random(n, columns).qr().compute_thin_Q();
        let away = random(n, 1).col(0).to_owned();
        let away = &away - &basis * (basis.transpose() * &away);
        let h = Mat::<f64>::zeros(columns, columns);
        for (along, deferred) in [(1e-13, true), (10.0, false)] {
            let start: Col<f64> = &away + &basis * Col::<f64>::full(columns, along);
            let mut v = basis.clone();
            let mut w = start.clone();
            let step = recurrence_step(v.as_mut(), h.as_ref(), 0.0, None, w.as_mut());
            assert_eq!(step.deferred.is_some(), deferred);
            // What is left, with the deferred subtraction made: β·v_{j+1}.
            let left = match &step.deferred {
                Some(p) => &w - step.beta * (&basis * p),
                None => w.clone(),
            };
            assert!((left.norm_l2() - step.beta).abs() < 1e-12 * step.beta);
            assert!((basis.transpose() * &left).norm_max() < 1e-13);
            let rebuilt = &basis * &step.coefficients + &left;
            assert!((&rebuilt - &start).norm_max() < 1e-13, "along {along}");
        }
    }

    #[test]
    fn the_blocked_pass_is_column_by_column_bitwise() {
        // A full chunk, then one of a full block, a part block and a partial run of lanes.
        let (n, columns) = (ROWS_PER_TASK + CORRECTION_BLOCK + 7, 9);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let start = Mat::<f64>::from_fn(n, columns, |_, _| rng.random::<f64>() - 0.5);
        let w: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        let p: Vec<f64> = (0..columns - 1).map(|_| rng.random::<f64>()).collect();
        let column = |k: usize| start.col(k).try_as_col_major().unwrap().as_slice();
        let mut v = start.clone();
        let dots = correct_and_project(
            v.as_mut(),
            Some(&Col::from_fn(p.len(), |k| p[k])),
            Col::from_fn(n, |i| w[i]).as_ref(),
        );
        let (mut newest, mut want) = (column(columns - 1).to_vec(), vec![0.0; columns]);
        for first in (0..n).step_by(ROWS_PER_TASK) {
            let rows = first..(first + ROWS_PER_TASK).min(n);
            for (k, &pk) in p.iter().enumerate() {
                let column = &column(k)[rows.clone()];
                for (x, &c) in newest[rows.clone()].iter_mut().zip(column) {
                    *x -= pk * c;
                }
                want[k] += lane_dot(column, &w[rows.clone()]);
            }
            want[columns - 1] += lane_dot(&newest[rows.clone()], &w[rows]);
        }
        let corrected = v.col(columns - 1).iter().map(|x| x.to_bits());
        assert!(corrected.eq(newest.iter().map(|x| x.to_bits())));
        assert!(dots
            .iter()
            .map(|x| x.to_bits())
            .eq(want.iter().map(|x| x.to_bits())));
    }

    #[test]
    fn lanczos_and_dense_eigenpairs_agree() {
        let graph = test_cloud(DENSE_EIGEN_LIMIT + 400);
        let map = diffusion_map(graph.clone(), 1).unwrap(); // the top component: λ = 1
        assert_eq!(map.len(), graph.n());
        let transition = transition_matrix(&graph);
        let (dense_values, dense_vectors) = dense_eigen(&graph, &transition, 40).unwrap();
        let (values, vectors) = lanczos_eigen(&SlicedEll::new(&graph, &transition), 40).unwrap();
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
                .install(|| lanczos_eigen(&SlicedEll::new(&graph, &transition), 10))
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
