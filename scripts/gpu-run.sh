#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with the bundle built by
# scripts/gpu-validate.sh. The binaries need libcuda.so.1 (the driver) and the CUDA 13
# runtime libraries, which the machine's Python environment ships under site-packages/nvidia.
#
# A run cannot pass by skipping: DIFFBIO_REQUIRE_CUDA=1 turns an absent or failing CUDA
# device into a test failure, and each test binary must report as many passed tests as it
# lists, with at least as many CUDA cases ("CUDA case: device 0") as it has CUDA tests.
# Each stage has a time limit (seconds, overridable: GPU_RUN_LIMITS="parity dist memcheck
# racecheck bench"; racecheck's is per test), so one slow stage cannot take the whole
# lease; a stage that runs out is a failure, named in the verdict, the last line.
# GPU_RUN_STAGES picks the stages (default: "parity dist memcheck racecheck bench").
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"; mkdir -p "$out"
export DIFFBIO_REQUIRE_CUDA=1
read -r lim_parity lim_dist lim_memcheck lim_racecheck lim_bench <<< "${GPU_RUN_LIMITS:-90 45 90 60 240}"
stages=" ${GPU_RUN_STAGES:-parity dist memcheck racecheck bench} "
failures=()
say() { echo "$*" | tee -a "$out/summary.txt"; }
fail() { failures+=("$1"); say "FAILED: $1"; }

# check_tests NAME LOG BINARY CUDA_FILTER: every listed test passed, and the CUDA cases ran.
check_tests() {
  local name=$1 log=$2 bin=$3 filter=$4 listed cuda_tests cases
  listed=$("$bin" --list 2>/dev/null | grep -c ': test$')
  cuda_tests=$("$bin" --list 2>/dev/null | grep ': test$' | grep -c -- "$filter")
  cases=$(grep -o 'CUDA case: device 0' "$log" | wc -l)  # mid-line, after "test NAME ... "
  say "$name: $listed tests listed, $cuda_tests of them CUDA tests, $cases CUDA cases ran"
  grep -q "test result: ok. $listed passed; 0 failed; 0 ignored" "$log" || fail "$name: not all $listed tests passed"
  [ "$cases" -ge "$cuda_tests" ] && [ "$cases" -gt 0 ] || fail "$name: only $cases CUDA cases for $cuda_tests CUDA tests"
}

# sanitize TOOL LOG [TEST ARGS...]: the parity suite (or the tests the arguments pick) under
# compute-sanitizer.
sanitize() {
  local tool=$1 log=$2 limit_var="lim_$1"; shift 2
  say "== compute-sanitizer --tool $tool $*"
  timeout "${!limit_var}" compute-sanitizer --tool "$tool" --error-exitcode 3 "$here/cuda_parity" \
    --test-threads=1 --nocapture "$@" > "$out/$log" 2>&1 || fail "compute-sanitizer $tool $* (exit $?)"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|double free|panicked|test result" "$out/$log" | tail -4 \
    | tee -a "$out/summary.txt"
}

parity() {
  say "== parity suite"
  timeout "$lim_parity" "$here/cuda_parity" --test-threads=1 --nocapture > "$out/parity.log" 2>&1 \
    || fail "parity suite (exit $?)"
  grep -E "^test |test result|SKIPPED|panicked|^parity " "$out/parity.log" | tee -a "$out/summary.txt"
  check_tests "parity suite" "$out/parity.log" "$here/cuda_parity" .
}

dist() {
  say "== sharded losses, two thread ranks on one GPU"
  timeout "$lim_dist" "$here/dist" --nocapture > "$out/dist.log" 2>&1 || fail "sharded losses (exit $?)"
  grep -E "^test .*cuda|test result|SKIPPED|panicked" "$out/dist.log" | tee -a "$out/summary.txt"
  check_tests "sharded losses" "$out/dist.log" "$here/dist" cuda
}

memcheck() { sanitize memcheck sanitizer-memcheck.log; }

# Each test in a process of its own: on an H200 (2026-12-04) the process died under
# racecheck at the end of batch-mixing tests (glibc: "double free detected"), after their
# kernels had run with no hazard, and one test's teardown must not hide the next's verdict.
racecheck() {
  local test
  for test in $("$here/cuda_parity" --list 2>/dev/null | sed -n 's/: test$//p'); do
    sanitize racecheck "racecheck-$test.log" --exact "$test"
    cat "$out/racecheck-$test.log" >> "$out/sanitizer-racecheck.log" && rm "$out/racecheck-$test.log"
  done
}

bench() {
  say "== kernel benchmarks"
  # --noplot: criterion's plots need a font the GPU machine may not have.
  CRITERION_HOME="$out/criterion" timeout "$lim_bench" "$here/kernels_bench" --bench --noplot \
    > "$out/bench.log" 2>&1 || fail "kernel benchmarks (exit $?)"
  grep -q SKIPPED "$out/bench.log" && fail "kernel benchmarks skipped"
  grep -E "^cuda_|time:|thrpt:" "$out/bench.log" | tee -a "$out/summary.txt"
  # Achieved FP32 throughput of batch mixing's distance work: the tiled kernels do 4·n²·d
  # FFMA (8·n²·d flop) per forward + backward (2 passes of distances, then distances and
  # C·X), against the model's peak (docs/kernels.md: H100 SXM 67 TFLOP/s). The AUROC
  # surrogate's pairs/s against the SFU exp limit (one MUFU per pair: 16 per SM per clock,
  # 4.2e12/s on an H100 SXM); the labels alternate, so |P|·|N| = (n/2)·(n − n/2).
  say "== batch mixing: achieved GFLOP/s (8·n²·d flop per forward + backward)"
  say "== auroc surrogate: pairs/s against the exp limit (4.2e12 pairs/s)"
  python3 - "$out/criterion" <<'PY' | tee -a "$out/summary.txt"
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
def seconds(est):
    return json.loads(est.read_text())["mean"]["point_estimate"] * 1e-9
rows = [(int(e.parts[-4].rsplit("_d", 1)[1]), int(e.parts[-3]), e)
        for e in root.glob("cuda_batch_mixing/forward_backward_f32_d*/*/new/estimates.json")]
for d, n, est in sorted(rows):
    s = seconds(est); gflops = 8 * n * n * d / s / 1e9
    print(f"batch mixing n={n} d={d}: {s:.4g} s, {gflops:.0f} GFLOP/s, {gflops / 670:.1f} % of 67 TFLOP/s")
rows = [(int(e.parts[-3]), e)
        for e in root.glob("cuda_auroc_surrogate/forward_backward_f32_pairs/*/new/estimates.json")]
for n, est in sorted(rows):
    s = seconds(est); pairs = (n // 2) * (n - n // 2)
    print(f"auroc n={n}: {s * 1e3:.4g} ms, {pairs / s:.3g} pairs/s, {pairs / s / 4.2e10:.1f} % of the exp limit")
PY
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
  echo "stages:$stages"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} | tee "$out/summary.txt"
for stage in parity dist memcheck racecheck bench; do
  [[ $stages == *" $stage "* ]] && "$stage"
done
if [ ${#failures[@]} -eq 0 ]; then
  say "VERDICT: PASS"
else
  say "VERDICT: FAIL (${#failures[@]}): ${failures[*]}"; exit 1
fi
