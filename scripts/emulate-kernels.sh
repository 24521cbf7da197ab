#!/usr/bin/env bash
# Runs every CUDA kernel of crates/diffbio-core/kernels on the CPU through the emulator
# (kernels/emu/cuda_emu.h: one thread per CUDA thread, barriers, shuffles, shared memory)
# and checks each against its float64 reference (kernels/emu/selftest.cpp), three times:
#   plain                                   -O1
#   ThreadSanitizer                         races, barrier misuse (halt on the first report)
#   AddressSanitizer + UBSan                out-of-bounds shared/global memory, UB
# A missing barrier some threads never reach aborts through the emulator's watchdog, a
# divergent shuffle through its call-site check. Exits non-zero on any failure.
# Needs g++ (>= 12, C++20) with its sanitizer runtimes (libtsan, libasan, libubsan: part of
# Debian's gcc packages; installed here when missing).
#
#   bash scripts/emulate-kernels.sh            # all three
#   bash scripts/emulate-kernels.sh plain      # one of plain | thread | address
set -euo pipefail
cd "$(dirname "$0")/.."
kernels=crates/diffbio-core/kernels
out=target/cuda-emu
mkdir -p "$out"
if ! command -v g++ >/dev/null; then
  apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi
if [ $# -gt 0 ]; then variants=("$@"); else variants=(plain thread address); fi
export DIFFBIO_EMU_TIMEOUT="${DIFFBIO_EMU_TIMEOUT:-60}"
export TSAN_OPTIONS="halt_on_error=1:exitcode=66"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for variant in "${variants[@]}"; do
  case "$variant" in
    plain) flags=() ;;
    thread) flags=(-fsanitize=thread) ;;
    address) flags=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer) ;;
    *) echo "unknown variant $variant (plain | thread | address)" >&2; exit 2 ;;
  esac
  bin="$out/selftest-$variant"
  echo "== cuda-emu selftest: $variant"
  g++ -std=c++20 -O1 -g -pthread "${flags[@]}" \
    -x c++ -include "$kernels/emu/cuda_emu.h" "$kernels/emu/launch.cpp" \
    -x none "$kernels/emu/selftest.cpp" -o "$bin"
  start=$(date +%s)
  "$bin"
  echo "   ($variant: $(( $(date +%s) - start )) s)"
done
echo "cuda-emu: every variant passed"
