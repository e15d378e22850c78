"""What the operator sets up for itself at start-up, so an install is one `kubectl apply`.

- Its own CRDs, served. kopf lists the API's discovery once at start and afterwards re-reads
  it only when a CRD changes; on a fresh install the CRDs can be established a moment before
  discovery lists them, and kopf would then never watch that kind. So start-up waits until
  discovery serves every kind the operator handles.

- The kopf peering object. kubectl (and Helm) cannot create an object in the same apply as
  its CustomResourceDefinition on a fresh cluster ("no matches for kind"), so the manifests
  ship only the peering CRDs and the operator creates its own ``ClusterKopfPeering`` when it
  is missing. One cluster-scoped object serves every mode, also an operator restricted to
  some namespaces, so a watched namespace needs nothing created in it (it may not even
  exist yet).
- The smoke-test image. Built-in smoke Jobs must run the operator's own version; reading the
  image from the operator's own Pod means an overlay or ``--set image.tag`` that retags the
  operator cannot leave them on another one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubernetes import client

from modelrollout.kube.client import is_status

PEERING_GROUP = "kopf.dev"
PEERING_VERSION = "v1"
PEERING_PLURAL = "clusterkopfpeerings"
OPERATOR_CONTAINER = "operator"
"""The operator's container in its pod (charts/ and manifests/ name it so)."""


def unserved(api: client.ApiClient, group: str, version: str, plurals: Iterable[str]) -> list[str]:
    """The ``plurals`` of ``group/version`` that API discovery does not list (yet)."""
    try:
        listed = client.CustomObjectsApi(api).get_api_resources(group, version)
    except client.ApiException as error:
        if is_status(error, 404):
            return sorted(plurals)
        raise
    served = {resource.name for resource in listed.resources or []}
    return sorted(set(plurals) - served)


class PeeringNotServedError(RuntimeError):
    """The peering CRD is not established yet (a fresh install), or the operator may not create the
    object yet (its RBAC is applied with it); the caller retries."""


def ensure_peering(api: client.ApiClient, name: str) -> bool:
    """Create the ClusterKopfPeering ``name`` unless it exists; True when this call created it.

    Created, never updated or deleted: the replicas' keep-alives live in its status, and
    re-creating it would forget them and let two replicas act at once.
    """
    objects = client.CustomObjectsApi(api)
    body: dict[str, Any] = {
        "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "modelrollout"}},
    }
    try:
        objects.create_cluster_custom_object(PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL, body)
    except client.ApiException as error:
        if is_status(error, 409):
            return False
        if is_status(error, 404):
            raise PeeringNotServedError(
                f"the {PEERING_PLURAL}.{PEERING_GROUP} CRD is not served yet; it is part of the install"
            ) from None
        if is_status(error, 403):
            raise PeeringNotServedError(
                f"not allowed to create ClusterKopfPeering {name!r} (yet): the operator's ClusterRole grants "
                f"create on {PEERING_PLURAL}.{PEERING_GROUP}"
            ) from None
        raise
    return True


def own_image(api: client.ApiClient, namespace: str, pod: str) -> str | None:
    """The image of the operator's container in its own Pod, or None when the pod does not say."""
    found = client.CoreV1Api(api).read_namespaced_pod(pod, namespace)
    containers = list(found.spec.containers or [])
    for container in containers:
        if container.name == OPERATOR_CONTAINER:
            return str(container.image)
    return str(containers[0].image) if len(containers) == 1 else None
