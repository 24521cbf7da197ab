"""Reference numbers from scib-metrics 0.5.10 on the PBMC data, under an exact kNN graph.

Usage (from the repository root): python crates/diffbio-metrics/tests/data/make_scib_fixture.py \
    ../shared/data/pbmc-3chem crates/diffbio-metrics/tests/data/scib_pbmc.json
(in a virtual environment with `pip install scib-metrics==0.5.10`). Writes numbers only:
the data itself is GPL-3 and stays outside the repository.
"""

import json
import sys

import numpy as np
import scib_metrics
import scib_metrics.nearest_neighbors
from scib_metrics.nearest_neighbors import NeighborsResults
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def exact_knn(x, k):
    """k nearest neighbours *including the cell itself* (scib's convention), float64
    direct-form distances, ties by index: the same graph diffbio builds."""
    x = x.astype(np.float64)
    idx = np.empty((len(x), k), dtype=np.int64)
    dist = np.empty((len(x), k))
    for i in range(len(x)):
        d2 = ((x - x[i]) ** 2).sum(axis=1)
        d2[i] = -1.0  # the cell itself first
        order = np.lexsort((np.arange(len(x)), d2))[:k]
        idx[i] = order
        dist[i] = np.sqrt(np.maximum(d2[order], 0.0))
    return NeighborsResults(indices=idx, distances=dist)


def kbet_both(nn50, batch, labels):
    """scib's kbet_per_label as shipped (pynndescent in the diffusion space) and with that
    search replaced by the exact one (the definition diffbio reproduces)."""
    shipped = scib_metrics.kbet_per_label(nn50, batch, labels, return_df=True)
    approximate = scib_metrics.nearest_neighbors.pynndescent
    scib_metrics.nearest_neighbors.pynndescent = lambda x, n_neighbors: exact_knn(x, n_neighbors)
    try:
        nn50 = NeighborsResults(indices=nn50.indices, distances=nn50.distances)  # fresh cache
        exact = scib_metrics.kbet_per_label(nn50, batch, labels, return_df=True)
    finally:
        scib_metrics.nearest_neighbors.pynndescent = approximate
    per_label = {str(c): (None if np.isnan(v) else float(v)) for c, v in zip(exact[1]["cluster"], exact[1]["kBET"])}
    return float(exact[0]), per_label, float(shipped[0])


def main(data_dir, out):
    batch = np.load(f"{data_dir}/batch.npy")
    labels = np.load(f"{data_dir}/celltype.npy")
    result = {
        "source": "scib-metrics 0.5.10 on ../shared/data/pbmc-3chem with an exact kNN graph "
        "(scripts/make_scib_fixture.py); k counts the cell itself, as in scib",
        "embeddings": {},
    }
    # NMI / ARI of fixed label pairs (scikit-learn, which scib calls on its k-means labels).
    n = len(labels)
    other = (labels.astype(np.int64) * 7 + np.arange(n) % 3) % 11
    result["nmi_ari"] = {
        "other_labels": "(celltype * 7 + i % 3) % 11",
        "celltype_vs_batch": [
            float(normalized_mutual_info_score(labels, batch)),
            float(adjusted_rand_score(labels, batch)),
        ],
        "celltype_vs_other": [
            float(normalized_mutual_info_score(labels, other)),
            float(adjusted_rand_score(labels, other)),
        ],
    }
    pre = np.load(f"{data_dir}/X_pca.npy")
    for name in ["X_pca", "X_pca_harmony"]:
        x = np.load(f"{data_dir}/{name}.npy")
        nn90 = exact_knn(x, 90)
        nn15 = nn90.subset_neighbors(15)
        result["embeddings"][name] = {
            "ilisi": float(scib_metrics.ilisi_knn(nn90, batch)),
            "clisi": float(scib_metrics.clisi_knn(nn90, labels)),
            "lisi_batch_per_cell_head": [
                float(v) for v in scib_metrics.lisi_knn(nn90, batch)[:20]
            ],
            "graph_connectivity": float(scib_metrics.graph_connectivity(nn15, labels)),
            "silhouette_label": float(scib_metrics.silhouette_label(x, labels)),
            "silhouette_batch": float(scib_metrics.silhouette_batch(x, labels, batch)),
            "bras": float(scib_metrics.bras(x, labels, batch)),
            "isolated_labels": float(scib_metrics.isolated_labels(x, labels, batch)),
            "pcr": float(
                scib_metrics.utils.principal_component_regression(x, batch, categorical=True)
            ),
            "pcr_comparison": float(
                scib_metrics.pcr_comparison(pre, x, batch, categorical=True)
            ),
        }
        kbet, per_label, shipped = kbet_both(nn90.subset_neighbors(50), batch, labels)
        result["embeddings"][name]["kbet_exact_knn"] = kbet
        result["embeddings"][name]["kbet_exact_knn_per_label"] = per_label
        result["embeddings"][name]["kbet_scib_pynndescent"] = shipped
        jax_kmeans = scib_metrics.nmi_ari_cluster_labels_kmeans(x, labels)
        result["embeddings"][name]["nmi_scib_jax_kmeans"] = float(jax_kmeans["nmi"])
        result["embeddings"][name]["ari_scib_jax_kmeans"] = float(jax_kmeans["ari"])
        print(name, result["embeddings"][name])
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
