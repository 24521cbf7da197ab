"""Reference numbers from scib-metrics 0.5.10 on the PBMC data, under an exact kNN graph.

Usage: python scripts/make_scib_fixture.py ../shared/data/pbmc-3chem tests/data/scib_pbmc.json
(in a virtual environment with `pip install scib-metrics==0.5.10`). Writes numbers only:
the data itself is GPL-3 and stays outside the repository.
"""

import json
import sys

import numpy as np
import scib_metrics
from scib_metrics.nearest_neighbors import NeighborsResults


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


def main(data_dir, out):
    batch = np.load(f"{data_dir}/batch.npy")
    labels = np.load(f"{data_dir}/celltype.npy")
    result = {
        "source": "scib-metrics 0.5.10 on ../shared/data/pbmc-3chem with an exact kNN graph "
        "(scripts/make_scib_fixture.py); k counts the cell itself, as in scib",
        "embeddings": {},
    }
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
        }
        print(name, result["embeddings"][name])
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
