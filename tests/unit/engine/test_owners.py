"""Owned objects poke their ModelDeployment only for a change its decisions read: not for echoes."""

from __future__ import annotations

from typing import Any

import pytest
from kopf._cogs.structs.references import match_namespace  # the rule kopf applies; private, so only here

from modelrollout.engine import owners
from modelrollout.engine.owners import Fingerprints


def deployment(replicas: int, available: int | None, **status: Any) -> dict[str, Any]:
    return {
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"modelrollout.dev/revision": "abc"}}}},
        "status": {"availableReplicas": available, **status},
    }


def test_a_deployment_pokes_its_owner_when_it_appears_becomes_ready_is_scaled_or_goes() -> None:
    seen = Fingerprints()
    key = ("deployments", "ns", "m-abc")
    assert seen.changed(key, owners.deployment(deployment(1, None)))
    assert not seen.changed(key, owners.deployment(deployment(1, None, observedGeneration=2))), "bookkeeping"
    assert not seen.changed(key, owners.deployment(deployment(1, None, conditions=[{"type": "Progressing"}])))
    assert seen.changed(key, owners.deployment(deployment(1, 1))), "ready: traffic may move"
    assert seen.changed(key, owners.deployment(deployment(0, 1))), "scaled (by the router, or by someone)"
    assert seen.changed(key, None), "deleted"
    assert not seen.changed(key, None), "told once"


def test_a_smoke_job_pokes_its_owner_when_its_pod_runs_and_when_it_finishes() -> None:
    seen = Fingerprints()
    key = ("jobs", "ns", "m-smoke")
    assert seen.changed(key, owners.job({"status": {}}))
    assert seen.changed(key, owners.job({"status": {"active": 1}}))
    assert not seen.changed(key, owners.job({"status": {"active": 1, "startTime": "2026-11-30T08:00:00Z"}}))
    finished = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
    assert seen.changed(key, owners.job(finished))


def test_a_service_pokes_its_owner_when_its_selector_changes() -> None:
    seen = Fingerprints()
    key = ("services", "ns", "m-stable")
    stable = {"spec": {"selector": {"revision": "a"}, "ports": [{"port": 80}]}}
    assert seen.changed(key, owners.service(stable))
    assert not seen.changed(key, owners.service({**stable, "metadata": {"resourceVersion": "9"}}))
    assert seen.changed(key, owners.service({"spec": {"selector": {"revision": "b"}, "ports": [{"port": 80}]}}))


def test_the_echo_of_our_own_write_is_no_news_and_the_next_change_by_someone_else_is() -> None:
    seen = Fingerprints()
    key = ("deployments", "ns", "m-abc")
    labels = {"modelrollout.dev/model-deployment": "m"}
    created = {"kind": "Deployment", "metadata": {"namespace": "ns", "name": "m-abc", "resourceVersion": "7"}}
    owners.own_write(seen, "modelrollout.dev/model-deployment", {**created, "metadata": {**created["metadata"]}})
    assert seen.changed(key, owners.deployment(deployment(1, None)), "7"), "unlabelled: not one of ours, so news"

    created["metadata"]["labels"] = labels
    owners.own_write(seen, "modelrollout.dev/model-deployment", {**created, **deployment(2, None)})
    assert not seen.changed(key, owners.deployment(deployment(2, None)), "7"), "the echo of our scaling"
    assert seen.changed(key, owners.deployment(deployment(2, 2)), "8"), "ready: someone else's change"
    assert not seen.changed(key, owners.deployment(deployment(2, 2)), "9"), "bookkeeping"


def test_an_echo_that_comes_before_the_answer_is_news_once_and_a_missed_one_hides_nothing() -> None:
    seen = Fingerprints()
    key = ("services", "ns", "m-canary")
    selector = {"spec": {"selector": {"revision": "a"}, "ports": [{"port": 80}]}}
    assert seen.changed(key, owners.service(selector), "4"), "the event came first: a poke, as before"
    seen.wrote(key, "4")
    moved = {"spec": {"selector": {"revision": "b"}, "ports": [{"port": 80}]}}
    assert seen.changed(key, owners.service(moved), "5"), "a version we did not write"
    seen.wrote(key, "6")
    assert seen.changed(key, owners.service(selector), "7"), "ours (6) merged away by the watch: 7 is news"


@pytest.mark.parametrize(
    "pattern",
    ["mr-*", "myapp-*, !*-pr-*, *pr-123", "!*-pr-*, *pr-123", "!kube-*", "team-a", "*-live,!x*"],
)
@pytest.mark.parametrize(
    "namespace", ["mr-1", "myapp-test", "myapp-pr-123", "myapp-pr-456", "otherapp-pr-123", "kube-system", "team-a"]
)
def test_a_namespace_pattern_matches_as_kopf_matches_it(pattern: str, namespace: str) -> None:
    assert owners.matches(namespace, pattern) == match_namespace(namespace, pattern)


def test_names_are_watched_one_by_one_and_patterns_across_every_namespace() -> None:
    assert owners.watch_scopes(())[0] == [None]
    scopes, keeps = owners.watch_scopes(("team-a", "team-b"))
    assert scopes == ["team-a", "team-b"]
    assert keeps("team-a")
    scopes, keeps = owners.watch_scopes(("mr-*", "team-a"))
    assert scopes == [None]
    assert [keeps(n) for n in ("mr-1", "team-a", "team-b")] == [True, True, False]


def test_the_store_keeps_of_a_service_where_it_sends_traffic_and_of_a_deployment_all_but_its_conditions() -> None:
    service = {
        "kind": "Service",
        "metadata": {"name": "m", "namespace": "ns", "labels": {"a": "b"}, "resourceVersion": "3", "uid": "u"},
        "spec": {"selector": {"app": "m"}, "ports": [{"port": 80}], "clusterIP": "10.0.0.1", "type": "ClusterIP"},
        "status": {"loadBalancer": {}},
    }
    kept = owners.kept_service(service)
    assert kept["spec"] == {"selector": {"app": "m"}, "ports": [{"port": 80}]}
    assert "status" not in kept
    assert "uid" not in kept["metadata"]
    assert owners.service(kept) == owners.service(service), "its fingerprint is the same"
    live = deployment(2, 1, conditions=[{"type": "Available"}], observedGeneration=4)
    slim = owners.kept_deployment(live)
    assert slim["status"] == {"availableReplicas": 1, "observedGeneration": 4}
    assert slim["spec"] == live["spec"]
    assert owners.deployment(slim) == owners.deployment(live)
    assert live["status"]["conditions"], "the object given is not changed"
