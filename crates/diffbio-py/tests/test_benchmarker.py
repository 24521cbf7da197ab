"""The Benchmarker against the diffbio CLI on the same files, against scib-metrics 0.5.10's
own numbers on real data, and on every refused input."""

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import H5AD, PBMC, SCIB_PBMC, cli_json

from diffbio_metrics import NeighborsResults
from diffbio_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation

# Column title -> the CLI's JSON key, in scib-metrics' order.
COLUMNS = {
    "Isolated labels": "isolated_labels",
    "KMeans NMI": "nmi_kmeans",
    "KMeans ARI": "ari_kmeans",
    "Silhouette label": "silhouette_label",
    "cLISI": "clisi",
    "BRAS": "bras",
    "iLISI": "ilisi",
    "KBET": "kbet",
    "Graph connectivity": "graph_connectivity",
    "PCR comparison": "pcr_comparison",
    "Batch correction": "batch_correction",
    "Bio conservation": "bio_conservation",
    "Total": "total",
}


def benchmarker(adata, keys=("X_pca", "X_scvi"), **kwargs):
    kwargs.setdefault("pre_integrated_embedding_obsm_key", "X_pca")
    return Benchmarker(adata, "batch", "cell_type", list(keys), **kwargs)


def results(bm, **kwargs):
    bm.benchmark()
    return bm.get_results(**kwargs)


def test_results_table_has_scib_metrics_layout(cells):
    df = results(benchmarker(cells))
    assert list(df.columns) == list(COLUMNS)
    assert list(df.index) == ["X_pca", "X_scvi", "Metric Type"]
    types = df.loc["Metric Type"]
    assert list(types[:5]) == ["Bio conservation"] * 5
    assert list(types[5:10]) == ["Batch correction"] * 5
    assert list(types[10:]) == ["Aggregate score"] * 3
    scores = df.drop("Metric Type").astype(float)
    assert np.isfinite(scores.values).all()
    total = 0.4 * scores["Batch correction"] + 0.6 * scores["Bio conservation"]
    np.testing.assert_allclose(scores["Total"], total, rtol=0, atol=1e-15)
    np.testing.assert_allclose(scores["Bio conservation"], scores.iloc[:, :5].mean(axis=1), atol=1e-15)


@pytest.mark.parametrize("min_max_scale", [False, True])
def test_results_equal_the_cli_on_the_same_file(cells, min_max_scale):
    df = results(benchmarker(cells), min_max_scale=min_max_scale)
    args = ["--h5ad", str(H5AD / "cells.h5ad"), "--obsm", "X_pca,X_scvi", "--batch-key", "batch",
            "--label-key", "cell_type", "--pre-obsm", "X_pca"]
    cli = cli_json(*args, *(["--min-max-scale"] if min_max_scale else []))
    for embedding in ["X_pca", "X_scvi"]:
        for column, key in COLUMNS.items():
            assert df.loc[embedding, column] == pytest.approx(cli[embedding][key], rel=0, abs=1e-12), (
                embedding, column)


def test_scanpy_graph_from_obsp_equals_the_cli_and_lists_what_it_skips(cells):
    bm = benchmarker(cells)
    bm.prepare(neighbors_from_obsp="distances")
    df = results(bm)
    cli = cli_json("--h5ad", str(H5AD / "cells.h5ad"), "--obsm", "X_pca,X_scvi", "--batch-key",
                   "batch", "--label-key", "cell_type", "--pre-obsm", "X_pca", "--knn-obsp", "distances")
    skipped = {metric for metric, _ in bm.skipped["X_scvi"]}
    # diffbio's own metrics (batch entropy, ...) are not in scib's table: not computed here.
    assert skipped == {s["metric"] for s in cli["X_scvi"]["skipped"] if s["metric"] in COLUMNS.values()}
    assert {"ilisi", "clisi", "kbet"} <= skipped
    assert bm.skipped["X_pca"] == []
    for column, key in COLUMNS.items():
        want = cli["X_scvi"].get(key)
        got = df.loc["X_scvi", column]
        if want is None:
            assert np.isnan(got), column
        else:
            assert got == pytest.approx(want, rel=0, abs=1e-12), column


def test_a_graph_alone_is_a_row_of_its_own_equal_to_the_cli(cells):
    bm = benchmarker(cells, keys=["X_pca"])
    bm.prepare(graphs_from_obsp={"BBKNN": "distances"})
    df = results(bm)
    assert list(df.index) == ["X_pca", "BBKNN", "Metric Type"]
    cli = cli_json("--h5ad", str(H5AD / "cells.h5ad"), "--batch-key", "batch", "--label-key",
                   "cell_type", "--graph-obsp", "distances", "--graph-name", "BBKNN")["BBKNN"]
    assert {m for m, _ in bm.skipped["BBKNN"]} == {s["metric"] for s in cli["skipped"] if s["metric"] in COLUMNS.values()}
    needs = [m for m, reason in bm.skipped["BBKNN"] if reason.startswith("needs an embedding")]
    assert set(needs) == {"pcr_comparison", "silhouette_label", "isolated_labels", "bras", "nmi_kmeans", "ari_kmeans"}
    assert df.loc["BBKNN", "Graph connectivity"] == pytest.approx(cli["graph_connectivity"], abs=1e-12)
    for column in ["Silhouette label", "BRAS", "PCR comparison", "Total"]:
        assert np.isnan(df.loc["BBKNN", column]), column
    with pytest.raises(KeyError, match="'connectivities'"):
        benchmarker(cells).prepare(graphs_from_obsp={"BBKNN": "connectivities"})


def test_a_neighbor_computer_with_the_exact_graph_gives_the_exact_scores(cells):
    def exact(x, k):
        d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        return NeighborsResults(indices=order, distances=np.take_along_axis(d, order, axis=1))

    plain = results(benchmarker(cells))
    bm = benchmarker(cells)
    bm.prepare(neighbor_computer=exact)
    given = results(bm)
    pd.testing.assert_frame_equal(given.drop("Metric Type").astype(float),
                                  plain.drop("Metric Type").astype(float), rtol=0, atol=1e-6)


def test_switches_leave_metrics_out(cells):
    bm = benchmarker(cells, bio_conservation_metrics=BioConservation(nmi_ari_cluster_labels_kmeans=False),
                     batch_correction_metrics=None)
    df = results(bm)
    assert list(df.columns) == ["Isolated labels", "Silhouette label", "cLISI", "Bio conservation"]
    clean = results(benchmarker(cells, batch_correction_metrics=None), clean_names=False)
    assert "nmi_ari_cluster_labels_kmeans_nmi" in clean.columns


def test_metrics_switched_off_are_not_computed(cells):
    full = results(benchmarker(cells))
    bm = benchmarker(cells, batch_correction_metrics=BatchCorrection(kbet_per_label=False),
                     bio_conservation_metrics=BioConservation(isolated_labels=False, silhouette_label=False))
    df = results(bm)
    assert all(frame.empty for frame in bm.kbet_per_label.values())
    assert all(not bm.skipped[key] for key in bm.skipped)
    kept = ["KMeans NMI", "KMeans ARI", "cLISI", "BRAS", "iLISI", "Graph connectivity", "PCR comparison"]
    assert list(df.columns) == kept + ["Batch correction", "Bio conservation", "Total"]
    pd.testing.assert_frame_equal(df[kept], full[kept])


def test_the_thread_count_does_not_change_the_results(cells):
    one = results(benchmarker(cells, n_jobs=1))
    two = results(benchmarker(cells, n_jobs=2))
    pd.testing.assert_frame_equal(one, two)


def test_a_metric_undefined_on_the_data_is_nan_and_listed(cells):
    cells.obs["own_batch"] = [f"b{i}" for i in range(cells.n_obs)]
    bm = Benchmarker(cells, "own_batch", "cell_type", ["X_scvi"], pre_integrated_embedding_obsm_key="X_pca")
    df = results(bm)
    assert np.isnan(df.loc["X_scvi", "BRAS"])
    assert np.isnan(df.loc["X_scvi", "Batch correction"]) and np.isnan(df.loc["X_scvi", "Total"])
    assert np.isfinite(df.loc["X_scvi", "iLISI"]) and np.isfinite(df.loc["X_scvi", "Bio conservation"])
    (metric, reason), *_ = [s for s in bm.skipped["X_scvi"] if s[0] == "bras"]
    assert f"({cells.n_obs} cells in {cells.n_obs} batches)" in reason


def test_per_cell_lisi_equals_the_clis_file(cells, tmp_path):
    bm = benchmarker(cells)
    results(bm)
    out = tmp_path / "lisi.tsv"
    cli_json("--h5ad", str(H5AD / "cells.h5ad"), "--obsm", "X_pca,X_scvi", "--batch-key", "batch",
             "--label-key", "cell_type", "--per-cell", str(out))
    cli = pd.read_csv(out, sep="\t", float_precision="round_trip")
    for key in ["X_pca", "X_scvi"]:
        per_cell = bm.lisi_per_cell[key]
        assert list(per_cell.index) == list(cells.obs_names)
        np.testing.assert_array_equal(per_cell["batch"], cli[f"{key}:batch_lisi"])
        np.testing.assert_array_equal(per_cell["label"], cli[f"{key}:label_lisi"])


def test_kbet_per_label_names_the_cell_types(cells):
    bm = benchmarker(cells, keys=["X_scvi"])
    df = results(bm)
    per_label = bm.kbet_per_label["X_scvi"]
    assert list(per_label.columns) == ["label", "cells", "acceptance"]
    assert set(per_label["label"]) == set(cells.obs["cell_type"].astype(str))
    assert per_label["cells"].sum() == cells.n_obs
    assert per_label["acceptance"].dropna().mean() == pytest.approx(df.loc["X_scvi", "KBET"], abs=1e-15)


@pytest.mark.skipif(not PBMC.exists(), reason="../shared/data/pbmc-3chem is not beside the repository")
def test_scib_metrics_own_numbers_on_real_pbmcs():
    obs = pd.read_csv(PBMC / "obs.tsv", sep="\t", index_col=0).astype("category")
    obsm = {k: np.load(PBMC / f"{k}.npy") for k in ["X_pca", "X_pca_harmony"]}
    adata = ad.AnnData(obs=obs, obsm=obsm)
    bm = Benchmarker(adata, "batch", "celltype", ["X_pca", "X_pca_harmony"],
                     pre_integrated_embedding_obsm_key="X_pca")
    df = results(bm, clean_names=False)
    scib = json.loads(SCIB_PBMC.read_text())["embeddings"]
    rows = {"ilisi_knn": "ilisi", "clisi_knn": "clisi", "graph_connectivity": "graph_connectivity",
            "silhouette_label": "silhouette_label", "bras": "bras", "isolated_labels": "isolated_labels",
            "kbet_per_label": "kbet_exact_knn", "pcr_comparison": "pcr_comparison"}
    for embedding, want in scib.items():
        for row, key in rows.items():
            assert df.loc[embedding, row] == pytest.approx(want[key], abs=1e-6), (embedding, row)


def test_refused_inputs_are_python_exceptions(cells):
    with pytest.raises(KeyError, match="X_umap"):
        benchmarker(cells, keys=["X_umap"])
    with pytest.raises(KeyError, match="'sample'"):
        Benchmarker(cells, "sample", "cell_type", ["X_pca"])
    with pytest.raises(ValueError, match="holds floats"):
        Benchmarker(cells, "batch", "n_counts", ["X_pca"])
    with pytest.raises(ValueError, match="Either batch or bio"):
        benchmarker(cells, bio_conservation_metrics=None, batch_correction_metrics=None)
    with pytest.raises(NotImplementedError, match="Leiden"):
        benchmarker(cells, bio_conservation_metrics=BioConservation(nmi_ari_cluster_labels_leiden=True))
    with pytest.raises(NotImplementedError, match="perplexity"):
        benchmarker(cells, batch_correction_metrics=BatchCorrection(ilisi_knn={"perplexity": 10}))
    with pytest.raises(ValueError, match="pre_integrated_embedding_obsm_key"):
        Benchmarker(cells, "batch", "cell_type", ["X_pca"]).prepare()
    with pytest.raises(ValueError, match="n_jobs"):
        results(benchmarker(cells, n_jobs=0))
    broken = cells.copy()
    broken.obsm["X_scvi"][3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or non-finite"):
        results(benchmarker(broken))
    missing = ad.read_h5ad(H5AD / "missing_category.h5ad")
    with pytest.raises(ValueError, match="no value for 3 cells"):
        Benchmarker(missing, "batch", "cell_type", ["X_pca"])
    with pytest.raises(ValueError, match="same shape"):
        NeighborsResults(indices=np.zeros((3, 2), dtype=int), distances=np.zeros((3, 3)))
    bm = benchmarker(cells)
    bm.prepare(neighbor_computer=lambda x, k: NeighborsResults(
        indices=np.full((x.shape[0], 3), x.shape[0] + 5), distances=np.ones((x.shape[0], 3))))
    with pytest.raises(ValueError, match="neighbour graph"):
        bm.benchmark()


def test_plot_results_table_writes_scibs_svg(cells, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    bm = benchmarker(cells)
    bm.benchmark()
    fig = bm.plot_results_table(show=False, save_dir=tmp_path)
    svg = (tmp_path / "scib_results.svg").read_text()
    for text in ["X_pca", "X_scvi", "Bio conservation", "Batch correction", "Aggregate score", "KMeans"]:
        assert text in svg, text
    totals = bm.get_results().drop("Metric Type")["Total"].astype(float)
    best, other = totals.idxmax(), totals.idxmin()
    assert svg.index(f">{best}<") < svg.index(f">{other}<"), "best total first"
    assert fig.axes
