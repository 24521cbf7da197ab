"""scib-metrics' ``Benchmarker`` with the same signatures, computed exactly in Rust.

Replace ``from scib_metrics.benchmark import Benchmarker`` with
``from diffbio_metrics.benchmark import Benchmarker``: the same calls give the same table
(scib-metrics 0.5.10's definitions, neighbourhoods and aggregates) on an exact kNN graph
instead of pynndescent's approximate one.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import _native
from ._inputs import codes_of, float32_matrix, neighbour_arrays
from .nearest_neighbors import NeighborsResults

Kwargs = dict[str, Any]
MetricType = bool | Kwargs

_METRIC_TYPE = "Metric Type"
_AGGREGATE_SCORE = "Aggregate score"
_BIO = "Bio conservation"
_BATCH = "Batch correction"
# scib's neighbourhoods: 15, 50 and 90 neighbours counting the cell itself.
_MAX_NEIGHBORS = 90

# Each scib metric switch: its result rows (scib's raw names), their clean column names and
# diffbio's snake_case score names.
_ROWS = {
    "isolated_labels": [("isolated_labels", "Isolated labels", "isolated_labels")],
    "nmi_ari_cluster_labels_kmeans": [
        ("nmi_ari_cluster_labels_kmeans_nmi", "KMeans NMI", "nmi_kmeans"),
        ("nmi_ari_cluster_labels_kmeans_ari", "KMeans ARI", "ari_kmeans"),
    ],
    "silhouette_label": [("silhouette_label", "Silhouette label", "silhouette_label")],
    "clisi_knn": [("clisi_knn", "cLISI", "clisi")],
    "bras": [("bras", "BRAS", "bras")],
    "ilisi_knn": [("ilisi_knn", "iLISI", "ilisi")],
    "kbet_per_label": [("kbet_per_label", "KBET", "kbet")],
    "graph_connectivity": [("graph_connectivity", "Graph connectivity", "graph_connectivity")],
    "pcr_comparison": [("pcr_comparison", "PCR comparison", "pcr_comparison")],
}

# diffbio's own metrics, which scib-metrics' table has no column for: the Benchmarker does
# not compute them.
_DIFFBIO_ONLY = ["batch_entropy", "knn_accuracy", "silhouette_batch"]


@dataclass(frozen=True)
class BioConservation:
    """Which bio-conservation metrics to run (scib-metrics' switches and defaults).

    ``True``/``False`` include or leave out a metric. scib-metrics also takes a dict of
    keyword arguments; diffbio computes each metric with scib's Benchmarker defaults only,
    so a non-empty dict raises ``NotImplementedError``, as does
    ``nmi_ari_cluster_labels_leiden=True`` (no Leiden clustering here).
    """

    isolated_labels: MetricType = True
    nmi_ari_cluster_labels_leiden: MetricType = False
    nmi_ari_cluster_labels_kmeans: MetricType = True
    silhouette_label: MetricType = True
    clisi_knn: MetricType = True


@dataclass(frozen=True)
class BatchCorrection:
    """Which batch-correction metrics to run (scib-metrics' switches and defaults); a
    non-empty dict of keyword arguments raises ``NotImplementedError``."""

    bras: MetricType = True
    ilisi_knn: MetricType = True
    kbet_per_label: MetricType = True
    graph_connectivity: MetricType = True
    pcr_comparison: MetricType = True


def _chosen(collection) -> list[str]:
    """The switches of a metric collection that are on, refusing what diffbio lacks."""
    chosen = []
    for name, use in asdict(collection).items():
        if isinstance(use, dict) and use:
            raise NotImplementedError(
                f"{name}: keyword arguments {sorted(use)} are not supported; diffbio computes "
                "each metric with scib-metrics' Benchmarker defaults"
            )
        if use is False:
            continue
        if name == "nmi_ari_cluster_labels_leiden":
            raise NotImplementedError(
                "nmi_ari_cluster_labels_leiden: Leiden clustering is not implemented; use "
                "nmi_ari_cluster_labels_kmeans (on by default)"
            )
        chosen.append(name)
    return chosen


class Benchmarker:
    """Benchmarking pipeline for the single-cell integration task: scib-metrics'
    ``Benchmarker``, same arguments, same results table, exact.

    Parameters
    ----------
    adata
        AnnData with the embeddings in ``obsm`` and the batch and cell-type columns in
        ``obs``.
    batch_key, label_key
        The ``obs`` columns of the batches and the cell types (categories, strings,
        integers or booleans; no missing values).
    embedding_obsm_keys
        The ``obsm`` keys of the embeddings to score.
    bio_conservation_metrics, batch_correction_metrics
        Which metrics to run; ``None`` leaves the whole group out. A metric switched off
        is not computed (``BatchCorrection(kbet_per_label=False)`` saves the largest stage).
    pre_integrated_embedding_obsm_key
        The ``obsm`` key of the embedding before integration, for PCR comparison. scib
        computes a PCA of ``adata.X`` when it is ``None``; diffbio does not, and asks for
        the key (or ``BatchCorrection(pcr_comparison=False)``).
    n_jobs
        Threads for the computation (``-1``: one per core). The results do not depend on it.
    progress_bar
        Accepted for compatibility; diffbio prints no progress here.
    solver
        scib's PCA solver: unused, since no PCA is computed.

    Beyond scib-metrics: ``prepare`` computes nothing (the exact kNN graph is built while
    scoring) unless given a ``neighbor_computer`` or ``neighbors_from_obsp``; a metric
    that is undefined on the data (e.g. kBET when no cell type has 10 cells in 2 batches)
    is ``NaN`` in the table and listed with its reason in ``skipped``;
    ``kbet_per_label`` holds each cell type's kBET, and ``lisi_per_cell`` each cell's LISI
    of the batches and of the cell types (columns ``batch``, ``label``; what iLISI and
    cLISI summarise).
    """

    def __init__(
        self,
        adata,
        batch_key: str,
        label_key: str,
        embedding_obsm_keys: list[str],
        bio_conservation_metrics: BioConservation | None = BioConservation(),
        batch_correction_metrics: BatchCorrection | None = BatchCorrection(),
        pre_integrated_embedding_obsm_key: str | None = None,
        n_jobs: int = 1,
        progress_bar: bool = True,
        solver: str = "arpack",
    ):
        if bio_conservation_metrics is None and batch_correction_metrics is None:
            raise ValueError("Either batch or bio metrics must be defined.")
        self._adata = adata
        self._embedding_obsm_keys = list(embedding_obsm_keys)
        self._pre_integrated_embedding_obsm_key = pre_integrated_embedding_obsm_key
        self._bio_conservation_metrics = bio_conservation_metrics
        self._batch_correction_metrics = batch_correction_metrics
        self._metric_collection_dict = {}
        if bio_conservation_metrics is not None:
            self._metric_collection_dict[_BIO] = _chosen(bio_conservation_metrics)
        if batch_correction_metrics is not None:
            self._metric_collection_dict[_BATCH] = _chosen(batch_correction_metrics)
        self._n_jobs = n_jobs
        self._progress_bar = progress_bar
        self._solver = solver
        for key in self._embedding_obsm_keys + [pre_integrated_embedding_obsm_key]:
            if key is not None and key not in adata.obsm:
                raise KeyError(f"adata.obsm has no {key!r} (it holds {list(adata.obsm.keys())})")
        self._batches, _ = codes_of(adata, batch_key)
        self._labels, self._label_names = codes_of(adata, label_key)
        self._neighbors: dict[str, NeighborsResults] = {}
        self._graphs: dict[str, NeighborsResults] = {}
        self._results = pd.DataFrame(columns=self._embedding_obsm_keys + [_METRIC_TYPE])
        self.skipped: dict[str, list[tuple[str, str]]] = {}
        self.kbet_per_label: dict[str, pd.DataFrame] = {}
        self.lisi_per_cell: dict[str, pd.DataFrame] = {}
        self._prepared = False
        self._benchmarked = False

    def prepare(
        self,
        neighbor_computer: Callable[[np.ndarray, int], NeighborsResults] | None = None,
        neighbors_from_obsp: str | None = None,
        graphs_from_obsp: dict[str, str] | None = None,
    ) -> None:
        """Prepare the data for benchmarking.

        Parameters
        ----------
        neighbor_computer
            As scib-metrics': a function of ``(embedding, n_neighbors)`` returning a
            :class:`~diffbio_metrics.nearest_neighbors.NeighborsResults`, called with 90
            neighbours for each embedding. ``None`` (the default): the exact kNN graph,
            computed while scoring.
        neighbors_from_obsp
            Not in scib-metrics: the ``obsp`` key of a scanpy neighbour graph (e.g.
            ``"distances"``) to use for the embedding it was computed on
            (``uns['neighbors']['params']['use_rep']``); a metric needing more neighbours
            than it has is skipped and listed in ``skipped``, never computed on fewer.
        graphs_from_obsp
            Not in scib-metrics: integrations that output a neighbour graph and no
            embedding (BBKNN), as ``{row name: obsp key}`` (e.g. ``{"BBKNN":
            "distances"}``): each is a row of the results scored from its graph alone; the
            metrics that need an embedding are NaN and listed in ``skipped``.
        """
        if self._pre_integrated_embedding_obsm_key is None and "pcr_comparison" in self._metric_collection_dict.get(_BATCH, []):
            raise ValueError(
                "pcr_comparison needs pre_integrated_embedding_obsm_key (e.g. 'X_pca'): scib "
                "computes a PCA of adata.X when it is None, diffbio does not; or pass "
                "BatchCorrection(pcr_comparison=False)"
            )
        self._neighbors = {}
        if neighbor_computer is not None:
            for key in self._embedding_obsm_keys:
                result = neighbor_computer(self._adata.obsm[key], _MAX_NEIGHBORS)
                if not isinstance(result, NeighborsResults):
                    result = NeighborsResults(indices=result.indices, distances=result.distances)
                self._neighbors[key] = result
        if neighbors_from_obsp is not None:
            key, graph = _obsp_graph(self._adata, neighbors_from_obsp, self._embedding_obsm_keys)
            self._neighbors[key] = graph
        self._graphs = {}
        for name, key in (graphs_from_obsp or {}).items():
            if name in self._embedding_obsm_keys:
                raise ValueError(f"graphs_from_obsp: {name!r} is already an embedding's row")
            self._graphs[name] = _neighbors_of_obsp(self._adata, key)
        self._prepared = True

    def benchmark(self) -> None:
        """Run the pipeline: every chosen metric for every embedding."""
        if not self._prepared:
            self.prepare()
        pre = None
        if self._pre_integrated_embedding_obsm_key is not None:
            pre = float32_matrix(self._adata.obsm[self._pre_integrated_embedding_obsm_key], "the pre-integrated embedding")
        rows = self._embedding_obsm_keys + list(self._graphs)
        self._results = pd.DataFrame(columns=rows + [_METRIC_TYPE])
        # Not computed at all: the metrics switched off, and diffbio's own (not in the table).
        chosen = {switch for switches in self._metric_collection_dict.values() for switch in switches}
        skip = [name for switch, metrics in _ROWS.items() if switch not in chosen for _, _, name in metrics]
        skip += _DIFFBIO_ONLY
        for key in rows:
            if key in self._graphs:
                result = _native.benchmark_graph(
                    neighbour_arrays(self._graphs[key]), self._batches, self._labels, n_jobs=self._n_jobs, skip=skip
                )
            else:
                embedding = float32_matrix(self._adata.obsm[key], f"adata.obsm[{key!r}]")
                graph = self._neighbors.get(key)
                neighbours = None if graph is None else neighbour_arrays(graph)
                result = _native.benchmark(
                    embedding, self._batches, self._labels, pre, neighbours, n_jobs=self._n_jobs, skip=skip
                )
            scores = result["scores"]
            for metric_type, chosen in self._metric_collection_dict.items():
                for switch in chosen:
                    for row, _, name in _ROWS[switch]:
                        self._results.loc[row, key] = scores.get(name, np.nan)
                        self._results.loc[row, _METRIC_TYPE] = metric_type
            self.skipped[key] = list(result["skipped"])
            per_cell = {
                name: result[f"{name}_lisi_per_cell"]
                for name in ("batch", "label")
                if len(result[f"{name}_lisi_per_cell"])
            }
            self.lisi_per_cell[key] = pd.DataFrame(per_cell, index=self._adata.obs_names)
            self.kbet_per_label[key] = pd.DataFrame(
                [(self._label_names[code], cells, acceptance) for code, cells, acceptance in result["kbet_per_label"]],
                columns=["label", "cells", "acceptance"],
            )
        self._benchmarked = True

    def get_results(self, min_max_scale: bool = False, clean_names: bool = True) -> pd.DataFrame:
        """The results table, laid out as scib-metrics' (one row per embedding and the
        "Metric Type" row; the metrics in scib's order, then the aggregates). An aggregate
        missing one of its parts (a metric skipped as undefined) is NaN.

        Parameters
        ----------
        min_max_scale
            Scale each metric to [0, 1] across the embeddings before the aggregates.
        clean_names
            Column titles ("KMeans NMI") rather than the metric functions' names.
        """
        df = self._results.transpose()
        df.index.name = "Embedding"
        df = df.loc[df.index != _METRIC_TYPE].astype(np.float64)
        if min_max_scale:
            low, high = df.min(axis=0), df.max(axis=0)
            span = (high - low).where(high > low, 1.0)
            df = (df - low) / span
        if clean_names:
            clean = {row: title for rows in _ROWS.values() for row, title, _ in rows}
            df = df.rename(columns=clean)
        df = df.astype(object).transpose()
        df[_METRIC_TYPE] = self._results[_METRIC_TYPE].values
        groups = df.groupby(_METRIC_TYPE)
        per_class_score = pd.DataFrame(
            {name: group.drop(columns=_METRIC_TYPE).astype(np.float64).mean(axis=0, skipna=False) for name, group in groups}
        )
        if self._batch_correction_metrics is not None and self._bio_conservation_metrics is not None:
            per_class_score["Total"] = 0.4 * per_class_score[_BATCH] + 0.6 * per_class_score[_BIO]
        df = pd.concat([df.transpose(), per_class_score.astype(object)], axis=1)
        df.loc[_METRIC_TYPE, per_class_score.columns] = _AGGREGATE_SCORE
        return df


    def plot_results_table(self, min_max_scale: bool = False, show: bool = True, save_dir: str | None = None):
        """Plot the results table as scib-metrics does (circles per metric, bars for the
        aggregates, best first) and, with ``save_dir``, write ``scib_results.svg`` there.
        Returns the matplotlib Figure (scib returns a plottable Table). Needs matplotlib."""
        import os

        from ._plot import plot_table

        if self._batch_correction_metrics is not None and self._bio_conservation_metrics is not None:
            sort_col = "Total"
        elif self._batch_correction_metrics is not None:
            sort_col = _BATCH
        else:
            sort_col = _BIO
        svg = None if save_dir is None else os.path.join(save_dir, "scib_results.svg")
        fig = plot_table(self.get_results(min_max_scale=min_max_scale), sort_col, svg)
        if show:
            import matplotlib.pyplot as plt

            plt.show()
        return fig


def _obsp_graph(adata, key: str, embedding_keys: list[str]) -> tuple[str, NeighborsResults]:
    """scanpy's neighbour graph ``adata.obsp[key]`` (CSR, neighbours without the cell) as
    ``(the embedding it is of, NeighborsResults)``."""
    params = adata.uns.get("neighbors", {}).get("params", {})
    of = params.get("use_rep")
    if of not in embedding_keys:
        raise ValueError(
            f"adata.obsp[{key!r}] is of {of!r} (uns['neighbors']['params']['use_rep']), "
            f"which is not among the embeddings scored ({embedding_keys})"
        )
    return of, _neighbors_of_obsp(adata, key)


def _neighbors_of_obsp(adata, key: str) -> NeighborsResults:
    """The CSR graph ``adata.obsp[key]`` (each row a cell's neighbours and distances, the
    cell itself not among them, as scanpy and BBKNN store ``distances``)."""
    if key not in adata.obsp:
        raise KeyError(f"adata.obsp has no {key!r} (it holds {list(adata.obsp.keys())})")
    graph = adata.obsp[key].tocsr()
    counts = np.diff(graph.indptr)
    width = int(counts.max()) if len(counts) else 0
    # Rows padded with -1 to the widest; the Rust side drops the padding and keeps, in every
    # row, as many nearest neighbours as the sparsest row has.
    indices = np.full((graph.shape[0], width), -1, dtype=np.int64)
    distances = np.zeros((graph.shape[0], width), dtype=np.float64)
    for i in range(graph.shape[0]):
        start, end = graph.indptr[i], graph.indptr[i + 1]
        indices[i, : end - start] = graph.indices[start:end]
        distances[i, : end - start] = graph.data[start:end]
    return NeighborsResults(indices=indices, distances=distances)
