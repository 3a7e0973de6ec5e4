#!/usr/bin/env bash
# The recipe every nb360 image runs, in two steps, so that it can be run (and tested) outside Docker:
#
#   recipe.sh build-wheel VENV CONSTRAINTS SRC WHEEL_DIR
#       fresh venv VENV; torch (pinned by CONSTRAINTS) first; then the build tools; then nb360's wheel,
#       built with --no-build-isolation against that torch, into WHEEL_DIR.   (the Dockerfiles' build stage)
#   recipe.sh install VENV CONSTRAINTS WHEEL_DIR
#       fresh venv VENV; torch first; then the nb360 wheel from WHEEL_DIR with its pinned
#       dependencies; then `nb360 info`.                                      (the Dockerfiles' runtime stage)
#
# Environment:
#   PYTHON             interpreter for the venvs (default: python3)
#   TORCH_INDEX_URL    an extra package index holding the pinned torch build, e.g.
#                      https://download.pytorch.org/whl/cu128 (default: none, pip's configured indexes)
#   EXPECT_TORCH_CUDA  the CUDA version the installed torch must be built for (e.g. 12.8), or `none` for a
#                      CPU build; the recipe stops when torch differs (default: not checked)
#   NB360_CUDA         AUTO|ON|OFF, read by nb360's build (ON: fail when the CUDA ops cannot be built)
#   NB360_CUDA_ARCHS   GPU architectures for the CUDA ops, CMake form (e.g. "80;86;89;90")
#   TORCH_CUDA_ARCH_LIST  torch's spelling of the same list ("8.0;8.6;8.9;9.0"); must agree when both are set
#   NB360_LOCAL_VERSION   a local version label for the wheel (cu128, cu130, cpu): nb360-0.1.0+cu128 (retag_wheel.py)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-}"
EXPECT_TORCH_CUDA="${EXPECT_TORCH_CUDA:-}"

die() { echo "recipe.sh: $*" >&2; exit 1; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}

pip_in() {  # pip_in VENV ARGS...: the venv's pip, quiet about its own version
  local venv="$1"; shift
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip "$@"
}

fresh_venv() {
  local venv="$1"
  [ -e "$venv" ] && die "$venv already exists: the recipe builds into a fresh venv"
  "$PYTHON" -m venv "$venv"
}

check_constraints() {
  local constraints="$1"
  [ -f "$constraints" ] || die "constraints file not found: $constraints"
}

install_torch() {  # torch first, in its own pip command: nb360's build needs it and must not pull it
  local venv="$1" constraints="$2"
  local index=()
  [ -n "$TORCH_INDEX_URL" ] && index=(--extra-index-url "$TORCH_INDEX_URL")
  pip_in "$venv" install --progress-bar off "${index[@]}" -c "$constraints" torch
  local version cuda
  read -r version cuda < <("$venv/bin/python" -W ignore -c 'import torch; print(torch.__version__, torch.version.cuda or "none")')
  [ -n "$version" ] || die "torch does not import in $venv"
  echo "recipe.sh: torch $version (CUDA: $cuda)"
  if [ -n "$EXPECT_TORCH_CUDA" ] && [ "$cuda" != "$EXPECT_TORCH_CUDA" ]; then
    die "the installed torch is built for CUDA '$cuda' but this image pins '$EXPECT_TORCH_CUDA': check $constraints and TORCH_INDEX_URL"
  fi
}

check_arch_lists() {  # NB360_CUDA_ARCHS "80;86" and TORCH_CUDA_ARCH_LIST "8.0;8.6" must name the same GPUs
  [ -n "${NB360_CUDA_ARCHS:-}" ] && [ -n "${TORCH_CUDA_ARCH_LIST:-}" ] || return 0
  local dotted
  dotted="$(echo "$NB360_CUDA_ARCHS" | sed -E 's/([0-9]+)([0-9])/\1.\2/g')"
  [ "$dotted" = "$TORCH_CUDA_ARCH_LIST" ] || die "NB360_CUDA_ARCHS=$NB360_CUDA_ARCHS and TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST disagree"
}

build_wheel() {
  [ $# -eq 4 ] || usage
  local venv="$1" constraints="$2" src="$3" wheel_dir="$4"
  check_constraints "$constraints"
  check_arch_lists
  fresh_venv "$venv"
  install_torch "$venv" "$constraints"
  pip_in "$venv" install --progress-bar off -c "$constraints" scikit-build-core pybind11 cmake ninja
  local settings=()
  [ -n "${NB360_CUDA_ARCHS:-}" ] && settings=("-Ccmake.define.NB360_CUDA_ARCHS=$NB360_CUDA_ARCHS")
  mkdir -p "$wheel_dir"
  if [ -n "${NB360_LOCAL_VERSION:-}" ]; then  # build aside, then label the version: nb360-0.1.0+cu128
    local built="$wheel_dir/.untagged"
    pip_in "$venv" wheel --no-build-isolation --no-deps --progress-bar off "${settings[@]}" -w "$built" "$src"
    "$venv/bin/python" "$HERE/retag_wheel.py" --local "$NB360_LOCAL_VERSION" -w "$wheel_dir" "$built"/nb360-*.whl
    rm -rf "$built"
  else
    pip_in "$venv" wheel --no-build-isolation --no-deps --progress-bar off "${settings[@]}" -w "$wheel_dir" "$src"
  fi
  # What was compiled in (the build record `nb360 info` reports).
  "$venv/bin/python" - "$wheel_dir" <<'PY'
import sys, zipfile, pathlib
(wheel,) = pathlib.Path(sys.argv[1]).glob("nb360-*.whl")
print(f"recipe.sh: built {wheel.name}")
print(zipfile.ZipFile(wheel).read("nb360/_build_info.py").decode().split('"""', 2)[-1].strip())
PY
}

install_wheel() {
  [ $# -eq 3 ] || usage
  local venv="$1" constraints="$2" wheel_dir="$3"
  check_constraints "$constraints"
  local wheels=("$wheel_dir"/nb360-*.whl)
  [ -f "${wheels[0]}" ] || die "no nb360 wheel in $wheel_dir"
  [ "${#wheels[@]}" -eq 1 ] || die "several nb360 wheels in $wheel_dir: ${wheels[*]}"
  fresh_venv "$venv"
  install_torch "$venv" "$constraints"
  pip_in "$venv" install --progress-bar off -c "$constraints" "${wheels[0]}"
  "$venv/bin/nb360" info
}

[ $# -ge 1 ] || usage
command="$1"; shift
case "$command" in
  build-wheel) build_wheel "$@" ;;
  install) install_wheel "$@" ;;
  -h|--help) usage ;;
  *) echo "recipe.sh: unknown command '$command'" >&2; usage ;;
esac
