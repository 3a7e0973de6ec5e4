#!/usr/bin/env bash
# Run an nb360 image's self-check (docker/selfcheck.py, copied into every image as /opt/nb360/selfcheck.py):
# the build is the pinned one (CUDA version and architectures), the ops run, a real NATS-Bench table
# imports and answers a query; then `nb360 info` through the image's entrypoint.
#
#   docker/smoke.sh [--gpu] [--dry-run] VARIANT|IMAGE
#
#   VARIANT     cu128 | cu130 | cpu: the image docker/build.sh tags, nb360:<version>-<variant>
#   IMAGE       any image reference, e.g. registry.example.org/nb360:0.1.0-cu128
#   --gpu       run with `--gpus all` and fail unless a GPU is visible and the CUDA kernel matches the CPU one
#   --dry-run   print the docker commands instead of running them
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

run() {
  printf '%q ' "$@"; echo
  [ "$DRY_RUN" = 1 ] || "$@"
}

DRY_RUN=0
GPU=0
target=""
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) GPU=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage ;;
    -*) echo "smoke.sh: unknown option '$1'" >&2; exit 2 ;;
    *) [ -z "$target" ] || usage; target="$1" ;;
  esac
  shift
done
[ -n "$target" ] || usage

case "$target" in
  cu128|cu130|cpu)
    version="$(sed -n '/^\[project\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' "$ROOT/pyproject.toml" | head -n 1)"
    image="nb360:$version-$target" ;;
  *) image="$target" ;;
esac

gpu_args=()
if [ "$GPU" = 1 ]; then
  gpu_args=(--gpus all --env NB360_REQUIRE_GPU=1)
fi

run docker run --rm "${gpu_args[@]}" --entrypoint python "$image" /opt/nb360/selfcheck.py
run docker run --rm "${gpu_args[@]}" "$image" info
[ "$DRY_RUN" = 1 ] || echo "smoke.sh: $image passed"
