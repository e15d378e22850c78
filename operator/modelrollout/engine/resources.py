"""The seam between the reconciler and the API server, for the engine's own calls.

Every call the engine makes on its custom resources, on the objects they name
(a target ModelDeployment, a reference ConfigMap, a webhook Secret) and on
Events goes through :class:`Resources`. The operator uses
:class:`ApiResources`, the Kubernetes client; the engine's unit tests use an
in-memory implementation (``tests/support/kubernetes.py``) and assert on the
calls in order — which status write came before which Event — as Argo
Rollouts' controller tests do with their fake clientsets. Refusals are the
client's own ``ApiException`` in both, so the code under test handles one
error type.

The workloads a ModelDeployment derives (Deployments, Services, Jobs,
ControllerRevisions) and the routers keep their own adapters (``kube/``,
``routing/``), tested against a real API server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from kubernetes import client

from modelrollout import GROUP, VERSION
from modelrollout.api.events import PendingEvent, outbox_fields

PatchType = Literal["merge", "json"]
_CONTENT_TYPES: Mapping[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


class Resources(Protocol):
    """What the engine asks of the API server; a refusal raises ``kubernetes.client.ApiException``."""

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """One of our custom resources, as the API server has it now."""
        ...

    def patch(
        self, plural: str, namespace: str, name: str, patch: Any, *, patch_type: PatchType = "merge"
    ) -> dict[str, Any]:
        """Patch a custom resource's spec or metadata (not its status); returns the patched object."""
        ...

    def patch_status(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource (``patch`` is ``{"status": {...}}``); returns the patched object."""
        ...

    def clear_outbox(
        self, plural: str, namespace: str, name: str, *, uid: str, through: int, remaining: Sequence[PendingEvent]
    ) -> None:
        """The Events up to ``through`` are posted: leave only ``remaining`` in the status's outbox."""
        ...

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        """Create a core/v1 Event; a second create under the same name is refused with 409."""
        ...

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        """A ConfigMap's ``data``."""
        ...

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's ``data`` (base64 values, as the API returns them): read only where it is used."""
        ...


class ApiResources:
    """:class:`Resources` on the Kubernetes client."""

    def __init__(self, api: client.ApiClient) -> None:
        self._objects = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._objects.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        return found

    def patch(
        self, plural: str, namespace: str, name: str, patch: Any, *, patch_type: PatchType = "merge"
    ) -> dict[str, Any]:
        patched: dict[str, Any] = self._objects.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, patch, _content_type=_CONTENT_TYPES[patch_type]
        )
        return patched

    def patch_status(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self._objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, dict(patch), _content_type=_CONTENT_TYPES["merge"]
        )
        return patched

    def clear_outbox(
        self, plural: str, namespace: str, name: str, *, uid: str, through: int, remaining: Sequence[PendingEvent]
    ) -> None:
        del uid, through
        self.patch_status(plural, namespace, name, {"status": outbox_fields(remaining)})

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self._core.create_namespaced_event(namespace, dict(event))

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self._core.read_namespaced_config_map(name, namespace).data or {})

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self._core.read_namespaced_secret(name, namespace).data or {})
