#!/usr/bin/env bash
# Builds (once) and caches kustomize v5 outside the repository, then prints its path.
# Used by tests/unit/test_manifests.py's integration test and by `make manifests-build`.
#   KUSTOMIZE="$(hack/tools/kustomize.sh)" && "$KUSTOMIZE" build manifests/default
# `kubectl apply -k` embeds kustomize too; this standalone binary pins the version.
# v5.8.2: the newest release that builds with Go 1.26 (v5.8.3 requires Go >= 1.27).
set -euo pipefail
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
exec "$(dirname "$0")/goinstall.sh" kustomize sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION}"
