"""scib-metrics' metric functions: equal to the Benchmarker's columns (which equal the CLI's)
on the exact graph, per-cell LISI against scib-metrics' own values, every refused option."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import PBMC, SCIB_PBMC

import diffbio_metrics as dm
from diffbio_metrics.benchmark import Benchmarker


def exact_neighbours(x, k):
    """The exact kNN graph, each cell first in its own row, as scib's computers return it."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return dm.NeighborsResults(indices=order, distances=np.take_along_axis(d, order, axis=1))


@pytest.fixture
def table(cells):
    bm = Benchmarker(cells, "batch", "cell_type", ["X_scvi"], pre_integrated_embedding_obsm_key="X_pca")
    bm.benchmark()
    return bm.get_results(clean_names=False).loc["X_scvi"]


def test_each_function_equals_the_benchmarkers_column(cells, table):
    x, pre = cells.obsm["X_scvi"], cells.obsm["X_pca"]
    batch, labels = cells.obs["batch"].values, cells.obs["cell_type"].values
    g90, g50, g15 = (exact_neighbours(x, k) for k in (90, 50, 15))
    got = {
        "ilisi_knn": dm.ilisi_knn(g90, batch),
        "clisi_knn": dm.clisi_knn(g90, labels),
        "kbet_per_label": dm.kbet_per_label(g50, batch, labels),
        "graph_connectivity": dm.graph_connectivity(g15, labels),
        "silhouette_label": dm.silhouette_label(x, labels),
        "bras": dm.bras(x, labels, batch),
        "isolated_labels": dm.isolated_labels(x, labels, batch),
        "pcr_comparison": dm.pcr_comparison(pre, x, batch, categorical=True),
        "nmi_ari_cluster_labels_kmeans_nmi": dm.nmi_ari_cluster_labels_kmeans(x, labels)["nmi"],
        "nmi_ari_cluster_labels_kmeans_ari": dm.nmi_ari_cluster_labels_kmeans(x, labels)["ari"],
    }
    for name, value in got.items():
        assert value == pytest.approx(table[name], rel=0, abs=1e-9), name
    assert 0 <= dm.silhouette_batch(x, labels, batch) <= 1


def test_per_cell_lisi_gives_the_scaled_ilisi(cells):
    x, batch = cells.obsm["X_scvi"], cells.obs["batch"].values
    g90 = exact_neighbours(x, 90)
    per_cell = dm.lisi_knn(g90, batch)
    assert per_cell.shape == (cells.n_obs,) and per_cell.dtype == np.float64
    assert ((per_cell >= 1 - 1e-12) & (per_cell <= batch.unique().size + 1e-12)).all()
    n_batches = len(np.unique(batch))
    assert dm.ilisi_knn(g90, batch) == pytest.approx((np.median(per_cell) - 1) / (n_batches - 1), abs=1e-12)


def test_kbet_per_label_returns_scibs_dataframe(cells):
    g50 = exact_neighbours(cells.obsm["X_scvi"], 50)
    labels = cells.obs["cell_type"].values
    score, df = dm.kbet_per_label(g50, cells.obs["batch"].values, labels, return_df=True)
    assert list(df.columns) == ["cluster", "kBET"]
    assert sorted(df["cluster"]) == sorted(np.unique(np.asarray(labels)))
    assert score == pytest.approx(np.nanmean(df["kBET"]), abs=1e-15)


@pytest.mark.skipif(not PBMC.exists(), reason="../shared/data/pbmc-3chem is not beside the repository")
def test_per_cell_lisi_equals_scib_metrics_on_real_pbmcs():
    obs = pd.read_csv(PBMC / "obs.tsv", sep="\t", index_col=0)
    want = json.loads(SCIB_PBMC.read_text())["embeddings"]["X_pca"]["lisi_batch_per_cell_head"]
    per_cell = dm.lisi_knn(exact_neighbours(np.load(PBMC / "X_pca.npy"), 90), obs["batch"].values)
    np.testing.assert_allclose(per_cell[: len(want)], want, rtol=0, atol=1e-5)


def test_options_diffbio_does_not_compute_are_refused(cells):
    x, g = cells.obsm["X_scvi"], exact_neighbours(cells.obsm["X_scvi"], 20)
    batch, labels = cells.obs["batch"].values, cells.obs["cell_type"].values
    refused = [
        (lambda: dm.ilisi_knn(g, batch, perplexity=5), "perplexity=5"),
        (lambda: dm.clisi_knn(g, labels, scale=False), "scale=False"),
        (lambda: dm.lisi_knn(g, labels, perplexity=3.0), "perplexity=3.0"),
        (lambda: dm.kbet_per_label(g, batch, labels, alpha=0.1), "alpha=0.1"),
        (lambda: dm.silhouette_label(x, labels, rescale=False), "rescale=False"),
        (lambda: dm.silhouette_batch(x, labels, batch, metric="cosine"), "metric='cosine'"),
        (lambda: dm.bras(x, labels, batch, between_cluster_distances="furthest"), "furthest"),
        (lambda: dm.isolated_labels(x, labels, batch, iso_threshold=2), "iso_threshold=2"),
        (lambda: dm.pcr_comparison(x, x, batch), "categorical=True"),
        (lambda: dm.pcr_comparison(x, x, batch, categorical=True, n_components=5), "n_components"),
        (lambda: dm.nmi_ari_cluster_labels_leiden(g, labels), "Leiden"),
    ]
    for call, names in refused:
        with pytest.raises(NotImplementedError, match=names.replace("(", r"\(")):
            call()


def test_bad_arrays_are_value_errors(cells):
    x, g = cells.obsm["X_scvi"], exact_neighbours(cells.obsm["X_scvi"], 20)
    labels = cells.obs["cell_type"].values
    with pytest.raises(ValueError, match="holds floats"):
        dm.graph_connectivity(g, np.linspace(0, 1, cells.n_obs))
    with pytest.raises(ValueError, match="1-d"):
        dm.silhouette_label(x, np.zeros((cells.n_obs, 2), dtype=int))
    with pytest.raises(ValueError, match="2-d"):
        dm.silhouette_label(x[:, 0], labels)
    with pytest.raises(ValueError, match="one per sample"):
        dm.silhouette_label(x, labels[:-1])
    with pytest.raises(ValueError, match="distinct labels"):
        dm.ilisi_knn(g, np.zeros(cells.n_obs, dtype=int))
    with pytest.raises(ValueError, match="no value for 1 cells"):
        dm.clisi_knn(g, pd.Series(labels).where(np.arange(cells.n_obs) != 7))
    out_of_range = dm.NeighborsResults(indices=[[0, 5], [1, 0], [2, 1]], distances=np.ones((3, 2)))
    with pytest.raises(ValueError, match="neighbour graph's row 0"):
        dm.ilisi_knn(out_of_range, ["a", "b", "a"])
    with pytest.raises(ValueError, match="n_jobs"):
        dm.silhouette_label(x, labels, n_jobs=-2)
