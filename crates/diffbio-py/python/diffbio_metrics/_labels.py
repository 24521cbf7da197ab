"""Label columns of ``adata.obs`` as the integer codes the Rust side reads."""

import numpy as np
import pandas as pd


def codes_of(adata, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, names)`` of ``adata.obs[key]``: codes ``0..L-1`` (uint32) in the order of
    the sorted distinct values (``np.unique``'s, as scib-metrics labels them), and the value
    each code stands for.

    Raises ``KeyError`` for a missing column and ``ValueError`` for a float column or
    missing values (a categorical's code -1, NaN, None).
    """
    if key not in adata.obs.columns:
        raise KeyError(f"adata.obs has no column {key!r} (it holds {list(adata.obs.columns)})")
    column = adata.obs[key]
    if isinstance(column.dtype, pd.CategoricalDtype):
        missing = int((column.cat.codes < 0).sum())
        values = np.asarray(column.astype(object))
    else:
        if pd.api.types.is_float_dtype(column.dtype):
            raise ValueError(
                f"adata.obs[{key!r}] holds floats ({column.dtype}); labels must be categories, "
                "strings, integers or booleans"
            )
        missing = int(column.isna().sum())
        values = np.asarray(column)
    if missing:
        raise ValueError(
            f"adata.obs[{key!r}] has no value for {missing} cells; drop or fill them first"
        )
    names, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.uint32).reshape(-1), names
