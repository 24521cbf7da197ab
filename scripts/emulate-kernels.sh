#!/usr/bin/env bash
# Runs every CUDA kernel of crates/diffbio-core/kernels on the CPU through the emulator
# (kernels/emu/cuda_emu.h: one fiber per CUDA thread, barriers, shuffles, shared memory):
#   parity    cargo test -p diffbio-core --features cuda-emu: the kernels launched through
#             the same Rust plans as on a GPU, against the CPU path (tests/cuda_parity.rs,
#             every case) and the float64 references (golden, properties, finite_diff)
#   parity-address   the same with the kernels under AddressSanitizer + UBSan
#   plain     kernels/emu/selftest.cpp: the kernels against float64 references of their own
#   thread    the self-test under ThreadSanitizer: races, barrier misuse (halt on the first)
#   address   the self-test under AddressSanitizer + UBSan: out-of-bounds shared or global
#             memory, undefined behaviour
# A barrier some threads never reach aborts as a deadlock, a divergent shuffle through the
# emulator's call-site check. Exits non-zero on any failure.
# Needs g++ (>= 12, C++20) with its sanitizer runtimes (libtsan, libasan, libubsan: part of
# Debian's gcc packages; installed here when missing).
#
#   bash scripts/emulate-kernels.sh            # parity-address plain thread address
#   bash scripts/emulate-kernels.sh parity     # some of parity | parity-address | plain |
#                                              #   thread | address
set -euo pipefail
cd "$(dirname "$0")/.."
kernels=crates/diffbio-core/kernels
out=target/cuda-emu
mkdir -p "$out"
if ! command -v g++ >/dev/null; then
  apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi
if [ $# -gt 0 ]; then variants=("$@"); else variants=(parity-address plain thread address); fi
export TSAN_OPTIONS="halt_on_error=1:exitcode=66"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for variant in "${variants[@]}"; do
  case "$variant" in
    parity | parity-address)
      echo "== cuda-emu $variant: cargo test -p diffbio-core --features cuda-emu"
      start=$(date +%s)
      if [ "$variant" = parity-address ]; then
        # The kernels instrumented, the Rust test binaries linked with the runtimes
        # (not first in the link order, hence verify_asan_link_order=0).
        DIFFBIO_EMU_SANITIZE=address ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0:verify_asan_link_order=0" \
          cargo test -p diffbio-core --features cuda-emu
      else
        cargo test -p diffbio-core --features cuda-emu
      fi
      echo "   ($variant: $(( $(date +%s) - start )) s)"
      continue ;;
  esac
  case "$variant" in
    plain) flags=() ;;
    thread) flags=(-fsanitize=thread) ;;
    address) flags=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer) ;;
    *) echo "unknown variant $variant (parity | parity-address | plain | thread | address)" >&2; exit 2 ;;
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
