#!/usr/bin/env bash
# Shared by hack/tools/*.sh: `go install` one pinned Go tool into a cache outside
# the repository and print the binary's path (and nothing else) on stdout.
#
#   goinstall.sh NAME MODULE/PATH/TO/CMD VERSION
#
# Idempotent: when $CACHE/tools/bin/NAME exists and its stamp file records the
# same module@version, it prints the path at once. Otherwise it builds (a cold
# build of helm or kustomize takes a few minutes on two cores) and writes the
# stamp only after `go install` succeeded, so an interrupted build is retried.
# The cache is ${MODELROLLOUT_CACHE:-~/.cache/modelrollout}, shared with
# hack/localcluster, so CI on the same machine reuses it.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 NAME MODULE/CMD VERSION" >&2
  exit 2
fi
name="$1" pkg="$2" version="$3"

cache="${MODELROLLOUT_CACHE:-${HOME}/.cache/modelrollout}"
bin_dir="${cache}/tools/bin"
binary="${bin_dir}/${name}"
stamp="${bin_dir}/.${name}.version"
want="${pkg}@${version}"

if [[ -x "${binary}" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
  echo "${binary}"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "$0: go is not on PATH; it is needed once to build ${want}" >&2
  exit 1
fi

mkdir -p "${bin_dir}"
echo "building ${want} into ${bin_dir} (once; cached)" >&2
# `go install module@version` ignores any go.mod; running it from the cache folder keeps it out of the repo.
(cd "${bin_dir}" && GOBIN="${bin_dir}" go install "${want}") >&2
echo "${want}" >"${stamp}"
echo "${binary}"
