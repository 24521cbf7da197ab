"""scib-metrics 0.5.10's k-means NMI/ARI on the PBMC data over seeds 0..9 (its KMeans runs
one k-means++ start per seed), for the spread diffbio's multi-start k-means must land in.

Usage (from the repository root, in a virtual environment with
`pip install scib-metrics==0.5.10`, e.g. benches/side-by-side/.venv-scib):
    python crates/diffbio-metrics/tests/data/make_kmeans_fixture.py \
        ../shared/data/pbmc-3chem crates/diffbio-metrics/tests/data/scib_kmeans_seeds.json
Writes numbers only: the data itself is GPL-3 and stays outside the repository.
"""

import json
import sys

import numpy as np
from scib_metrics.utils import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def main(data, out):
    labels = np.load(f"{data}/celltype.npy")
    n_clusters = len(np.unique(labels))
    result = {
        "source": "scib-metrics 0.5.10 KMeans (one k-means++ start per seed), as in "
        "nmi_ari_cluster_labels_kmeans, seeds 0..9 (make_kmeans_fixture.py)",
        "embeddings": {},
    }
    for name in ["X_pca", "X_pca_harmony"]:
        x = np.load(f"{data}/{name}.npy")
        nmi, ari = [], []
        for seed in range(10):
            fit = KMeans(n_clusters, seed=seed).fit(x)
            predicted = np.asarray(fit.labels_)
            nmi.append(float(normalized_mutual_info_score(labels, predicted, average_method="arithmetic")))
            ari.append(float(adjusted_rand_score(labels, predicted)))
        result["embeddings"][name] = {"nmi": nmi, "ari": ari}
        print(name, "NMI", min(nmi), max(nmi), "ARI", min(ari), max(ari))
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
