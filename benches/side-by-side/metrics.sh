#!/usr/bin/env bash
# Every integration metric with scib-metrics 0.5.10, with `diffbio score` and with the
# diffbio-metrics Python package, side by side on the same seeded synthetic data, in one run
# (see benches/side-by-side/metrics.py). Installs scib-metrics into
# benches/side-by-side/.venv-scib, builds the release CLI and the package's wheel
# (scripts/python-package.sh, which also tests it) and installs the wheel there too, then
# prints times, peaks, scores.
#
#   bash benches/side-by-side/metrics.sh                      # 100,000 cells x 50 dims
#   bash benches/side-by-side/metrics.sh --cells 1000000 --skip-scib
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x benches/side-by-side/.venv-scib/bin/python ]; then
  python3 -m venv benches/side-by-side/.venv-scib
fi
benches/side-by-side/.venv-scib/bin/pip install --quiet --disable-pip-version-check "scib-metrics==0.5.10"
cargo build --release -p diffbio-cli --bin diffbio
bash scripts/python-package.sh > /dev/null
benches/side-by-side/.venv-scib/bin/pip install --quiet --disable-pip-version-check --force-reinstall \
  --no-deps crates/diffbio-py/target/wheels/*.whl
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
exec benches/side-by-side/.venv-scib/bin/python benches/side-by-side/metrics.py "$@"
