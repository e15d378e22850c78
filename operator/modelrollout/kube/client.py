"""One Kubernetes API client per process, configured the way kubectl would be, and every request counted.

The operator talks to the API server through two clients: the official (synchronous)
``kubernetes`` client in the controllers, and kopf's own aiohttp session (watches,
finalizers, progress annotations, Events, peering keep-alives). Both are counted in
``modelrollout_kube_requests_total{client, verb}``, so the API cost of a rollout is what the
API server sees, not only the controllers' share of it.
"""

from __future__ import annotations

import functools
import json
import logging
import types
import warnings
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf
from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.config.config_exception import ConfigException

from modelrollout import telemetry

logger = logging.getLogger(__name__)

USER_AGENT = "modelrollout-operator"
"""Names the operator in the API server's logs, audit events and priority-and-fairness matching."""
CONNECTIONS = 32
"""Kept-alive connections to the API server: more than the reconcile workers, so none waits for a TLS
handshake (the client's default, 10, made 16 workers discard and re-open connections)."""
REQUEST_TIMEOUT = (10.0, 30.0)
"""Seconds to connect and to wait for an answer, for a request that names no timeout of its own. The
client's default waits for ever: one connection the API server or the network left hanging would hold
its reconcile worker, and the resource, until the process restarts. The operator's requests are single
reads and writes that a healthy API server answers in well under a second (it gives up on a request
itself after 60 s); a watch would need its own, longer bound, and the operator's watches are kopf's."""
WATCH = "WATCH"
"""The verb label of a watch request (a GET with ``watch=true``): one long-lived request, not one per event."""
WRITES = ("POST", "PUT", "PATCH")

WriteListener = Callable[[dict[str, Any]], None]
_write_listeners: list[WriteListener] = []


def on_write(listener: WriteListener) -> None:
    """Tell ``listener`` every object the operator's client creates, replaces or patches, as the API server
    answered it (process-wide, like the client).

    The watches of what the operator owns use it to know an echo of our own write when its event comes.
    """
    _write_listeners.append(listener)


class CountingApiClient(client.ApiClient):  # type: ignore[misc]
    """The official client, counting each request so the cost of a rollout step is measurable, and
    bounding each one in time (:data:`REQUEST_TIMEOUT`).

    The count is taken at the REST layer, whose ``request(method, url, ...)``
    is stable across client generations (``call_api`` is not).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        send = self.rest_client.request

        def counted(method: str, url: str, *args: Any, **options: Any) -> Any:
            count_request("kubernetes", method, url)
            if options.get("_request_timeout") is None:
                options["_request_timeout"] = REQUEST_TIMEOUT
            response = send(method, url, *args, **options)
            if _write_listeners and method.upper() in WRITES and isinstance(response, rest.RESTResponse):
                _tell_written(response)
            return response

        self.rest_client.request = counted


def _tell_written(response: rest.RESTResponse) -> None:
    try:
        written = json.loads(response.read())
    except ValueError:
        return
    if not isinstance(written, dict) or "metadata" not in written:
        return
    for listener in _write_listeners:
        try:
            listener(written)
        except Exception:  # a listener's bug must not fail the write it is told of
            logger.exception("a write listener failed on %s", written.get("kind"))


def count_request(client_name: str, method: str, url: str) -> None:
    """One API request; a watch is labelled ``WATCH`` so it is not mistaken for a read."""
    verb = WATCH if method.upper() == "GET" and "watch=true" in url.lower() else method.upper()
    telemetry.kube_requests_total.labels(client_name, verb).inc()


@functools.cache
def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, otherwise KUBECONFIG (or ~/.kube/config)."""
    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = CONNECTIONS
    counting = CountingApiClient(configuration=configuration)
    counting.user_agent = USER_AGENT
    return counting


def is_status(error: BaseException, *codes: int) -> bool:
    return isinstance(error, client.ApiException) and error.status in codes


async def _on_request_start(
    session: aiohttp.ClientSession, context: types.SimpleNamespace, params: aiohttp.TraceRequestStartParams
) -> None:
    count_request("kopf", params.method, str(params.url))


def counting_trace() -> aiohttp.TraceConfig:
    """An aiohttp trace that counts every request kopf's session sends, retries included."""
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_on_request_start)
    return trace


async def counting_login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's login, through kopf's own client-based credentials, with a session that counts requests.

    The session is built as kopf builds its own (same TLS, headers, basic auth, proxy), plus
    the counting trace.
    """
    info = kopf.login_via_client(**kwargs)
    if info is None:
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        auth = info.as_aiohttp_basic_auth()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers={**info.as_http_headers(), "User-Agent": f"{USER_AGENT} (kopf)"},
        auth=auth,
        proxy=info.proxy_url,
        trust_env=info.trust_env,
        trace_configs=[counting_trace()],
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
    )
