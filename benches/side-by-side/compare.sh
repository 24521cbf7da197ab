#!/usr/bin/env bash
# Side-by-side CPU benchmark of diffbio against SPEC.md's formulas in JAX and against
# scikit-learn, in one run (see benches/side-by-side/compare.py). Installs its Python dependencies into
# benches/side-by-side/.venv (jax[cpu] 0.10, numpy, scikit-learn), builds the Rust driver, prints a table.
#
#   bash benches/side-by-side/compare.sh            # full run (JAX at n=16,000 takes minutes and ~10 GiB)
#   bash benches/side-by-side/compare.sh --quick    # small sizes only
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x benches/side-by-side/.venv/bin/python ]; then
  python3 -m venv benches/side-by-side/.venv
fi
benches/side-by-side/.venv/bin/pip install --quiet --disable-pip-version-check "jax[cpu]==0.10.*" numpy scikit-learn
cargo build --release --example bench_ops
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "versions: $(benches/side-by-side/.venv/bin/python -c 'import jax, sklearn, numpy; print("jax", jax.__version__, "| scikit-learn", sklearn.__version__, "| numpy", numpy.__version__)')"
exec benches/side-by-side/.venv/bin/python benches/side-by-side/compare.py "$@"
