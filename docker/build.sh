#!/usr/bin/env bash
# Build nb360's Docker images and tag them nb360:<version>-<variant> (version from pyproject.toml).
#
#   docker/build.sh [--dry-run] [--push REGISTRY/REPO] VARIANT... [-- DOCKER_BUILD_ARGS...]
#
#   VARIANT     cu128 | cu130 | cpu | all   (docker/Dockerfile.<variant>)
#   --dry-run   print the docker commands instead of running them
#   --push R    also tag the image R:<version>-<variant> and push it
#   after --    passed to `docker build`, e.g. -- --build-arg NB360_CUDA_ARCHS="90" --build-arg TORCH_CUDA_ARCH_LIST="9.0"
#
# Needs Docker with BuildKit (the Dockerfiles use cache mounts); run it from anywhere in the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VARIANTS_ALL=(cu128 cu130 cpu)

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

project_version() {  # the [project] version of pyproject.toml
  local version
  version="$(sed -n '/^\[project\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' "$ROOT/pyproject.toml" | head -n 1)"
  [ -n "$version" ] || { echo "build.sh: no [project] version in $ROOT/pyproject.toml" >&2; exit 1; }
  echo "$version"
}

run() {  # print, then run unless --dry-run
  printf '%q ' "$@"; echo
  [ "$DRY_RUN" = 1 ] || "$@"
}

DRY_RUN=0
PUSH=""
variants=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --push) [ $# -ge 2 ] || usage; PUSH="$2"; shift ;;
    -h|--help) usage ;;
    --) shift; extra=("$@"); break ;;
    all) variants+=("${VARIANTS_ALL[@]}") ;;
    cu128|cu130|cpu) variants+=("$1") ;;
    *) echo "build.sh: unknown variant or option '$1' (variants: ${VARIANTS_ALL[*]} all)" >&2; exit 2 ;;
  esac
  shift
done
[ "${#variants[@]}" -gt 0 ] || usage

version="$(project_version)"
revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then
  revision="$revision-dirty"  # an image built from uncommitted changes says so in its label
fi

for variant in "${variants[@]}"; do
  tag="nb360:$version-$variant"
  run env DOCKER_BUILDKIT=1 docker build \
    --file "$ROOT/docker/Dockerfile.$variant" \
    --build-arg "NB360_VERSION=$version" \
    --build-arg "NB360_REVISION=$revision" \
    --tag "$tag" \
    "${extra[@]}" \
    "$ROOT"
  if [ -n "$PUSH" ]; then
    run docker tag "$tag" "$PUSH:$version-$variant"
    run docker push "$PUSH:$version-$variant"
  fi
done
