#!/usr/bin/env bash
# Builds (once) and caches Helm v3 outside the repository, then prints its path.
# Used by tests/integration/test_chart.py and by `make chart-lint`.
#   HELM="$(hack/tools/helm.sh)" && "$HELM" lint charts/modelrollout
# HELM_VERSION pins the newest v3 release the Go module proxy served when this was
# written; bump it here (the ONE place) and the next run rebuilds.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
exec "$(dirname "$0")/goinstall.sh" helm helm.sh/helm/v3/cmd/helm "${HELM_VERSION}"
