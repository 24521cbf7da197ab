"""diffbio-metrics: scib-metrics' integration scores for single-cell embeddings, exact
(one exact kNN graph, scib-metrics 0.5.10's definitions) and many times faster, computed
in Rust by diffbio.

``from diffbio_metrics.benchmark import Benchmarker`` replaces
``from scib_metrics.benchmark import Benchmarker``; the metric functions keep scib's names
(``diffbio_metrics.ilisi_knn``, ...).
"""

from importlib.metadata import version

from . import benchmark, nearest_neighbors
from .benchmark import BatchCorrection, Benchmarker, BioConservation
from .metrics import (
    bras,
    clisi_knn,
    graph_connectivity,
    ilisi_knn,
    isolated_labels,
    kbet_per_label,
    lisi_knn,
    nmi_ari_cluster_labels_kmeans,
    nmi_ari_cluster_labels_leiden,
    pcr_comparison,
    silhouette_batch,
    silhouette_label,
)
from .nearest_neighbors import NeighborsResults

__version__ = version("diffbio-metrics")

__all__ = [
    "benchmark",
    "nearest_neighbors",
    "Benchmarker",
    "BioConservation",
    "BatchCorrection",
    "NeighborsResults",
    "isolated_labels",
    "pcr_comparison",
    "silhouette_label",
    "silhouette_batch",
    "bras",
    "ilisi_knn",
    "clisi_knn",
    "lisi_knn",
    "nmi_ari_cluster_labels_kmeans",
    "nmi_ari_cluster_labels_leiden",
    "kbet_per_label",
    "graph_connectivity",
]
