"""The informers against the real API server: a list fills the store, watch events keep it current, a
deletion leaves it, and a stopped informer lets go of its connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.scenario import Namespace, namespace
from modelrollout.engine import owners
from modelrollout.kube import informer
from modelrollout.kube.informer import Informer
from modelrollout.kube.ownedstore import OwnedStore
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

LABEL = "modelrollout.dev/model-deployment"
KINDS = (informer.DEPLOYMENTS, informer.SERVICES, informer.CONTROLLER_REVISIONS, informer.JOBS)


@pytest.fixture
def space(api: client.ApiClient) -> Iterator[Namespace]:
    with namespace(api, prefix="inf-") as made:
        yield made


class Told:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str, bool]] = []

    def __call__(self, plural: str, obj: dict[str, Any], gone: bool) -> None:
        self.changes.append((plural, obj["metadata"]["name"], gone))


def service(name: str, owner: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {LABEL: owner}},
        "spec": {"selector": {"app": owner}, "ports": [{"port": 80}]},
    }


def deployment(name: str, owner: str) -> dict[str, Any]:
    labels = {LABEL: owner, "app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }


def test_the_store_follows_the_cluster_by_list_and_watch(api: client.ApiClient, space: Namespace) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespaced_service(space.name, service("before", "returns"))
    core.create_namespaced_service(space.name, {**service("unlabelled", "x"), "metadata": {"name": "unlabelled"}})
    told = Told()
    store = OwnedStore(LABEL, {owned.plural: owned.kept for owned in owners.OWNED}, told)
    informers = [Informer(api, kind, store, label_selector=LABEL, watch_seconds=30) for kind in KINDS]
    for one in informers:
        one.start()
    try:
        wait_for(store.synced, 60, message="every kind listed")

        def names(plural: str) -> set[str]:
            owned = store.owned(api, space.name, "returns", with_jobs=True)
            return set(getattr(owned, plural))

        assert names("services") == {"before"}, "listed; what is not labelled is not kept"
        apps.create_namespaced_deployment(space.name, deployment("returns-a", "returns"))
        wait_for(lambda: names("deployments") == {"returns-a"}, 60, message="the created Deployment")
        apps.patch_namespaced_deployment("returns-a", space.name, {"spec": {"replicas": 2}})
        wait_for(
            lambda: (store.deployment(space.name, "returns-a") or {}).get("spec", {}).get("replicas") == 2,
            60,
            message="the scaled Deployment",
        )
        assert "managedFields" not in (store.deployment(space.name, "returns-a") or {})["metadata"]
        core.delete_namespaced_service("before", space.name)
        wait_for(lambda: names("services") == set(), 60, message="the deleted Service gone")
        assert ("services", "before", True) in told.changes
        assert ("deployments", "returns-a", False) in told.changes
    finally:
        for one in informers:
            one.stop()
        for one in informers:
            one.join(30)
    assert not any(one.alive() for one in informers), "stopped: the watch's connection was closed under it"
