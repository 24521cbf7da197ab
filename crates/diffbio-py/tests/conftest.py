"""Shared fixtures: the CLI's committed .h5ad fixtures, the diffbio CLI binary, and the PBMC
data of ../shared when it is present."""

import json
import os
import pathlib
import subprocess

import anndata as ad
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
H5AD = REPO / "crates/diffbio-io/tests/data/h5ad"
PBMC = REPO.parent / "shared/data/pbmc-3chem"
SCIB_PBMC = REPO / "crates/diffbio-metrics/tests/data/scib_pbmc.json"


@pytest.fixture
def cells():
    """150 cells: X_pca, X_scvi, categorical batch and cell_type, scanpy's graph of X_scvi."""
    return ad.read_h5ad(H5AD / "cells.h5ad")


def cli_json(*args: str) -> dict:
    """`diffbio score ... --json` of the CLI binary ($DIFFBIO_CLI, which
    scripts/python-package.sh builds), parsed."""
    cli = os.environ.get("DIFFBIO_CLI")
    if not cli:
        pytest.fail("DIFFBIO_CLI must name the diffbio binary (scripts/python-package.sh sets it)")
    out = subprocess.run([cli, "score", *args, "--json", "--quiet"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
