#!/usr/bin/env bash
# Installs the Debian packages that hack/localprom/prom.py runs as our own
# loopback processes. Idempotent: does nothing when both binaries exist.
# The packages may start system services on the default ports (9090/9093);
# that is harmless, prom.py uses its own ports and data directories.
set -euo pipefail

if [[ -x /usr/bin/prometheus && -x /usr/bin/prometheus-alertmanager ]]; then
  echo "prometheus and prometheus-alertmanager already installed"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [^(]'; then
  ${SUDO} apt-get update
fi
${SUDO} apt-get install -y --no-install-recommends prometheus prometheus-alertmanager
