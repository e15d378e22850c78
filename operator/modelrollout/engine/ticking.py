"""What every controller's reconciliation shares: the resource it is about, the time, and how to read it afresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import client

from modelrollout import GROUP, VERSION
from modelrollout.engine.context import Context


@dataclass
class Tick:
    """One reconciliation of one custom resource."""

    context: Context
    api: client.ApiClient
    body: dict[str, Any]
    now: datetime

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.body["metadata"]
        return meta

    @property
    def namespace(self) -> str:
        return str(self.meta["namespace"])

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def generation(self) -> int:
        return int(self.meta.get("generation") or 1)

    def read_fresh(self, plural: str) -> dict[str, Any]:
        """The resource as the API server has it now.

        kopf's cached body lags our own status writes by a watch event; deciding
        from it would replay the last transition.
        """
        fresh: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, self.name
        )
        self.body = fresh
        return fresh
