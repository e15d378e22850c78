"""An operator process of a test's own, for the tests that kill and restart it.

A test that SIGKILLs its operator and then counts what happened (Events, steps, weights) must be sure
no other operator acted in between. Other sessions' test operators on the shared cluster watch
``mr-*`` (and the e2e suite's ``e2e-*``), so such a test takes a namespace prefix of its own outside
both, and its operator watches that prefix only. :func:`own_operator` sets this up once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from e2e.harness.kubelet import LocalKubelet, kubelet_for
from e2e.harness.operator import OperatorProcess
from e2e.harness.scenario import Namespace
from hack.localcluster.harness import LocalCluster
from hack.localprom.harness import LocalPrometheus
from tests.integration.cleanup import delete_namespaces
from tests.integration.isolated import own_namespace

LOG_TAIL_CHARS = 20000
"""How much of the operator's log is printed after the test, for a human reading a failure."""


class OwnOperator(NamedTuple):
    """A namespace, the operator that alone watches it (not started yet), and the namespace's kubelet."""

    ns: Namespace
    operator: OperatorProcess
    kubelet: LocalKubelet


@contextmanager
def own_operator(
    cluster: LocalCluster,
    prometheus: LocalPrometheus,
    prefix: str,
    *,
    before_cleanup: Callable[[Namespace], None] | None = None,
) -> Iterator[OwnOperator]:
    """A fresh ``<prefix>…`` namespace with its local kubelet, and an operator watching ``<prefix>*`` only.

    The operator is not started: the test starts it when its set-up is in place, and kills and restarts
    it as it likes. Afterwards ``before_cleanup(ns)`` undoes what would stop the namespace from going
    (an admission policy, say), the operator is started again if it is not running, because deleting
    the namespace needs it to remove its finalizers, the namespace is deleted, and the operator stops.
    """
    api = cluster.api_client()
    operator = OperatorProcess(cluster.kubeconfig, prometheus.url, namespaces=f"{prefix}*")
    with own_namespace(api, prefix) as ns:
        try:
            with kubelet_for(api, prometheus, ns.name) as kubelet:
                yield OwnOperator(ns, operator, kubelet)
        finally:
            if before_cleanup is not None:
                before_cleanup(ns)
            if operator.process is None or operator.process.poll() is not None:
                operator.start()
            delete_namespaces(api, [ns.name])
            operator.stop()
            print(operator.logs()[-LOG_TAIL_CHARS:])
