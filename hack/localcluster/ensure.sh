#!/usr/bin/env bash
# Builds (once) and caches the local control plane binaries: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok, plus the Gateway API CRDs.
# Idempotent and quick (well under a second) when ~/.cache/modelrollout (or
# $MODELROLLOUT_CACHE) already holds the pinned versions; a cold build takes
# several minutes on two cores. Needs Go >= 1.26 and network access to the Go
# module proxy on a cold machine. Prints the bin folder to put on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] && PY="${PYTHON:-.venv/bin/python}"
exec "$PY" hack/localcluster/cluster.py build "$@"
