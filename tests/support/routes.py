"""The Gateway API HTTPRoute a platform team owns, as the scenarios create it before the operator edits it.

The operator only rewrites the ``backendRefs`` of the route's weighted rule; everything else is the
platform's. Each scenario starts with all traffic on one Service.
"""

from __future__ import annotations

from typing import Any


def http_route(name: str, backend: str, *, path_prefix: str | None = "/predict") -> dict[str, Any]:
    """A route attached to the Gateway ``gateway``, sending all of ``path_prefix`` (or all paths) to ``backend``."""
    rule: dict[str, Any] = {"backendRefs": [{"name": backend, "port": 80}]}
    if path_prefix is not None:
        rule = {"matches": [{"path": {"type": "PathPrefix", "value": path_prefix}}], **rule}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [rule]},
    }
