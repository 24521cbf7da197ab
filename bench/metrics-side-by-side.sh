#!/usr/bin/env bash
# Every integration metric with scib-metrics 0.5.10 and with `diffbio score`, side by side on
# the same seeded synthetic data, in one run (see bench/metrics_side_by_side.py). Installs
# scib-metrics into bench/.venv-scib, builds the release CLI, prints times, peaks, scores.
#
#   bash bench/metrics-side-by-side.sh                      # 100,000 cells x 50 dims
#   bash bench/metrics-side-by-side.sh --cells 1000000 --skip-scib
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv-scib/bin/python ]; then
  python3 -m venv bench/.venv-scib
fi
bench/.venv-scib/bin/pip install --quiet --disable-pip-version-check "scib-metrics==0.5.10"
cargo build --release -p diffbio-cli --bin diffbio
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
exec bench/.venv-scib/bin/python bench/metrics_side_by_side.py "$@"
