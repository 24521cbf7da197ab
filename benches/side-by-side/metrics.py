#!/usr/bin/env python3
"""Side by side: every integration metric with scib-metrics 0.5.10, with `diffbio score` and
with the diffbio-metrics Python package's Benchmarker, on the same seeded synthetic data, in
ONE run (see benches/side-by-side/metrics.sh).

Data (seeded, written once as .npy under benches/side-by-side/out/metrics-N/): N cells x 50 dims, 3 batches,
10 cell types in a 10-dim biological subspace (one rare type in a single batch, so isolated
labels has a label to score), a per-batch shift in every dimension; `pre.npy` is that data,
`post.npy` the same cells with 80 % of the batch shift removed (a stand-in for an
integrated embedding). Both tools score `post.npy` with `pre.npy` as the pre-integration
embedding. scib-metrics runs its own Benchmarker (pynndescent 90-NN graph, all default
metrics, n_jobs=-1); diffbio runs the release `diffbio score` binary (exact kNN), and the
same Benchmarker calls with `from diffbio_metrics.benchmark import Benchmarker` (exact kNN,
n_jobs=-1). Wall time and peak RSS (os.wait4) of each process are reported, with the
scores; each Python process's time includes its imports and reading the data.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DIFFBIO = os.path.join(ROOT, "target", "release", "diffbio")


def make_data(n, out):
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "post.npy")):
        return
    rng = np.random.default_rng(7)
    dims, bio_dims, n_types, n_batches = 50, 10, 10, 3
    basis = np.linalg.qr(rng.normal(size=(dims, bio_dims)))[0]  # dims x bio_dims
    centres = rng.normal(scale=4.0, size=(n_types, bio_dims))
    weights = rng.uniform(0.5, 2.0, size=n_types)
    weights[-1] = 0.05  # a rare type ...
    batch = rng.integers(0, n_batches, size=n)
    celltype = rng.choice(n_types, size=n, p=weights / weights.sum())
    batch[celltype == n_types - 1] = 0  # ... measured in one batch only
    shifts = rng.normal(scale=1.5, size=(n_batches, dims))
    bio = centres[celltype] + rng.normal(scale=0.8, size=(n, bio_dims))
    noise = rng.normal(scale=0.5, size=(n, dims))
    pre = bio @ basis.T + noise + shifts[batch]
    post = pre - 0.8 * shifts[batch]
    np.save(os.path.join(out, "pre.npy"), pre.astype(np.float32))
    np.save(os.path.join(out, "post.npy"), post.astype(np.float32))
    np.save(os.path.join(out, "batch.npy"), batch.astype(np.int32))
    np.save(os.path.join(out, "celltype.npy"), celltype.astype(np.int32))


def run_benchmarker(data, package):
    """`Benchmarker` of scib-metrics or of diffbio-metrics (same calls), on `post`."""
    import importlib

    import anndata

    Benchmarker = importlib.import_module(f"{package}.benchmark").Benchmarker

    adata = anndata.AnnData(np.load(os.path.join(data, "pre.npy")))
    adata.obs["batch"] = np.load(os.path.join(data, "batch.npy")).astype(str)
    adata.obs["celltype"] = np.load(os.path.join(data, "celltype.npy")).astype(str)
    adata.obsm["X_pre"] = adata.X.copy()
    adata.obsm["post"] = np.load(os.path.join(data, "post.npy"))
    bm = Benchmarker(
        adata,
        batch_key="batch",
        label_key="celltype",
        embedding_obsm_keys=["post"],
        pre_integrated_embedding_obsm_key="X_pre",
        n_jobs=-1,
        progress_bar=False,
    )
    bm.prepare()
    bm.benchmark()
    table = bm.get_results(min_max_scale=False)
    return {k: float(v) for k, v in table.loc["post"].items()}


def timed(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return out, seconds, usage.ru_maxrss / 1024.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--skip-scib", action="store_true")
    parser.add_argument("--worker", choices=["scib_metrics", "diffbio_metrics"])
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_benchmarker(args.data, args.worker)))
        return
    data = os.path.join(HERE, "out", f"metrics-{args.cells}")
    make_data(args.cells, data)
    file = lambda name: os.path.join(data, name)
    results = {}
    out, seconds, peak = timed([
        DIFFBIO, "score", "--embedding", file("post.npy"), "--batch", file("batch.npy"),
        "--labels", file("celltype.npy"), "--pre", file("pre.npy"), "--json",
    ])
    results["diffbio"] = {"seconds": seconds, "peak_mib": peak, "scores": json.loads(out)}
    print(f"diffbio score: {seconds:.1f} s, peak {peak:.0f} MiB", flush=True)
    out, seconds, peak = timed([sys.executable, __file__, "--worker", "diffbio_metrics", "--data", data])
    results["diffbio-metrics"] = {"seconds": seconds, "peak_mib": peak, "scores": json.loads(out.strip().splitlines()[-1])}
    print(f"diffbio-metrics Benchmarker (Python): {seconds:.1f} s, peak {peak:.0f} MiB", flush=True)
    if not args.skip_scib:
        out, seconds, peak = timed([sys.executable, __file__, "--worker", "scib_metrics", "--data", data])
        results["scib-metrics"] = {"seconds": seconds, "peak_mib": peak, "scores": json.loads(out.strip().splitlines()[-1])}
        print(f"scib-metrics Benchmarker: {seconds:.1f} s, peak {peak:.0f} MiB", flush=True)
        print(f"ratio (scib / diffbio score): {seconds / results['diffbio']['seconds']:.1f}x")
        print(f"ratio (scib / diffbio-metrics): {seconds / results['diffbio-metrics']['seconds']:.1f}x")
    with open(os.path.join(data, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
