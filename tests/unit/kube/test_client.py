"""The operator's API client bounds every request in time, unless the caller names its own bound."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import rest

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
