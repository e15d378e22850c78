"""The store of owned objects: a list replaces a kind, events change one object, our writes are seen first,
and neither feed's late arrival takes the store back in time."""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.engine.owners import kept_whole
from modelrollout.kube.owned import Owned
from modelrollout.kube.ownedstore import OwnedStore
from tests.support.apiserver import InMemoryApiServer

LABEL = "modelrollout.dev/model-deployment"
PLURALS = dict.fromkeys(("deployments", "services", "controllerrevisions", "jobs"), kept_whole)


def obj(name: str, version: int, *, owner: str = "returns", kind: str = "Deployment", **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {
            "namespace": "ns",
            "name": name,
            "resourceVersion": str(version),
            "labels": {LABEL: owner},
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        **extra,
    }


class Told:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str, bool]] = []

    def __call__(self, plural: str, changed: dict[str, Any], gone: bool) -> None:
        self.changes.append((plural, changed["metadata"]["name"], gone))


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
def store(told: Told) -> OwnedStore:
    made = OwnedStore(LABEL, PLURALS, told)
    for plural in PLURALS:
        made.replaced(plural, None, [], "1")
    return made


def owned(store: OwnedStore, owner: str = "returns", *, with_jobs: bool = True) -> Owned:
    return store.owned(NO_API, "ns", owner, with_jobs=with_jobs)


NO_API: Any = None
"""Once synced the store answers from memory: a request would fail on this."""


def test_until_every_kind_is_listed_a_read_lists(told: Told) -> None:
    store = OwnedStore(LABEL, PLURALS, told)
    store.replaced("deployments", None, [obj("returns-a", 5)], "5")
    assert not store.synced()
    assert store.deployment("ns", "returns-a") is None, "not known until every kind is listed"
    server = InMemoryApiServer()
    store.owned(server.api_client(), "ns", "returns", with_jobs=False)
    assert server.journal == ["list controllerrevisions", "list deployments", "list services"]


def test_objects_are_read_by_owner_and_kind(store: OwnedStore) -> None:
    store.changed("deployments", "ADDED", obj("returns-a", 5))
    store.changed("deployments", "ADDED", obj("fraud-a", 6, owner="fraud"))
    store.changed("services", "ADDED", obj("returns-stable", 7, kind="Service"))
    store.changed("jobs", "ADDED", obj("returns-smoke", 8, kind="Job"))
    mine = owned(store)
    assert set(mine.deployments) == {"returns-a"}
    assert set(mine.services) == {"returns-stable"}
    assert set(mine.jobs) == {"returns-smoke"}
    assert owned(store, with_jobs=False).jobs == {}
    assert set(owned(store, "fraud").deployments) == {"fraud-a"}


def test_a_list_replaces_the_kind_and_tells_of_what_went(store: OwnedStore, told: Told) -> None:
    store.changed("deployments", "ADDED", obj("returns-a", 5))
    store.changed("deployments", "ADDED", obj("returns-b", 6))
    told.changes.clear()
    store.replaced("deployments", None, [obj("returns-b", 6)], "9")
    assert set(owned(store).deployments) == {"returns-b"}, "deleted while no watch ran: gone with the list"
    assert ("deployments", "returns-a", True) in told.changes


def test_a_write_answered_after_the_list_survives_it(store: OwnedStore) -> None:
    store.wrote("deployments", obj("returns-c", 12))
    store.replaced("deployments", None, [], "10")
    assert set(owned(store).deployments) == {"returns-c"}, "created after the list was taken"
    store.replaced("deployments", None, [], "13")
    assert owned(store).deployments == {}, "a list taken after it does not have it: it was deleted"


def test_our_write_is_read_before_its_event_and_an_older_event_does_not_undo_it(store: OwnedStore) -> None:
    store.changed("deployments", "ADDED", obj("returns-a", 5, spec={"replicas": 1}))
    store.wrote("deployments", obj("returns-a", 9, spec={"replicas": 3}))
    assert owned(store).deployments["returns-a"]["spec"] == {"replicas": 3}
    store.changed("deployments", "MODIFIED", obj("returns-a", 7, spec={"replicas": 1}))
    assert owned(store).deployments["returns-a"]["spec"] == {"replicas": 3}, "the event is older than the write"
    store.changed("deployments", "MODIFIED", obj("returns-a", 11, spec={"replicas": 2}))
    assert owned(store).deployments["returns-a"]["spec"] == {"replicas": 2}


def test_a_write_answered_before_a_deletion_does_not_bring_the_object_back(store: OwnedStore) -> None:
    store.changed("deployments", "ADDED", obj("returns-a", 5))
    store.changed("deployments", "DELETED", obj("returns-a", 9))
    store.wrote("deployments", obj("returns-a", 8))
    assert owned(store).deployments == {}
    store.wrote("deployments", obj("returns-a", 12))
    assert set(owned(store).deployments) == {"returns-a"}, "created again since"


def test_what_is_stored_has_no_managed_fields_and_writes_of_others_are_ignored(store: OwnedStore) -> None:
    store.wrote("deployments", obj("returns-a", 5))
    store.wrote(
        "deployments", {"kind": "Deployment", "metadata": {"namespace": "ns", "name": "theirs", "resourceVersion": "6"}}
    )
    store.wrote("configmaps", obj("returns-cm", 7, kind="ConfigMap"))
    assert "managedFields" not in (store.deployment("ns", "returns-a") or {})["metadata"]
    assert store.deployment("ns", "theirs") is None


def test_an_object_whose_owner_label_changes_moves_to_its_new_owner(store: OwnedStore) -> None:
    store.changed("services", "ADDED", obj("shared", 5, kind="Service"))
    store.changed("services", "MODIFIED", obj("shared", 6, owner="fraud", kind="Service"))
    assert owned(store).services == {}
    assert set(owned(store, "fraud").services) == {"shared"}


def test_versions_that_are_not_numbers_are_not_compared(store: OwnedStore) -> None:
    first, second = obj("returns-a", 0), obj("returns-a", 0)
    first["metadata"]["resourceVersion"], second["metadata"]["resourceVersion"] = "b", "a"
    store.changed("deployments", "ADDED", first)
    store.changed("deployments", "MODIFIED", second)
    assert (store.deployment("ns", "returns-a") or {})["metadata"]["resourceVersion"] == "a", "the last one wins"


def test_namespaces_listed_one_by_one_are_replaced_one_by_one_and_others_are_not_kept(told: Told) -> None:
    store = OwnedStore(
        LABEL, {"deployments": kept_whole}, told, scopes=["ns", "other"], keeps=lambda n: n != "elsewhere"
    )
    store.replaced("deployments", "ns", [obj("returns-a", 5)], "5")
    assert not store.synced(), "one namespace is not listed yet"
    elsewhere = obj("returns-x", 6)
    elsewhere["metadata"]["namespace"] = "elsewhere"
    there = obj("returns-b", 7)
    there["metadata"]["namespace"] = "other"
    store.replaced("deployments", "other", [there, elsewhere], "7")
    assert store.synced()
    assert store.deployment("ns", "returns-a") is not None, "a list of the other namespace left it"
    assert store.deployment("other", "returns-b") is not None
    assert store.deployment("elsewhere", "returns-x") is None, "not a watched namespace"
    store.replaced("deployments", "ns", [], "9")
    assert store.deployment("ns", "returns-a") is None
    assert store.deployment("other", "returns-b") is not None


def test_each_feed_keeps_only_what_the_kind_keeps(told: Told) -> None:
    def no_spec(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k != "spec"}

    store = OwnedStore(LABEL, {"deployments": no_spec}, told)
    store.replaced("deployments", None, [obj("listed", 5, spec={"a": 1})], "5")
    store.changed("deployments", "ADDED", obj("watched", 6, spec={"a": 1}))
    store.wrote("deployments", obj("written", 7, spec={"a": 1}))
    for name in ("listed", "watched", "written"):
        assert "spec" not in (store.deployment("ns", name) or {"spec": "missing"}), name
