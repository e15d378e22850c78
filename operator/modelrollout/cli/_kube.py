"""Cluster access for the rollout commands: kubectl's configuration rules, and typed errors.

The commands run on a laptop, in CI and as a ``kubectl`` plugin, so they read
the same kubeconfig kubectl would (``--kubeconfig``, else ``KUBECONFIG``, else
``~/.kube/config``) and default to the namespace of its current context. Each
invocation builds its own client from those arguments rather than sharing the
operator's process-wide :func:`modelrollout.kube.client.api_client`, because a
process may run several commands against different clusters (tests do).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from modelrollout import GROUP, VERSION
from modelrollout.api import modeldeployment as md
from modelrollout.kube import naming

DEFAULT_NAMESPACE = "default"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
Resource = dict[str, Any]
T = TypeVar("T")


class CommandError(Exception):
    """A failure the user can act on; the message is printed as is and the command exits 1."""


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        help="the namespace (default: the kubeconfig context's namespace, else default)",
    )
    parser.add_argument(
        "--kubeconfig", metavar="PATH", help="the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )


def kubeconfig_path(explicit: str | None) -> str:
    """The kubeconfig kubectl would read; ``KUBECONFIG`` may list several files joined by ``:``."""
    return explicit or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


@dataclass(frozen=True, slots=True)
class Cluster:
    """One API client and the namespace the command works in."""

    api: client.ApiClient
    namespace: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Cluster:
        path = kubeconfig_path(args.kubeconfig)
        try:
            api = config.new_client_from_config(config_file=path)
            namespace = args.namespace or _context_namespace(path)
        except (ConfigException, OSError) as error:
            raise CommandError(f"cannot load kubeconfig {path}: {error}") from error
        return cls(api=api, namespace=namespace)

    def get_model_deployment(self, name: str) -> Resource:
        objects = self._objects
        found = self._call(
            name, lambda: objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, md.PLURAL, name)
        )
        return dict(found)

    def merge_patch(self, name: str, patch: Resource) -> Resource:
        """A JSON merge patch: maps merge key by key, so unrelated annotations and spec fields stay."""
        return self._patch(name, patch, MERGE_PATCH)

    def json_patch(self, name: str, operations: list[Resource]) -> Resource:
        """A JSON patch (RFC 6902): each operation sets one value whole, with nothing merged into it."""
        return self._patch(name, operations, JSON_PATCH)

    def controller_revisions(self, name: str) -> list[Resource]:
        """The ModelDeployment's ControllerRevisions as plain dicts (the API's JSON field names)."""
        apps = client.AppsV1Api(self.api)
        selector = naming.owned_selector(name)
        found = self._call(
            name, lambda: apps.list_namespaced_controller_revision(self.namespace, label_selector=selector)
        )
        items: list[Resource] = self.api.sanitize_for_serialization(found.items)
        return items

    @property
    def _objects(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def _patch(self, name: str, body: Resource | list[Resource], content_type: str) -> Resource:
        objects = self._objects
        patched = self._call(
            name,
            lambda: objects.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, md.PLURAL, name, body, _content_type=content_type
            ),
        )
        return dict(patched)

    def _call(self, name: str, request: Callable[[], T]) -> T:
        """Run one API request; failures become messages naming the resource, without a traceback."""
        try:
            return request()
        except client.ApiException as error:
            if error.status == 404:
                raise CommandError(f"modeldeployment {name!r} not found in namespace {self.namespace!r}") from error
            raise CommandError(f"the API server refused ({error.status}): {_reason(error)}") from error
        except urllib3.exceptions.HTTPError as error:
            host = self.api.configuration.host
            raise CommandError(f"cannot reach the API server at {host}: {error}") from error


def connect(args: argparse.Namespace) -> Cluster:
    return Cluster.from_args(args)


def _context_namespace(path: str) -> str:
    _, active = config.list_kube_config_contexts(config_file=path)
    namespace = (active or {}).get("context", {}).get("namespace")
    return str(namespace) if namespace else DEFAULT_NAMESPACE


def _reason(error: client.ApiException) -> str:
    try:
        body = json.loads(error.body or "")
    except ValueError:
        return str(error.reason)
    return str(body.get("message") or error.reason)
