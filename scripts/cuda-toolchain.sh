#!/usr/bin/env bash
# cuda-toolchain.sh: install a CUDA 13.0 (update 2) *build* toolchain from PyPI wheels
# into a cache folder, without a GPU, a driver, or NVIDIA's apt repo. Then print the
# environment that candle-core's `cuda` feature (cudarc + cudaforge) and bindgen_cuda
# need.
#
#   cuda_env="$(bash scripts/cuda-toolchain.sh)" && eval "$cuda_env"   (from the repository root)
#   cargo build --features cuda
#
# The script is idempotent: once the cache holds a complete install, a rerun only prints
# the env (~10 ms). Everything it logs goes to stderr; only `export` lines go to stdout.
#
# It also installs NCCL 2.30.7 (PyPI's nvidia-nccl-cu13) for `--features nccl`.
#
# Knobs (env): CUDA_TOOLCHAIN_CACHE (default ~/.cache/cuda-toolchain),
#              CUDA_COMPUTE_CAP (default 90 = H100/H200; must be plain digits for bindgen_cuda),
#              CUDA_STUB_AT_RUNTIME=auto|1|0 (append the stub libcuda.so.1 to LD_LIBRARY_PATH
#              so cuda-feature test binaries can start; auto = only when no driver is found).
set -euo pipefail

CACHE="${CUDA_TOOLCHAIN_CACHE:-$HOME/.cache/cuda-toolchain}"
TAG="cu13.0.2-r1"                     # bump when the pins or the layout below change
PREFIX="$CACHE/$TAG"
CUDA_ROOT_DIR="$PREFIX/nvidia/cu13"   # the wheels all unpack into nvidia/cu13/{bin,include,lib,nvvm}

# CUDA 13.0 update 2, the set the `cuda-toolkit==13.0.2` meta-package pins. nvcc 13.0 emits
# PTX ISA 9.0, which a 580-series (CUDA 13.0) driver can JIT. Hashes are the x86_64 wheels.
REQUIREMENTS='
nvidia-cuda-nvcc==13.0.88    --hash=sha256:56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03
nvidia-cuda-crt==13.0.88     --hash=sha256:2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4
nvidia-nvvm==13.0.88         --hash=sha256:c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0
nvidia-cuda-runtime==13.0.96 --hash=sha256:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cuda-cccl==13.0.85    --hash=sha256:e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649
nvidia-cuda-nvrtc==13.0.88   --hash=sha256:ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575
nvidia-cublas==13.1.0.3      --hash=sha256:ee8722c1f0145ab246bccb9e452153b5e0515fd094c3678df50b2a0888b8b171
nvidia-curand==10.4.0.35     --hash=sha256:1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc
'

# NCCL for the `nccl` feature (cudarc's `nccl` binds NCCL 2.30), in its own cache folder
# (~300 MB download) so that the pins above stay cached: libnccl.so.2 and nccl.h, with the
# unversioned link the linker needs put beside the CUDA libraries.
NCCL_REQUIREMENT='nvidia-nccl-cu13==2.30.7 --hash=sha256:cefa7fdb9710efd0f39c5f1be1d61ff6fc9a996c451265bd7fbdcf9455ed4b50'
NCCL_PREFIX="$CACHE/nccl-2.30.7-r1"

log() { echo "[cuda-toolchain] $*" >&2; }

# A link-time stand-in for the driver library (libcuda.so), which no PyPI wheel ships
# (NVIDIA puts lib/stubs/libcuda.so only in its apt/conda "cuda-driver-dev" packages).
# Exports every cu* entry point declared in the wheel's own cuda.h (plus the profiler
# calls cudarc binds), each returning CUDA_ERROR_STUB_LIBRARY (34), under the SONAME
# libcuda.so.1 so that binaries load the real driver on a GPU machine.
make_libcuda_stub() {
  local root="$1" work="$1/lib/stubs/src"
  mkdir -p "$work" "$root/lib/stubs/ld"
  printf '#include <cuda.h>\n' | gcc -E -P -I"$root/include" -x c - \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | sed -E 's/[[:space:]]*\($//' > "$work/syms.raw"
  printf '%s\n' cuProfilerInitialize cuProfilerStart cuProfilerStop >> "$work/syms.raw"
  sort -u "$work/syms.raw" | grep -vxE 'cuGetErrorString|cuGetErrorName' > "$work/syms.txt"
  [ "$(wc -l < "$work/syms.txt")" -gt 400 ] || { log "too few cu* symbols parsed from cuda.h"; return 1; }
  {
    echo '/* Generated link-time stub for libcuda.so.1: every call fails with CUDA_ERROR_STUB_LIBRARY (34). */'
    echo 'static const char msg[] = "CUDA_ERROR_STUB_LIBRARY: stub libcuda (no NVIDIA driver on this machine)";'
    echo 'int cuGetErrorString(int e, const char **s) { (void)e; *s = msg; return 0; }'
    echo 'int cuGetErrorName(int e, const char **s) { (void)e; *s = "CUDA_ERROR_STUB_LIBRARY"; return 0; }'
    sed 's/.*/int &(void) { return 34; }/' "$work/syms.txt"
  } > "$work/libcuda_stub.c"
  gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$work/libcuda_stub.c"
  # Only for starting test binaries on a driverless machine (see CUDA_STUB_AT_RUNTIME).
  ln -sfn ../libcuda.so "$root/lib/stubs/ld/libcuda.so.1"
}

install_toolchain() {
  mkdir -p "$CACHE"
  local tmp="$CACHE/.tmp-$TAG.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\n' "$REQUIREMENTS" > "$tmp/requirements.txt"
  log "pip: installing CUDA 13.0.2 wheels into $PREFIX (~650 MB download, ~1.2 GB on disk)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-cache-dir --no-deps --only-binary=:all: --require-hashes --target "$tmp" -r "$tmp/requirements.txt" >&2
  local root="$tmp/nvidia/cu13"
  # The wheels ship only versioned sonames; `-lcublas` etc. need the unversioned names.
  for f in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
    [ -e "$root/lib/$f" ] || { log "missing $root/lib/$f"; return 1; }
    ln -sfn "$f" "$root/lib/${f%.so.*}.so"
  done
  make_libcuda_stub "$root"
  "$root/bin/nvcc" --version | grep -q 'release 13\.0,' || { log "unexpected nvcc version"; return 1; }
  printf '%s\n' "$REQUIREMENTS" > "$tmp/.complete"
  rm -rf "$PREFIX"
  mv "$tmp" "$PREFIX"     # all links inside are relative, so the tree can move
  trap - EXIT
}

install_nccl() {
  local tmp="$CACHE/.tmp-nccl.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\n' "$NCCL_REQUIREMENT" > "$tmp/requirements.txt"
  log "pip: installing NCCL 2.30.7 into $NCCL_PREFIX (~300 MB download)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-cache-dir --no-deps --only-binary=:all: --require-hashes --target "$tmp" -r "$tmp/requirements.txt" >&2
  [ -e "$tmp/nvidia/nccl/lib/libnccl.so.2" ] || { log "missing libnccl.so.2 in the NCCL wheel"; return 1; }
  printf '%s\n' "$NCCL_REQUIREMENT" > "$tmp/.complete"
  rm -rf "$NCCL_PREFIX"
  mv "$tmp" "$NCCL_PREFIX"
  trap - EXIT
}

# Is a real driver (libcuda.so.1) reachable by the dynamic loader, or a GPU device node present?
has_driver() {
  /sbin/ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 ' && return 0
  local d IFS=:
  for d in ${LD_LIBRARY_PATH:-} /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64; do
    [ -n "$d" ] && [ -e "$d/libcuda.so.1" ] && return 0
  done
  [ -e /dev/nvidiactl ]
}

main() {
  command -v gcc >/dev/null || { log "gcc is required"; exit 1; }
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock 9          # two concurrent runs must not race
  if [ -f "$PREFIX/.complete" ] && [ -x "$CUDA_ROOT_DIR/bin/nvcc" ]; then
    log "using cached toolchain $PREFIX"
  else
    install_toolchain
  fi
  [ -f "$NCCL_PREFIX/.complete" ] || install_nccl
  # Relative links (the cache may move): -lnccl at link time, libnccl.so.2 at run time.
  local nccl_lib="../../../../${NCCL_PREFIX##*/}/nvidia/nccl/lib/libnccl.so.2"
  ln -sfn "$nccl_lib" "$CUDA_ROOT_DIR/lib/libnccl.so.2"
  ln -sfn libnccl.so.2 "$CUDA_ROOT_DIR/lib/libnccl.so"
  [ -e "$CUDA_ROOT_DIR/lib/libnccl.so" ] || { log "libnccl.so link is broken"; exit 1; }

  local stub=0 stub_tail=''
  case "${CUDA_STUB_AT_RUNTIME:-auto}" in
    1) stub=1 ;;
    0) stub=0 ;;
    *) has_driver || stub=1 ;;
  esac
  if [ "$stub" = 1 ]; then
    stub_tail=":$CUDA_ROOT_DIR/lib/stubs/ld"
    log "no NVIDIA driver found: the stub libcuda.so.1 goes last on LD_LIBRARY_PATH"
  fi

  cat <<EOF
export CUDA_HOME='$CUDA_ROOT_DIR'
export CUDA_PATH='$CUDA_ROOT_DIR'
export PATH='$CUDA_ROOT_DIR/bin':"\$PATH"
export CUDA_COMPUTE_CAP='${CUDA_COMPUTE_CAP:-90}'
export CUDAFORGE_THREADS='${CUDAFORGE_THREADS:-$(nproc)}'
export LD_LIBRARY_PATH='$CUDA_ROOT_DIR/lib'"\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"'$stub_tail'
EOF
}

main "$@"
