//! Graph connectivity (Luecken et al. 2022, scib-metrics' definition).

use petgraph::{algo::kosaraju_scc, graph::DiGraph};

use crate::error::Result;
use crate::knn::KnnGraph;
use crate::labels::{check_labels, dense, Dense};

/// For each label, the fraction of its cells in the largest strongly connected component
/// of the *directed* kNN graph restricted to that label's cells; the mean over labels.
/// 1 = every cell type forms one connected neighbourhood.
///
/// scib-metrics' Benchmarker uses 15 neighbours *including the cell itself*, i.e. a graph
/// of 14 neighbours here (self-loops do not change components).
///
/// ```
/// use diffbio_metrics::{graph_connectivity, knn};
/// let x = [0.0f32, 1.0, 2.0, 50.0, 51.0, 100.0]; // d = 1
/// let g = knn(&x, 1, 1).unwrap();
/// // label 0 = cells 0, 1, 2: 0↔1 and 2→1, so the largest strong component is {0, 1}
/// // label 1 = cells 3, 4, 5: 3↔4 and 5→4: again 2 of 3
/// let c = graph_connectivity(&g, &[0, 0, 0, 1, 1, 1]).unwrap();
/// assert!((c - 2.0 / 3.0).abs() < 1e-12);
/// ```
pub fn graph_connectivity(graph: &KnnGraph, labels: &[u32]) -> Result<f64> {
    check_labels(graph, labels, "labels")?;
    let Dense { codes, count } = dense(labels);
    let labels: &[u32] = &codes;
    let mut position = vec![0u32; graph.n()]; // index of each cell within its label
    let mut cells_of: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, &label) in labels.iter().enumerate() {
        let cells = &mut cells_of[label as usize];
        position[i] = cells.len() as u32;
        cells.push(i);
    }
    let position = &position;
    let fractions: Vec<f64> = cells_of
        .iter()
        .filter(|cells| !cells.is_empty())
        .map(|cells| {
            let label = labels[cells[0]];
            let edges = cells.iter().flat_map(|&i| {
                graph
                    .neighbors(i)
                    .iter()
                    .filter(move |&&j| labels[j as usize] == label)
                    .map(move |&j| (position[i], position[j as usize]))
            });
            let mut subgraph = DiGraph::<(), ()>::from_edges(edges);
            // from_edges only creates nodes up to the largest index used.
            while subgraph.node_count() < cells.len() {
                subgraph.add_node(());
            }
            // Kosaraju (iterative depth-first searches): Tarjan in petgraph recurses once per
            // cell of a chain, which overflowed the stack at 10⁶ cells.
            let largest = kosaraju_scc(&subgraph)
                .iter()
                .map(Vec::len)
                .max()
                .unwrap_or(0);
            largest as f64 / cells.len() as f64
        })
        .collect();
    Ok(fractions.iter().sum::<f64>() / fractions.len() as f64)
}
