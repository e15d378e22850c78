"""Where a ModelDeployment's rollout stands, asked the way every scenario asks it.

Tests in ``tests/integration`` and ``e2e`` put the same few questions to a rollout: is a version stable
and at rest, where does the router send traffic now, which ControllerRevisions exist, and "wait until
status says so, else show me the rollout". Each has one answer here, so a change to the status schema or
to the router's state is followed in one place, and a rollout that never settles is shown as
``modelrollout status`` shows it rather than as "timed out".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from e2e.harness.kubelet import LocalKubelet
from e2e.harness.scenario import Namespace
from modelrollout.cli._render import render_status
from tests.support.settling import DEFAULT_INTERVAL, settle

REVISION_LABEL = "modelrollout.dev/model-deployment"
"""The label the operator puts on a ModelDeployment's ControllerRevisions."""


def is_stable_on(status: Mapping[str, Any], version: str) -> bool:
    """Whether the rollout is at rest Healthy with model ``version`` stable.

    Both halves matter: ``Healthy`` alone also holds while the previous version is still the stable one,
    before the operator has started rolling the new one out.
    """
    return status.get("phase") == "Healthy" and (status.get("stableRevision") or {}).get("modelVersion") == version


def router_weights(kubelet: LocalKubelet, name: str) -> dict[str, float]:
    """Where the router sends ``name``'s traffic now (URL -> share); empty while that cannot be read.

    Load generators call this before every batch of requests, from their own thread: an object or route
    not there yet, or a server not started yet, means "send nothing now", never an exception there.
    """
    try:
        return kubelet.weights(name)
    except Exception:
        return {}


def explain(ns: Namespace, name: str) -> str:
    """The ModelDeployment as ``modelrollout status`` renders it, then the Events about it."""
    events = "\n".join(f"  {e.reason}: {e.message}" for e in ns.events(name))
    return f"{render_status(ns.get(name), datetime.now(UTC))}\nEvents:\n{events}"


def settle_rollout(
    ns: Namespace,
    name: str,
    predicate: Callable[[dict[str, Any]], object],
    timeout: float,
    message: str,
    *,
    interval: float = DEFAULT_INTERVAL,
) -> None:
    """Wait until ``name``'s status satisfies ``predicate``; on timeout show the rollout (:func:`explain`)."""
    settle(lambda: ns.status(name), predicate, timeout, message, explain=lambda: explain(ns, name), interval=interval)


def controller_revisions(api: client.ApiClient, namespace: str, name: str) -> dict[int, dict[str, Any]]:
    """The ControllerRevisions of ModelDeployment ``name`` by revision number, as plain dictionaries.

    They are the version history the CLI's ``history`` and ``undo`` read: a test compares them with what the
    CLI printed or restored.
    """
    found = client.AppsV1Api(api).list_namespaced_controller_revision(
        namespace, label_selector=f"{REVISION_LABEL}={name}"
    )
    return {item.revision: api.sanitize_for_serialization(item) for item in found.items}
