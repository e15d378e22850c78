"""The operator's API client bounds every request in time, unless the caller names its own bound, and tells
listeners what its writes produced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import rest

from modelrollout.kube import client as kube_client
from modelrollout.kube.client import REQUEST_TIMEOUT, CountingApiClient


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    timeouts: list[Any] = []

    def request(self: rest.RESTClientObject, method: str, url: str, **options: Any) -> Any:
        del self, method, url
        timeouts.append(options.get("_request_timeout"))
        raise client.ApiException(status=418, reason="recorded")

    monkeypatch.setattr(rest.RESTClientObject, "request", request)
    return timeouts


def test_a_request_without_a_timeout_gets_the_default_so_a_hung_connection_cannot_hold_a_worker(
    sent: list[Any],
) -> None:
    api = client.CoreV1Api(CountingApiClient(configuration=client.Configuration(host="http://127.0.0.1:1")))
    with pytest.raises(client.ApiException):
        api.read_namespace("default")
    assert sent == [REQUEST_TIMEOUT]


def test_a_request_that_names_its_timeout_keeps_it(sent: list[Any]) -> None:
    api = client.CoreV1Api(CountingApiClient(configuration=client.Configuration(host="http://127.0.0.1:1")))
    with pytest.raises(client.ApiException):
        api.read_namespace("default", _request_timeout=5)
    assert sent == [5]


class Answer:
    """What urllib3 hands the REST layer: the API server's answer to one request."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.status, self.reason, self.headers = 200, "OK", {"Content-Type": "application/json"}
        self.data = json.dumps(body).encode()


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    def request(self: rest.RESTClientObject, method: str, url: str, **options: Any) -> Any:
        del self, url, options
        name = "written" if method in ("POST", "PATCH", "PUT") else "read"
        return rest.RESTResponse(Answer({"kind": "Service", "metadata": {"name": name, "resourceVersion": "3"}}))

    monkeypatch.setattr(rest.RESTClientObject, "request", request)
    told: list[dict[str, Any]] = []
    monkeypatch.setattr(kube_client, "_write_listeners", [])
    kube_client.on_write(told.append)
    return told


def test_the_answers_to_our_writes_are_told_to_the_listeners_and_the_caller_still_reads_them(
    answering: list[dict[str, Any]],
) -> None:
    core = client.CoreV1Api(CountingApiClient(configuration=client.Configuration(host="http://127.0.0.1:1")))
    created = core.create_namespaced_service("ns", {"metadata": {"name": "written"}})
    core.read_namespaced_service("read", "ns")
    patched = core.patch_namespaced_service("written", "ns", {"spec": {}})
    assert (created.metadata.name, patched.metadata.resource_version) == ("written", "3")
    assert [told["metadata"]["name"] for told in answering] == ["written", "written"], "writes only"


def test_a_listener_that_fails_does_not_fail_the_write(answering: list[dict[str, Any]]) -> None:
    def broken(written: dict[str, Any]) -> None:
        raise RuntimeError(f"a bug on {written['kind']}")

    kube_client.on_write(broken)
    core = client.CoreV1Api(CountingApiClient(configuration=client.Configuration(host="http://127.0.0.1:1")))
    assert core.create_namespaced_service("ns", {"metadata": {"name": "written"}}).metadata.name == "written"
    assert len(answering) == 1
