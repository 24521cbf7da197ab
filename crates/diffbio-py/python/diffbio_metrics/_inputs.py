"""Inputs as the Rust side reads them: labels as uint32 codes, embeddings as float32
matrices, neighbour graphs as int64/float64 arrays; each C-contiguous, copied only when
it is not already."""

import numpy as np
import pandas as pd


def codes_of(adata, key: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`codes` of the column ``adata.obs[key]``; ``KeyError`` when it is missing."""
    if key not in adata.obs.columns:
        raise KeyError(f"adata.obs has no column {key!r} (it holds {list(adata.obs.columns)})")
    return codes(adata.obs[key], f"adata.obs[{key!r}]")


def codes(values, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, names)`` of one label per cell: codes ``0..L-1`` (C-contiguous uint32) in
    the order of the sorted distinct values (``np.unique``'s, as scib-metrics labels them)
    and the value each code stands for.

    Raises ``ValueError`` for floats, missing values (a categorical's code -1, NaN, None)
    and anything not one-dimensional.
    """
    if np.ndim(values) != 1:
        raise ValueError(f"{what} must be one label per cell (1-d), not of shape {np.shape(values)}")
    column = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(column.dtype, pd.CategoricalDtype):
        missing = int((column.cat.codes < 0).sum())
        column = column.astype(object)
    elif pd.api.types.is_float_dtype(column.dtype):
        raise ValueError(f"{what} holds floats; labels must be categories, strings, integers or booleans")
    else:
        missing = int(column.isna().sum())
    if missing:
        raise ValueError(f"{what} has no value for {missing} cells; drop or fill them first")
    names, inverse = np.unique(np.asarray(column), return_inverse=True)
    return np.ascontiguousarray(inverse.reshape(-1), dtype=np.uint32), names


def float32_matrix(array, what: str) -> np.ndarray:
    """A C-contiguous float32 (n_cells, dims) array (copied only when it is not one)."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-d (cells x dims) array, not of shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{what} must hold numbers, not {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def neighbour_arrays(graph) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)`` of a ``NeighborsResults`` (scib-metrics' or ours)."""
    return (
        np.ascontiguousarray(graph.indices, dtype=np.int64),
        np.ascontiguousarray(graph.distances, dtype=np.float64),
    )
