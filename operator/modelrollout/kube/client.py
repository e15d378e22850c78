"""One Kubernetes API client per process, configured the way kubectl would be."""

from __future__ import annotations

import functools

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


@functools.cache
def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, otherwise KUBECONFIG (or ~/.kube/config)."""
    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def is_status(error: BaseException, *codes: int) -> bool:
    return isinstance(error, client.ApiException) and error.status in codes
