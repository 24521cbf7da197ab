#!/usr/bin/env bash
# Side-by-side CPU benchmark of diffbio against SPEC.md's formulas in JAX and against
# scikit-learn, in one run (see bench/compare.py). Installs its Python dependencies into
# bench/.venv (jax[cpu] 0.10, numpy, scikit-learn), builds the Rust driver, prints a table.
#
#   bash bench/compare.sh            # full run (JAX at n=16,000 takes minutes and ~10 GiB)
#   bash bench/compare.sh --quick    # small sizes only
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/pip install --quiet --disable-pip-version-check "jax[cpu]==0.10.*" numpy scikit-learn
cargo build --release --example bench_ops
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "versions: $(bench/.venv/bin/python -c 'import jax, sklearn, numpy; print("jax", jax.__version__, "| scikit-learn", sklearn.__version__, "| numpy", numpy.__version__)')"
exec bench/.venv/bin/python bench/compare.py "$@"
