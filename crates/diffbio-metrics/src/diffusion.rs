//! The diffusion-map embedding of a connectivity graph (scanpy's and scib-metrics'
//! construction), the space kBET tests each label's neighbourhoods in.

use crate::eigen::{dense_eigen, lanczos_eigen};
use crate::error::Result;
use crate::sliced_ell::SlicedEll;
use crate::sparse_graph::SparseGraph;

/// Below this many nodes the eigenproblem is solved densely.
pub(crate) const DENSE_EIGEN_LIMIT: usize = 500;

/// scib-metrics' diffusion map of a connectivity graph (scanpy's `_compute_transitions` and
/// `_compute_eigen`): the density-normalised kernel `K = Q⁻¹ W Q⁻¹` (q = degrees), its
/// symmetric transition matrix `T = Z⁻¹ K Z⁻¹` (z = √ row sums of K), the `n_comps`
/// eigenpairs of largest |λ|, and each eigenvector scaled by `λ/(1 − λ)` (by 1 for λ = 1),
/// with scib's `λ + 1e-8` and its float32 rounding of λ. Rows are cells, row-major
/// `[n × n_comps]`. The graph is freed once the eigensolver's operator holds its values.
pub(crate) fn diffusion_map(graph: SparseGraph, n_comps: usize) -> Result<Vec<f64>> {
    let n = graph.n();
    let transition = transition_matrix(&graph);
    let (values, vectors) = if n <= DENSE_EIGEN_LIMIT {
        dense_eigen(&graph, &transition, n_comps)?
    } else {
        let operator = SlicedEll::new(&graph, &transition);
        drop((graph, transition)); // the operator holds its own copy
        lanczos_eigen(&operator, n_comps)?
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
pub(crate) fn transition_matrix(graph: &SparseGraph) -> Vec<f64> {
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
