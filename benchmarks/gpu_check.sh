#!/usr/bin/env bash
# Every GPU-only check of nb360 in one command, for a machine with an NVIDIA GPU, nvcc and a CUDA build
# of torch (a GPU workstation, or a development session's device machine, where one call should do it
# all): build nb360 with its CUDA ops (NB360_CUDA=ON: fail loudly rather than fall back to CPU), run
# the `gpu`-marked tests, the CUDA supernet and batched-builder benchmarks and the image self-check on the GPU.
#
#   bash benchmarks/gpu_check.sh            # logs in ./gpu-check/ (or in $OUT when set)
#
# Dependencies must already be installed (it installs nb360 with --no-deps, so it works offline).
# Record the benchmark figures in benchmarks/RESULTS.md with the machine and date.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check}"
mkdir -p "$out"
py="${PYTHON:-python3}"
failed=0

step() {  # step NAME COMMAND...: run, log to $out/NAME.log, remember a failure, go on
  local name="$1"; shift
  echo "== $name: $*"
  if "$@" > "$out/$name.log" 2>&1; then
    echo "   ok ($out/$name.log)"
  else
    echo "   FAILED (exit $?), last lines of $out/$name.log:"; tail -n 40 "$out/$name.log"; failed=1
  fi
}

step nvidia-smi nvidia-smi
# torch's CMake config finds CUDA with the legacy FindCUDA, which looks for the toolkit beside nvcc: a wrapper
# nvcc outside the toolkit (as on the development machine) fails with "Could NOT find CUDA (missing:
# CUDA_INCLUDE_DIRS CUDA_CUDART_LIBRARY)" unless the toolkit's root is named.
cuda_root="${CUDA_HOME:-}"
if [ -z "$cuda_root" ]; then
  for d in /usr/local/cuda /usr/local/cuda-*; do
    if [ -x "$d/bin/nvcc" ]; then cuda_root="$d"; break; fi
  done
fi
if [ -n "$cuda_root" ]; then
  export CUDACXX="${CUDACXX:-$cuda_root/bin/nvcc}"
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DCUDA_TOOLKIT_ROOT_DIR=$cuda_root"
  echo "== CUDA toolkit: $cuda_root (CUDACXX=$CUDACXX)"
fi
step build env NB360_CUDA=ON "$py" -m pip install --no-build-isolation --no-deps -v -e .
if [ "$failed" -ne 0 ]; then
  echo "gpu_check: the CUDA build failed; nothing else was run" >&2
  exit 1
fi
step info "$py" -m nb360 info
cat "$out/info.log"
step gpu-tests "$py" -m pytest -q -m gpu -rs -p no:cacheprovider tests/
tail -n 3 "$out/gpu-tests.log"
if grep -q "no CUDA GPU visible" "$out/gpu-tests.log"; then  # skipped is not passed: torch saw no GPU
  echo "   FAILED: gpu tests were skipped because torch sees no CUDA GPU"; failed=1
fi
step selfcheck "$py" docker/selfcheck.py --require-gpu --data tests/fixtures/nats-tss-v1_0-3ffb9-simple
step supernet-bench "$py" benchmarks/supernet_bench.py --device cuda
cat "$out/supernet-bench.log"
# the batched table builder: K NB201 networks (C=16, N=5, 32x32) stacked vs one at a time (issue target: >= 10x)
step builder-bench "$py" benchmarks/builder_bench.py --steps-only --device cuda --stacks 8 32 64
cat "$out/builder-bench.log"
[ "$failed" -eq 0 ] && echo "gpu_check: every step passed" || echo "gpu_check: some step FAILED (see above)"
exit "$failed"
