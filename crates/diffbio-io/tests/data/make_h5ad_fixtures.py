"""Writes the small .h5ad fixtures of diffbio-io's and diffbio-cli's tests with anndata and h5py (PyPI).

    python -m venv venv && venv/bin/pip install anndata==0.12.19 pandas==2.3.3 h5py hdf5plugin scipy
    venv/bin/python make_h5ad_fixtures.py
    python -m venv venv3 && venv3/bin/pip install "pandas>=3" anndata h5py hdf5plugin scipy
    venv3/bin/python make_h5ad_fixtures.py     # only pandas3_strings.h5ad

Synthetic cells (three batches, four cell types in clusters, a batch shift): nothing of
the PBMC data (GPL-3) is copied here. Beside the files, the same arrays as .npy, so a test
can check that scores read from .h5ad equal those read from .npy.

Readable files, one per storage (`cells.h5ad` uncompressed, `cells_gzip.h5ad`,
`cells_lzf.h5ad`); each has obsm X_pca (f32) and X_scvi (f64), obs columns of every kind
anndata writes for labels (categorical, string, nullable string, integer, nullable
integer) and a float column (refused as labels), and scanpy-style neighbours of X_scvi in obsp['distances'] (CSR, 14 neighbours
per cell without itself, as sc.pp.neighbors(n_neighbors=15) stores them; the
connectivities are left out to keep the files small, diffbio does not read them).
Refused files: a categorical with missing values, a blosc-compressed obsm, the pre-0.8
layout (obs as a compound dataset), a sparse obsm.

Under pandas ≥ 3 (whose default string dtype anndata writes as `nullable-string-array`,
the obs index included), only `pandas3_strings.h5ad` is written: batch and cell type as
pandas-3 strings, and a string column with missing values.
"""

from pathlib import Path

import anndata as ad
import h5py
import hdf5plugin
import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = Path(__file__).parent / "h5ad"
N_CELLS, N_BATCHES, N_TYPES = 150, 3, 4
GRAPH_NEIGHBORS = 14


def cells(seed=7):
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, N_BATCHES, N_CELLS)
    cell_type = rng.integers(0, N_TYPES, N_CELLS)
    centres = rng.normal(0, 4, (N_TYPES, 10))
    shift = rng.normal(0, 1.5, (N_BATCHES, 10))
    pca = centres[cell_type] + shift[batch] + rng.normal(0, 1, (N_CELLS, 10))
    scvi = pca[:, :6] - shift[batch, :6] + rng.normal(0, 0.3, (N_CELLS, 6))
    return batch, cell_type, pca.astype(np.float32), scvi.astype(np.float64)


def neighbours(x, k):
    """scanpy's obsp['distances']: CSR, k neighbours per cell without itself."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(x)), k)
    dist = sp.csr_matrix((d[rows, idx.ravel()], (rows, idx.ravel())), shape=d.shape)
    return dist


def anndata_of(batch, cell_type, pca, scvi):
    batch_names = np.array(["lane-A", "lane-B", "lane-C"])[batch]
    type_names = np.array(["B cell", "T cell", "NK cell", "monocyte"])[cell_type]
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(batch_names),
            "cell_type": pd.Categorical(type_names),
            "batch_code": batch.astype(np.int64),
            "batch_name": batch_names.astype(object),
            "donor": pd.array(np.array(["d1", "d2", "d3"])[batch], dtype="string"),
            "batch_int": pd.array(batch, dtype="Int64"),
            "n_counts": (pca[:, 0] ** 2 * 100).astype(np.float64),
        },
        index=[f"cell-{i}" for i in range(N_CELLS)],
    )
    adata = ad.AnnData(obs=obs, obsm={"X_pca": pca, "X_scvi": scvi})
    adata.obsp["distances"] = neighbours(scvi, GRAPH_NEIGHBORS)
    adata.uns["neighbors"] = {
        "distances_key": "distances",
        "connectivities_key": "connectivities",
        "params": {"n_neighbors": GRAPH_NEIGHBORS + 1, "method": "umap", "use_rep": "X_scvi"},
    }
    return adata


def write(adata, name, **kwargs):
    # Keep string columns as strings (anndata would turn them into categoricals).
    adata.write_h5ad(HERE / name, convert_strings_to_categoricals=False, **kwargs)


def replace_dataset(path, name, data, **kwargs):
    with h5py.File(path, "r+") as f:
        attrs = dict(f[name].attrs)
        del f[name]
        f.create_dataset(name, data=data, **kwargs)
        f[name].attrs.update(attrs)


def pandas3_strings(batch, cell_type, pca):
    batch_names = np.array(["lane-A", "lane-B", "lane-C"])[batch]
    type_names = np.array(["B cell", "T cell", "NK cell", "monocyte"])[cell_type]
    with_gaps = batch_names.astype(object)
    with_gaps[[5, 9]] = None
    obs = pd.DataFrame(
        {"batch": batch_names, "cell_type": type_names, "donor": with_gaps},
        index=[f"cell-{i}" for i in range(N_CELLS)],
    )
    assert str(obs["batch"].dtype) == "str", obs.dtypes
    write(ad.AnnData(obs=obs, obsm={"X_pca": pca}), "pandas3_strings.h5ad")


def main():
    HERE.mkdir(exist_ok=True)
    ad.settings.allow_write_nullable_strings = True
    batch, cell_type, pca, scvi = cells()
    if int(pd.__version__.split(".")[0]) >= 3:
        pandas3_strings(batch, cell_type, pca)
        return
    adata = anndata_of(batch, cell_type, pca, scvi)
    write(adata, "cells.h5ad")
    write(adata, "cells_gzip.h5ad", compression="gzip")
    write(adata, "cells_lzf.h5ad", compression="lzf")
    # The category codes as anndata orders them (categories sorted), for the .npy twins.
    np.save(HERE / "X_pca.npy", pca)
    np.save(HERE / "X_scvi.npy", scvi)
    np.save(HERE / "batch.npy", adata.obs["batch"].cat.codes.to_numpy().astype(np.int64))
    np.save(HERE / "cell_type.npy", adata.obs["cell_type"].cat.codes.to_numpy().astype(np.int64))

    # The refused files hold only what their refusal needs.
    small = ad.AnnData(obs=adata.obs[["batch", "cell_type"]], obsm={"X_pca": pca})
    missing = small.copy()
    types = missing.obs["cell_type"].astype(object)
    types.iloc[[3, 50, 77]] = np.nan
    missing.obs["cell_type"] = pd.Categorical(types)
    write(missing, "missing_category.h5ad")

    write(small, "blosc.h5ad")
    replace_dataset(HERE / "blosc.h5ad", "obsm/X_pca", pca, **hdf5plugin.Blosc())

    sparse = small.copy()
    sparse.obsm["X_pca"] = sp.csr_matrix(pca)
    write(sparse, "sparse_obsm.h5ad")

    # anndata < 0.7 kept obs as one compound dataset, without encoding attributes.
    with h5py.File(HERE / "old_layout.h5ad", "w") as f:
        records = np.rec.fromarrays(
            [np.array([f"cell-{i}" for i in range(N_CELLS)], dtype="S10"), batch],
            names=["index", "batch"],
        )
        f.create_dataset("obs", data=records)
        f.create_dataset("obsm", data=np.rec.fromarrays([pca], names=["X_pca"]))


if __name__ == "__main__":
    main()
