"""One Kubernetes API client per process, configured the way kubectl would be."""

from __future__ import annotations

import functools
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from modelrollout import telemetry


class CountingApiClient(client.ApiClient):  # type: ignore[misc]
    """The official client, counting each request so the cost of a rollout step is measurable.

    The count is taken at the REST layer, whose ``request(method, url, ...)``
    is stable across client generations (``call_api`` is not).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        send = self.rest_client.request

        def counted(method: str, url: str, *rest: Any, **options: Any) -> Any:
            telemetry.kube_requests_total.labels(method.upper()).inc()
            return send(method, url, *rest, **options)

        self.rest_client.request = counted


@functools.cache
def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, otherwise KUBECONFIG (or ~/.kube/config)."""
    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config()
    return CountingApiClient()


def is_status(error: BaseException, *codes: int) -> bool:
    return isinstance(error, client.ApiException) and error.status in codes
