"""Neighbour graphs in scib-metrics' form, for `Benchmarker.prepare(neighbor_computer=...)`."""

from dataclasses import dataclass

import numpy as np


@dataclass
class NeighborsResults:
    """Each cell's nearest neighbours, as scib-metrics' ``NeighborsResults``.

    Attributes
    ----------
    indices
        ``(n_cells, k)`` integer array: row ``i`` holds the indices of cell ``i``'s
        neighbours, nearest first. The cell itself may be among them (scib's neighbour
        computers return it first); it is dropped before scoring, as are negative indices
        (padding).
    distances
        ``(n_cells, k)`` array of the matching distances.
    """

    indices: np.ndarray
    distances: np.ndarray

    def __post_init__(self):
        self.indices = np.asarray(self.indices)
        self.distances = np.asarray(self.distances)
        if self.indices.ndim != 2 or self.indices.shape != self.distances.shape:
            raise ValueError(
                f"indices {self.indices.shape} and distances {self.distances.shape} must be "
                "two arrays of the same shape (n_cells, k)"
            )
        if not np.issubdtype(self.indices.dtype, np.integer):
            raise ValueError(f"indices must be integers, not {self.indices.dtype}")

    @property
    def n_samples(self) -> int:
        """Number of cells."""
        return self.indices.shape[0]

    @property
    def n_neighbors(self) -> int:
        """Number of neighbours per cell (the cell itself included where it is listed)."""
        return self.indices.shape[1]

    def subset_neighbors(self, n: int) -> "NeighborsResults":
        """The ``n`` nearest neighbours of each cell."""
        if n > self.n_neighbors:
            raise ValueError("n must be smaller than the number of neighbors")
        return NeighborsResults(indices=self.indices[:, :n], distances=self.distances[:, :n])
