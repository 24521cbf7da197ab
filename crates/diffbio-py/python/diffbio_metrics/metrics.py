"""scib-metrics' metric functions, same names and signatures, computed exactly in Rust.

Neighbour metrics take a :class:`~diffbio_metrics.nearest_neighbors.NeighborsResults` whose
rows list each cell itself first, as scib's neighbour computers return them (scib's
Benchmarker passes 90 neighbours to the LISIs, 50 to kBET, 15 to graph connectivity); the
cell itself is dropped before scoring. Embeddings are scored in float32, as scib does.
An option scib has and diffbio does not compute raises ``NotImplementedError`` naming it.
Every function also takes ``n_jobs`` (threads; the results do not depend on it) where it
does heavy work.
"""

import numpy as np
import pandas as pd

from . import _native
from ._inputs import codes, float32_matrix, neighbour_arrays
from .nearest_neighbors import NeighborsResults


def _only_default(function: str, **options) -> None:
    """Refuses any option given a value other than scib's default (value, default)."""
    for name, (value, default) in options.items():
        if value != default:
            raise NotImplementedError(
                f"{function}: {name}={value!r} is not supported (only scib-metrics' default, "
                f"{default!r})"
            )


def lisi_knn(X: NeighborsResults, labels: np.ndarray, perplexity: float = None, n_jobs: int = 1) -> np.ndarray:
    """Each cell's local inverse Simpson index of ``labels`` (Korsunsky et al. 2019), with
    scib's perplexity (a third of the neighbours, the cell included): a float64 array of
    shape ``(n_cells,)``. scib-metrics returns these only inside its iLISI/cLISI."""
    _only_default("lisi_knn", perplexity=(perplexity, None))
    return np.asarray(_native.lisi(neighbour_arrays(X), codes(labels, "labels")[0], n_jobs))


def ilisi_knn(X: NeighborsResults, batches: np.ndarray, perplexity: float = None, scale: bool = True,
              n_jobs: int = 1) -> float:
    """Scaled integration LISI: ``(median LISI of the batches − 1) / (B − 1)``; 1 = mixed."""
    _only_default("ilisi_knn", perplexity=(perplexity, None), scale=(scale, True))
    return _native.scaled_lisi(neighbour_arrays(X), codes(batches, "batches")[0], True, n_jobs)


def clisi_knn(X: NeighborsResults, labels: np.ndarray, perplexity: float = None, scale: bool = True,
              n_jobs: int = 1) -> float:
    """Scaled cell-type LISI: ``(L − median LISI of the labels) / (L − 1)``; 1 = apart."""
    _only_default("clisi_knn", perplexity=(perplexity, None), scale=(scale, True))
    return _native.scaled_lisi(neighbour_arrays(X), codes(labels, "labels")[0], False, n_jobs)


def graph_connectivity(X: NeighborsResults, labels: np.ndarray) -> float:
    """Mean over cell types of the largest connected share of the type's kNN subgraph."""
    return _native.graph_connectivity(neighbour_arrays(X), codes(labels, "labels")[0])


def kbet_per_label(
    X: NeighborsResults,
    batches: np.ndarray,
    labels: np.ndarray,
    alpha: float = 0.05,
    diffusion_n_comps: int = 100,
    return_df: bool = False,
    n_jobs: int = 1,
) -> float | tuple[float, pd.DataFrame]:
    """kBET per cell type as scib-metrics computes it, with the exact diffusion-space
    neighbours; with ``return_df``, also scib's DataFrame of each type's score (``cluster``,
    ``kBET``; NaN for a type skipped: < 10 cells or one batch)."""
    _only_default("kbet_per_label", alpha=(alpha, 0.05), diffusion_n_comps=(diffusion_n_comps, 100))
    label_codes, names = codes(labels, "labels")
    score, per_label = _native.kbet_per_label(
        neighbour_arrays(X), codes(batches, "batches")[0], label_codes, n_jobs
    )
    if not return_df:
        return score
    df = pd.DataFrame(
        {"cluster": [names[code] for code, _, _ in per_label],
         "kBET": [np.nan if a is None else a for _, _, a in per_label]}
    )
    return score, df


def _embedding_metric(metric: str, X, labels, batch=None, n_jobs: int = 1) -> float:
    batch_codes = None if batch is None else codes(batch, "batch")[0]
    return _native.embedding_metric(
        metric, float32_matrix(X, "X"), codes(labels, "labels")[0], batch_codes, n_jobs
    )


def silhouette_label(X: np.ndarray, labels: np.ndarray, rescale: bool = True, chunk_size: int = 256,
                     metric: str = "euclidean", n_jobs: int = 1) -> float:
    """Mean silhouette of the cell types, rescaled to ``(s + 1) / 2``; exact, in tiles
    (``chunk_size`` is accepted and has no effect on the result)."""
    _only_default("silhouette_label", rescale=(rescale, True), metric=(metric, "euclidean"))
    return _embedding_metric("silhouette_label", X, labels, n_jobs=n_jobs)


def silhouette_batch(X: np.ndarray, labels: np.ndarray, batch: np.ndarray, rescale: bool = True,
                     chunk_size: int = 256, metric: str = "euclidean",
                     between_cluster_distances: str = "nearest", n_jobs: int = 1) -> float:
    """Within each cell type, ``1 − |silhouette of the batches|``, averaged per type."""
    _only_default("silhouette_batch", rescale=(rescale, True), metric=(metric, "euclidean"),
                  between_cluster_distances=(between_cluster_distances, "nearest"))
    return _embedding_metric("silhouette_batch", X, labels, batch, n_jobs)


def bras(X: np.ndarray, labels: np.ndarray, batch: np.ndarray, chunk_size: int = 256,
         metric: str = "cosine", between_cluster_distances: str = "mean_other", n_jobs: int = 1) -> float:
    """Batch-removal adapted silhouette (Rautenstrauch et al. 2025), scib's batch score."""
    _only_default("bras", metric=(metric, "cosine"),
                  between_cluster_distances=(between_cluster_distances, "mean_other"))
    return _embedding_metric("bras", X, labels, batch, n_jobs)


def isolated_labels(X: np.ndarray, labels: np.ndarray, batch: np.ndarray, rescale: bool = True,
                    iso_threshold: int | None = None, n_jobs: int = 1) -> float:
    """Label silhouette of the cell types present in the fewest batches."""
    _only_default("isolated_labels", rescale=(rescale, True), iso_threshold=(iso_threshold, None))
    return _embedding_metric("isolated_labels", X, labels, batch, n_jobs)


def nmi_ari_cluster_labels_kmeans(X: np.ndarray, labels: np.ndarray, n_jobs: int = 1) -> dict[str, float]:
    """NMI and ARI of a k-means clustering (k = the number of cell types) with the cell
    types: ``{"nmi": ..., "ari": ...}``. The k-means is seeded k-means++ (seed 0), the best
    of 10 starts (scib's comes from JAX's generator, one start)."""
    nmi, ari = _native.nmi_ari_kmeans(float32_matrix(X, "X"), codes(labels, "labels")[0], n_jobs)
    return {"nmi": nmi, "ari": ari}


def nmi_ari_cluster_labels_leiden(*args, **kwargs):
    """Not computed here: Leiden clustering is not implemented."""
    raise NotImplementedError(
        "nmi_ari_cluster_labels_leiden: Leiden clustering is not implemented; use "
        "nmi_ari_cluster_labels_kmeans"
    )


def pcr_comparison(X_pre: np.ndarray, X_post: np.ndarray, covariate: np.ndarray, scale: bool = True,
                   **kwargs) -> float:
    """Relative drop of the variance the batches explain, from before to after integration
    (closed form, equal to scib's all-component principal-component regression on a
    categorical covariate). Pass ``categorical=True``, as scib's Benchmarker does: scib's
    default regresses on the covariate as a number, which is not computed here."""
    _only_default("pcr_comparison", scale=(scale, True))
    if kwargs.pop("categorical", False) is not True:
        raise NotImplementedError(
            "pcr_comparison: only a categorical covariate (categorical=True, as scib's "
            "Benchmarker passes) is supported; scib's default, categorical=False, regresses "
            "on the covariate as a number"
        )
    if kwargs:
        raise NotImplementedError(f"pcr_comparison: options {sorted(kwargs)} are not supported")
    return _native.pcr_comparison(
        float32_matrix(X_pre, "X_pre"), float32_matrix(X_post, "X_post"), codes(covariate, "covariate")[0]
    )
