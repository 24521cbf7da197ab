"""diffbio-metrics: scib-metrics' integration scores for single-cell embeddings, exact
(one exact kNN graph, scib-metrics 0.5.10's definitions) and many times faster, computed
in Rust by diffbio.

``from diffbio_metrics.benchmark import Benchmarker`` replaces
``from scib_metrics.benchmark import Benchmarker``.
"""

from importlib.metadata import version

from . import benchmark, nearest_neighbors
from .benchmark import BatchCorrection, Benchmarker, BioConservation
from .nearest_neighbors import NeighborsResults

__version__ = version("diffbio-metrics")

__all__ = [
    "benchmark",
    "nearest_neighbors",
    "Benchmarker",
    "BioConservation",
    "BatchCorrection",
    "NeighborsResults",
]
