#!/usr/bin/env bash
# Builds the diffbio-metrics Python package (crates/diffbio-py) as a wheel with maturin,
# installs it into a virtual environment this script makes (target/python-venv) with the
# test dependencies from PyPI (pinned), and runs its pytest suite against the installed wheel.
#
#   bash scripts/python-package.sh          (from anywhere; CI runs it)
#
# Needs python3 >= 3.11 with venv, and the Rust toolchain. The wheel (abi3: one for
# CPython 3.11 and later) is left in crates/diffbio-py/target/wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(realpath -m "${DIFFBIO_PYTHON_VENV:-target/python-venv}")
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  "maturin==1.16.0" "pytest==9.2.0" "anndata==0.12.19" "pandas==2.3.3" "numpy==2.4.6" \
  "matplotlib==3.11.2"
# Its own workspace: the root's fmt and clippy steps do not reach it.
cargo fmt --manifest-path crates/diffbio-py/Cargo.toml -- --check
PYO3_PYTHON="$venv/bin/python" cargo clippy -q --manifest-path crates/diffbio-py/Cargo.toml -- -D warnings
rm -rf crates/diffbio-py/target/wheels
"$venv/bin/maturin" build --release --quiet -m crates/diffbio-py/Cargo.toml \
  --interpreter "$venv/bin/python"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps crates/diffbio-py/target/wheels/*.whl
# The tests compare the package with the CLI on the same files (the test profile's binary,
# built by `cargo test --workspace` already in CI).
cargo build -q -p diffbio-cli
export DIFFBIO_CLI="$PWD/target/debug/diffbio"
# From the tests' folder, so `import diffbio_metrics` is the installed wheel, not the source.
cd crates/diffbio-py/tests && "$venv/bin/python" -m pytest -q -p no:cacheprovider .
