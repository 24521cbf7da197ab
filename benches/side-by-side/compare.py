#!/usr/bin/env python3
"""Side-by-side benchmark: SPEC.md's formulas in JAX, diffbio, and scikit-learn, in ONE run.

Run through `benches/side-by-side/compare.sh` (it installs the Python side and builds the Rust driver).
Inputs are generated once (seeded) and written as .npy files; every measurement runs in its
own process, timed inside (median of REPS calls after one warm-up call, so JAX's jit
compilation is excluded), and its peak memory is that process's max RSS (os.wait4).

- JAX: the dense formulas of SPEC.md §1 and §6, jit-compiled, float32, forward + backward
  (jax.value_and_grad), exact k-th neighbour via lax.top_k (DiffBio's `mode="hard"`).
- diffbio: the fused ops (examples/bench_ops.rs), float32, forward + backward.
- scikit-learn: roc_auc_score, against diffbio's exact roc_auc.
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
DRIVER = os.path.join(ROOT, "target", "release", "examples", "bench_ops")


# ---------------------------------------------------------------- workers (one per process)
def median_time(fn, reps):
    value = fn()  # warm-up (jit compilation)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2], value


def worker(kind, args):
    if kind == "sklearn-roc-auc":
        from sklearn.metrics import roc_auc_score

        s, y, reps = np.load(args[0]), np.load(args[1]), int(args[2])
        sec, val = median_time(lambda: float(roc_auc_score(y, s)), reps)
        return len(s), sec, val

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", False)
    if kind == "jax-batch-mixing":
        x = jnp.asarray(np.load(args[0]), dtype=jnp.float32)
        b = np.load(args[1])
        k, nb, temp, reps = int(args[2]), int(args[3]), float(args[4]), int(args[5])
        onehot = jnp.asarray(np.eye(nb, dtype=np.float32)[b])

        def loss(x):
            n = x.shape[0]
            sq = jnp.sum(x * x, axis=1)
            d = sq[:, None] + sq[None, :] - 2.0 * x @ x.T + 1e10 * jnp.eye(n, dtype=x.dtype)
            kappa = -jax.lax.top_k(-d, k)[0][:, k - 1]
            a = jax.nn.softmax(-d / temp, axis=1)
            m = jax.nn.sigmoid((kappa[:, None] - d - 1e-10) / temp)
            am = a * m
            w = am / (jnp.sum(am, axis=1, keepdims=True) + 1e-8)
            p = w @ onehot
            h = -jnp.sum(p * jnp.log(p + 1e-8), axis=1)
            return -jnp.mean(h / (jnp.log(float(nb)) + 1e-8))

        f = jax.jit(jax.value_and_grad(loss))

        def run():
            v, g = f(x)
            g.block_until_ready()
            return float(v)

        sec, val = median_time(run, reps)
        return x.shape[0], sec, val

    if kind == "jax-auroc-surrogate":
        s = jnp.asarray(np.load(args[0]), dtype=jnp.float32)
        y = jnp.asarray(np.load(args[1]))
        temp, reps = jnp.float32(float(args[2])), int(args[3])

        def auroc(s, t):
            pos = y == 1
            mask = pos[:, None] & (y == 0)[None, :]
            sig = jax.nn.sigmoid((s[:, None] - s[None, :]) / t)
            pairs = jnp.maximum(jnp.sum(pos) * jnp.sum(y == 0), 1)
            return jnp.sum(jnp.where(mask, sig, 0.0)) / pairs

        f = jax.jit(jax.value_and_grad(auroc, argnums=(0, 1)))

        def run():
            v, (gs, gt) = f(s, temp)
            gs.block_until_ready()
            return float(v)

        sec, val = median_time(run, reps)
        return s.shape[0], sec, val
    raise SystemExit(f"unknown worker {kind}")


# ---------------------------------------------------------------- driver
def measure(cmd, timeout):
    """Runs one measurement process; returns (seconds, value, peak RSS bytes) or None."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = time.time()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.time() - start > timeout:
            proc.kill()
            os.wait4(proc.pid, 0)
            return None
        time.sleep(0.05)
    out = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(f"failed: {' '.join(cmd)}\n{proc.stderr.read()[-2000:]}\n")
        return None
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["value"], usage.ru_maxrss * 1024


def fmt_time(r):
    return "—" if r is None else (f"{r[0] * 1e3:.1f} ms" if r[0] < 1 else f"{r[0]:.2f} s")


def fmt_mem(r):
    return "—" if r is None else f"{r[2] / 2**20:.0f} MiB"


def ratio(base, ours):
    return "—" if base is None or ours is None else f"{base[0] / ours[0]:.1f}×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs="+")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--timeout", type=float, default=900)
    opts = ap.parse_args()
    if opts.worker:
        n, sec, val = worker(opts.worker[0], opts.worker[1:])
        print(json.dumps({"n": n, "seconds": sec, "value": val}))
        return

    os.makedirs(opts.out, exist_ok=True)
    rng = np.random.default_rng(0)
    py = [sys.executable, os.path.abspath(__file__), "--worker"]
    rows, table = [], []

    def save(name, arr):
        path = os.path.join(opts.out, name)
        np.save(path, arr)
        return path

    bm_sizes = [1000, 4000] if opts.quick else [1000, 4000, 16000, 65536, 100000]
    for n in bm_sizes:
        x = save(f"bm_x_{n}.npy", rng.standard_normal((n, 32), dtype=np.float32))
        b = save(f"bm_b_{n}.npy", rng.integers(0, 3, n).astype(np.int64))
        reps = 5 if n <= 4000 else 1
        jax_r = measure(py + ["jax-batch-mixing", x, b, "15", "3", "1.0", str(reps)], opts.timeout) if n <= 16000 else None
        ours = measure([DRIVER, "batch-mixing", x, b, "15", "3", "1.0", str(reps)], opts.timeout)
        rows.append({"op": "batch_mixing fwd+bwd (d=32, k=15, B=3)", "n": n, "jax": jax_r, "diffbio": ours})

    au_sizes = [1000, 4000] if opts.quick else [1000, 4000, 16000]
    for n in au_sizes:
        s = save(f"au_s_{n}.npy", rng.standard_normal(n).astype(np.float32))
        y = save(f"au_y_{n}.npy", (rng.random(n) < 0.5).astype(np.int64))
        reps = 5 if n <= 4000 else 3
        jax_r = measure(py + ["jax-auroc-surrogate", s, y, "1.0", str(reps)], opts.timeout)
        ours = measure([DRIVER, "auroc-surrogate", s, y, "1.0", str(reps)], opts.timeout)
        rows.append({"op": "auroc surrogate fwd+bwd (T=1)", "n": n, "jax": jax_r, "diffbio": ours})

    ex_sizes = [1_000_000] if opts.quick else [1_000_000, 10_000_000]
    for n in ex_sizes:
        y_arr = (rng.random(n) < 0.3).astype(np.uint8)
        s = save(f"ex_s_{n}.npy", rng.random(n) + 0.3 * y_arr)
        y = save(f"ex_y_{n}.npy", y_arr)
        sk = measure(py + ["sklearn-roc-auc", s, y, "3"], opts.timeout)
        ours = measure([DRIVER, "roc-auc", s, y, "3"], opts.timeout)
        rows.append({"op": "exact roc_auc (vs scikit-learn)", "n": n, "jax": sk, "diffbio": ours})

    print(r"| op | n | JAX / sklearn time | peak | diffbio time | peak | speed-up | \|Δ value\| |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        base, ours = r["jax"], r["diffbio"]
        delta = "—" if base is None or ours is None else f"{abs(base[1] - ours[1]):.1e}"
        print(f"| {r['op']} | {r['n']:,} | {fmt_time(base)} | {fmt_mem(base)} | {fmt_time(ours)} | {fmt_mem(ours)} | {ratio(base, ours)} | {delta} |")
    with open(os.path.join(opts.out, "compare.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
