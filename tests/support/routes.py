"""The Gateway API HTTPRoute a platform team owns, as the scenarios create it before the operator edits it.

The operator only rewrites the ``backendRefs`` of the route's weighted rule; everything else is the
platform's. Each scenario starts with all traffic on one Service.
"""

from __future__ import annotations

from typing import Any


def http_route(
    name: str, backend: str, *, path_prefix: str | None = "/predict", namespace: str | None = None
) -> dict[str, Any]:
    """A route attached to the Gateway ``gateway``, sending all of ``path_prefix`` (or all paths) to ``backend``.

    ``namespace`` for stores that do not take it from the request path, as an API server does.
    """
    rule: dict[str, Any] = {"backendRefs": [{"name": backend, "port": 80}]}
    if path_prefix is not None:
        rule = {"matches": [{"path": {"type": "PathPrefix", "value": path_prefix}}], **rule}
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [rule]},
    }
