#!/usr/bin/env bash
# Builds everything the GPU validation needs, here (no GPU needed): the CUDA parity test
# binary, the sharded-loss tests (two thread ranks on one GPU) and the CUDA bench binary, with --features cuda --release, stripped and
# xz-compressed, into gpu-bundle/ (ignored by git) together with scripts/gpu-run.sh. Then, on a GPU machine
# (e.g. with the device tool, carrying gpu-bundle):   bash gpu-bundle/gpu-run.sh
# which runs the parity suite, compute-sanitizer (memcheck, racecheck) on it and the
# kernel benchmarks, and prints the lines to paste into docs/gpu-validation.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cuda_env="$(bash scripts/cuda-toolchain.sh)" && eval "$cuda_env"
rm -rf gpu-bundle && mkdir -p gpu-bundle
bin_of() {  # the executable cargo reports for a test/bench target
  cargo "$@" --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])' | tail -1
}
cargo build --release --features cuda --tests --benches
cp "$(bin_of test --release --features cuda -p diffbio-core --test cuda_parity --no-run)" gpu-bundle/cuda_parity
cp "$(bin_of test --release --features cuda -p diffbio-core --test dist --no-run)" gpu-bundle/dist
cp "$(bin_of bench --features cuda --bench kernels --no-run)" gpu-bundle/kernels_bench
strip gpu-bundle/cuda_parity gpu-bundle/dist gpu-bundle/kernels_bench
# ~50 MB each stripped, ~6 MB each compressed: under the device tool's 64 MiB carry limit.
xz -T0 -6 gpu-bundle/cuda_parity gpu-bundle/dist gpu-bundle/kernels_bench
cp scripts/gpu-run.sh gpu-bundle/
git rev-parse HEAD > gpu-bundle/COMMIT
du -sh gpu-bundle
echo "bundle ready: carry gpu-bundle and run 'bash gpu-bundle/gpu-run.sh' on the GPU machine"
