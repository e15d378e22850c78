"""What every controller's reconciliation shares: the resource it is about, the time, and how to read it afresh."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from kubernetes import client
from pydantic import ValidationError

from modelrollout import GROUP, VERSION
from modelrollout.api.base import StatusModel
from modelrollout.api.conditions import find_condition, set_condition
from modelrollout.engine.context import Context
from modelrollout.engine.writing import post_event, write_status

S = TypeVar("S", bound=StatusModel)
logger = logging.getLogger(__name__)


def parse_status(model: type[S], raw: Mapping[str, Any] | None) -> S:
    """The status as the model reads it; an unreadable one (an older schema, a hand edit) starts afresh
    rather than stopping the controller."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError:
        logger.warning("unreadable %s, starting from an empty one: %s", model.__name__, raw)
        return model()


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

    def report_invalid_spec(self, plural: str, status: StatusModel, error: ValidationError) -> None:
        """A spec the schema let through but the rules reject: say so once, and change nothing else."""
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors())
        message = message[:1000]
        conditions = status.conditions  # type: ignore[attr-defined]
        existing = find_condition(conditions, "InvalidSpec")
        if existing is not None and existing.status == "True" and existing.message == message:
            return
        conditions = set_condition(
            conditions,
            "InvalidSpec",
            "True",
            reason="ValidationFailed",
            message=message,
            now=self.now,
            generation=self.generation,
        )
        updated = status.model_copy(update={"conditions": conditions})
        write_status(self.api, plural, self.namespace, self.name, updated, previous=status)
        post_event(self.body, "Warning", "InvalidSpec", message)
