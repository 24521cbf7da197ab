#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with the bundle built by
# scripts/gpu-validate.sh. The binaries need libcuda.so.1 (the driver) and the CUDA 13
# runtime libraries, which the machine's Python environment ships under site-packages/nvidia.
#
# A run cannot pass by skipping: DIFFBIO_REQUIRE_CUDA=1 turns an absent or failing CUDA
# device into a test failure, and each test binary must report as many passed tests as it
# lists, with at least as many CUDA cases ("CUDA case: device 0" lines) as it has CUDA
# tests. Each stage has a time limit (seconds, overridable: GPU_RUN_LIMITS="parity dist
# memcheck racecheck bench"), so one slow stage cannot take the whole lease; a stage that
# runs out is a failure and is named in the verdict, the last line.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"; mkdir -p "$out"
export DIFFBIO_REQUIRE_CUDA=1
read -r lim_parity lim_dist lim_memcheck lim_racecheck lim_bench <<< "${GPU_RUN_LIMITS:-90 45 90 90 240}"
failures=()
fail() { failures+=("$1"); echo "FAILED: $1" | tee -a "$out/summary.txt"; }
# check_tests NAME LOG BINARY CUDA_FILTER: every listed test passed, and the CUDA cases ran.
check_tests() {
  local name=$1 log=$2 bin=$3 filter=$4 listed cuda_tests cases
  listed=$("$bin" --list 2>/dev/null | grep -c ': test$')
  cuda_tests=$("$bin" --list 2>/dev/null | grep ': test$' | grep -c -- "$filter")
  cases=$(grep -o 'CUDA case: device 0' "$log" | wc -l)  # mid-line: after "test NAME ... "
  echo "$name: $listed tests listed, $cuda_tests of them CUDA tests, $cases CUDA cases ran" | tee -a "$out/summary.txt"
  grep -q "test result: ok. $listed passed; 0 failed; 0 ignored" "$log" || fail "$name: not all $listed tests passed"
  [ "$cases" -ge "$cuda_tests" ] && [ "$cases" -gt 0 ] || fail "$name: only $cases CUDA cases for $cuda_tests CUDA tests"
}
nv=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]) + "/nvidia")' 2>/dev/null || true)
libs=$(find "$nv" -maxdepth 3 -type d -name lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"
unset CUDA_STUB_AT_RUNTIME
for bin in cuda_parity dist kernels_bench; do  # shipped xz-compressed (the carry limit)
  [ -x "$here/$bin" ] || python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[2], "wb") as dst: shutil.copyfileobj(src, dst)' \
    "$here/$bin.xz" "$here/$bin" && chmod +x "$here/$bin"
done
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(cat "$here/COMMIT")"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} | tee "$out/summary.txt"
echo "== parity suite" | tee -a "$out/summary.txt"
timeout "$lim_parity" "$here/cuda_parity" --test-threads=1 --nocapture > "$out/parity.log" 2>&1 \
  || fail "parity suite (exit $?)"
grep -E "^test |test result|SKIPPED|panicked|^parity " "$out/parity.log" | tee -a "$out/summary.txt"
check_tests "parity suite" "$out/parity.log" "$here/cuda_parity" .
echo "== sharded losses, two thread ranks on one GPU" | tee -a "$out/summary.txt"
timeout "$lim_dist" "$here/dist" --nocapture > "$out/dist.log" 2>&1 || fail "sharded losses (exit $?)"
grep -E "^test .*cuda|test result|SKIPPED|panicked" "$out/dist.log" | tee -a "$out/summary.txt"
check_tests "sharded losses" "$out/dist.log" "$here/dist" cuda
# sanitize TOOL LOG [TEST ARGS...]: the parity suite (or the tests the arguments pick) under
# compute-sanitizer.
sanitize() {
  local tool=$1 log=$2 limit_var="lim_$1"; shift 2
  echo "== compute-sanitizer --tool $tool $*" | tee -a "$out/summary.txt"
  timeout "${!limit_var}" compute-sanitizer --tool "$tool" --error-exitcode 3 "$here/cuda_parity" \
    --test-threads=1 --nocapture "$@" > "$out/$log" 2>&1 || fail "compute-sanitizer $tool $* (exit $?)"
  grep -E "ERROR SUMMARY|HAZARD|RACECHECK SUMMARY|Error:|panicked|test result" "$out/$log" | tail -4 \
    | tee -a "$out/summary.txt"
}
sanitize memcheck sanitizer-memcheck.log
# Under racecheck the process died in the d = 6,500 case on an H200 (2026-12-04, exit 7, no
# hazard reported): it runs on its own, so the rest of the suite still gets its verdict.
sanitize racecheck sanitizer-racecheck.log --skip batch_mixing_any_d_matches_cpu
sanitize racecheck sanitizer-racecheck-any-d.log batch_mixing_any_d_matches_cpu
echo "== kernel benchmarks" | tee -a "$out/summary.txt"
# --noplot: criterion's plots need a font the GPU machine may not have.
CRITERION_HOME="$out/criterion" timeout "$lim_bench" "$here/kernels_bench" --bench --noplot \
  > "$out/bench.log" 2>&1 \
  || fail "kernel benchmarks (exit $?)"
grep -q SKIPPED "$out/bench.log" && fail "kernel benchmarks skipped"
grep -E "^cuda_|time:|thrpt:" "$out/bench.log" | tee -a "$out/summary.txt"
# Achieved FP32 throughput of batch mixing's distance work: the tiled kernels do 4·n²·d
# FFMA (8·n²·d flop) per forward + backward (2 passes of distances, then distances and
# C·X), against the model's peak (docs/kernels.md: H100 SXM 67 TFLOP/s).
echo "== batch mixing: achieved GFLOP/s (8·n²·d flop per forward + backward)" | tee -a "$out/summary.txt"
python3 - "$out/criterion/cuda_batch_mixing" <<'PY' | tee -a "$out/summary.txt"
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
for est in sorted(root.glob("forward_backward_f32_d*/*/new/estimates.json")):
    d = int(est.parts[-4].rsplit("_d", 1)[1]); n = int(est.parts[-3])
    seconds = json.loads(est.read_text())["mean"]["point_estimate"] * 1e-9
    gflops = 8 * n * n * d / seconds / 1e9
    print(f"n={n} d={d}: {seconds:.4g} s, {gflops:.0f} GFLOP/s, {gflops / 670:.1f} % of 67 TFLOP/s")
PY
# The AUROC surrogate's pairs/s against the SFU exp limit (one MUFU per pair: 16 per SM
# per clock, 4.2e12/s on an H100 SXM; docs/kernels.md); the labels alternate, so
# |P|·|N| = (n/2)·(n − n/2).
echo "== auroc surrogate: pairs/s against the exp limit (4.2e12 pairs/s)" | tee -a "$out/summary.txt"
python3 - "$out/criterion/cuda_auroc_surrogate" <<'PY' | tee -a "$out/summary.txt"
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
for est in sorted(root.glob("forward_backward_f32_pairs/*/new/estimates.json")):
    n = int(est.parts[-3]); pairs = (n // 2) * (n - n // 2)
    seconds = json.loads(est.read_text())["mean"]["point_estimate"] * 1e-9
    print(f"n={n}: {seconds * 1e3:.4g} ms, {pairs / seconds:.3g} pairs/s, {pairs / seconds / 4.2e10:.1f} % of the exp limit")
PY
if [ ${#failures[@]} -eq 0 ]; then
  echo "VERDICT: PASS" | tee -a "$out/summary.txt"
else
  echo "VERDICT: FAIL (${#failures[@]}): ${failures[*]}" | tee -a "$out/summary.txt"; exit 1
fi
