"""Session fixtures for the integration and end-to-end tests: a real local control plane and a real Prometheus.

They live at the root so that tests/ and e2e/ share one instance of each per session.

Each fixture brings its stack up the first time a test asks for it and puts it down at the end
of the session, unless the stack was already running when the session started (a developer's
`cluster.py up` / `prom.py up`): then it is left running. A missing toolchain FAILS the test
with what to install; nothing is skipped silently.

``MODELROLLOUT_TEST_CLUSTER=existing`` makes ``cluster`` use the cluster of ``KUBECONFIG``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from hack.localcluster import harness as cluster_harness
from hack.localcluster.harness import LocalCluster
from hack.localprom import harness as prom_harness
from hack.localprom.harness import LocalPrometheus


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """A ready cluster: ``.kubeconfig`` (Path), ``.api_client()`` (new ApiClient), ``.kubectl(*args)``."""
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(cluster_harness.cluster_session())
        except cluster_harness.HarnessError as err:
            problem = str(err)
        else:
            problem = ""
        if problem:
            pytest.fail(f"local control plane unavailable: {problem}", pytrace=False)
        yield handle


@pytest.fixture(scope="session")
def prometheus() -> Iterator[LocalPrometheus]:
    """A ready Prometheus: ``.url``, ``.add_target()``, ``.remove_target()``, ``.add_rules()``,
    ``.alerts_received()``, ``.client()`` (PrometheusConnect), ``.wait_for_target()``."""
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(prom_harness.prometheus_session())
        except prom_harness.HarnessError as err:
            problem = str(err)
        else:
            problem = ""
        if problem:
            pytest.fail(f"local Prometheus unavailable: {problem}", pytrace=False)
        yield handle
