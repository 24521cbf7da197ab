#!/usr/bin/env bash
# Checks that anndata itself reads what diffbio writes: the integrate example corrects the
# embedding of a committed .h5ad fixture (written by anndata, gzip-compressed) and writes a
# copy with obsm['X_diffbio']; anndata.read_h5ad (PyPI, in a venv this script makes) must
# read it with every other field equal to the input's, and the input must be unchanged.
# Not part of `cargo test` (which needs no Python). Usage: bash scripts/check-h5ad-output.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${DIFFBIO_ANNDATA_VENV:-target/anndata-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import anndata" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "anndata==0.12.19" "h5py==3.16.0"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=crates/diffbio-io/tests/data/h5ad/cells_gzip.h5ad
sha_before=$(sha256sum "$input" | cut -d' ' -f1)
cargo run --release --quiet --example integrate -- --h5ad "$input" --obsm X_pca \
  --batch-key batch --label-key cell_type --steps 100 --latent-dims 8 \
  --out "$work/out.h5ad" --plots "$work/plots" --quiet
[ "$(sha256sum "$input" | cut -d' ' -f1)" = "$sha_before" ] || { echo "the input changed"; exit 1; }

"$venv/bin/python" - "$input" "$work/out.h5ad" <<'PY'
import sys
from importlib.metadata import version

import anndata as ad
import numpy as np
import pandas as pd

before, after = ad.read_h5ad(sys.argv[1]), ad.read_h5ad(sys.argv[2])
z = after.obsm["X_diffbio"]
assert isinstance(z, np.ndarray) and z.dtype == np.float32, (type(z), z.dtype)
assert z.shape == (before.n_obs, 8), z.shape
assert np.isfinite(z).all() and z.std() > 0
assert sorted(after.obsm) == sorted([*before.obsm, "X_diffbio"]), list(after.obsm)
for key in before.obsm:
    np.testing.assert_array_equal(after.obsm[key], before.obsm[key])
pd.testing.assert_frame_equal(after.obs, before.obs)
assert list(after.obsp) == list(before.obsp)
assert (after.obsp["distances"] != before.obsp["distances"]).nnz == 0
assert after.uns["neighbors"]["params"]["use_rep"] == "X_scvi"
print(f"anndata {version('anndata')} reads obsm['X_diffbio'] {z.shape} {z.dtype}; the rest is unchanged")
PY
