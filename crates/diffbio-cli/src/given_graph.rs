//! A neighbour graph from the file's `obsp` (`--knn-obsp`): which embedding it serves, and
//! the words that say which graph each row used.

use diffbio_io::h5ad::{AnnData, ObspGraph};
use diffbio_io::{Error, Result};

/// Whether the graph serves embedding `key`: the one it records as computed on, or the
/// only embedding scored when it records none.
pub(crate) fn is_of(graph: &ObspGraph, key: &str, scored: &[String]) -> bool {
    match &graph.use_rep {
        Some(rep) => rep == key,
        None => scored.len() == 1,
    }
}

/// A graph is used only for the embedding it was computed on: refused when that is none
/// of the embeddings scored, or unknown while several are.
pub(crate) fn check_graph_is_of(
    graph: &ObspGraph,
    scored: &[String],
    file: &AnnData,
) -> Result<()> {
    if scored.iter().any(|key| is_of(graph, key, scored)) {
        return Ok(());
    }
    let reason = match &graph.use_rep {
        Some(rep) => format!(
            "is a graph of obsm['{rep}'] (uns[...]['params']['use_rep']), which is not \
             among the embeddings scored: its neighbours would be the wrong ones"
        ),
        None => "does not record the representation it was computed on \
                 (uns[...]['params']['use_rep']); with --knn-obsp, score one embedding"
            .into(),
    };
    Err(Error::H5ad {
        path: file.path().to_path_buf(),
        object: format!("obsp/{}", graph.key),
        reason,
    })
}

/// The graph of every row without a given one.
const EXACT: &str = "exact kNN graph (all pairs)";

/// The exact graph, and why a given graph was not used (it is of another embedding).
pub(crate) fn exact_words(given: Option<&ObspGraph>) -> String {
    match given.and_then(|g| Some((&g.key, g.use_rep.as_ref()?))) {
        Some((key, rep)) => format!("{EXACT}: obsp['{key}'] is of {rep}"),
        None => EXACT.into(),
    }
}

/// The given graph, in words: its key, what it is of, its neighbours per cell.
pub(crate) fn obsp_words(given: &ObspGraph) -> String {
    let of = match &given.use_rep {
        Some(rep) => format!("computed on {rep}"),
        None => "the file does not say on which representation".into(),
    };
    format!(
        "obsp['{}'] of the file ({of}), {} neighbours per cell (the fewest any cell has)",
        given.key,
        given.graph.k()
    )
}
