"""What every controller's reconciliation shares: the resource it is about, the time, and how to read it afresh."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import kopf
from kubernetes import client
from pydantic import ValidationError

from modelrollout import GROUP, VERSION
from modelrollout.api.base import StatusModel
from modelrollout.api.conditions import find_condition, set_condition
from modelrollout.core.decisions import Event
from modelrollout.engine.context import Context
from modelrollout.engine.writing import write_status, write_told

S = TypeVar("S", bound=StatusModel)
logger = logging.getLogger(__name__)

RECONCILED = "Reconciled"
"""The condition that says whether the last reconciliation ran through, and if not, what stopped it."""
MESSAGE_LIMIT = 1000
_API_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid"}


def describe(error: BaseException) -> tuple[str, str]:
    """A failure as a condition's reason and message: what was refused, by whom, and why, in the API
    server's own words (which name the object and the field); never a traceback."""
    reason = getattr(error, "condition_reason", None)
    if isinstance(reason, str):
        return reason, str(error)[:MESSAGE_LIMIT]
    if isinstance(error, client.ApiException):
        return _API_REASONS.get(error.status or 0, "ApiError"), api_error_message(error)[:MESSAGE_LIMIT]
    return "InternalError", f"{type(error).__name__}: {error}"[:MESSAGE_LIMIT]


def api_error_message(error: client.ApiException) -> str:
    """The API server's message from a refused call (its Status body), else the HTTP status line."""
    detail = ""
    try:
        body = json.loads(error.body) if error.body else {}
        detail = str(body.get("message") or "") if isinstance(body, dict) else ""
    except (TypeError, ValueError):
        detail = ""
    return f"{error.status} {error.reason}: {detail}" if detail else f"{error.status} {error.reason}"


def parse_status(model: type[S], raw: Mapping[str, Any] | None) -> S:
    """The status as the model reads it; an unreadable one (an older schema, a hand edit) starts afresh
    rather than stopping the controller."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError:
        logger.warning("unreadable %s, starting from an empty one: %s", model.__name__, raw)
        return model()


class NoDiffBaseStorage(kopf.DiffBaseStorage):
    """kopf's diff-base that remembers nothing: our timers decide from status, never from kopf's diff.

    kopf's default keeps the whole spec in the ``last-handled-configuration`` annotation; annotations are
    limited to 256 KiB in total, so a big spec made every patch of kopf's fail and the object was throttled
    for good. Reporting the current essence as the last handled one makes every change a no-op for kopf's
    change detection (we register no create/update handlers), and nothing is written.
    """

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        essence: kopf.BodyEssence = self.build(body=body)
        return essence

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        del body, patch, essence


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
        told = Event("Warning", "InvalidSpec", message)
        write_told(self.api, plural, self.body, updated, previous=status, event=told, now=self.now)

    def guarded(self, kind: str, plural: str, model: type[S], work: Callable[[], object]) -> None:
        """Run one reconciliation so that it never raises into kopf.

        Whatever stops it (an API error converging a derived object, a bug) becomes the ``Reconciled``
        condition, with the reason and the message naming the object and field, and a Warning Event when
        that message is new. The next try comes after a short back-off (1 s doubling to 30 s, at once on a
        new spec generation) instead of kopf's 60 s, and a success clears the condition.
        """
        if self.context.backing_off(kind, self.namespace, self.name, self.generation):
            return
        try:
            work()
        except Exception as error:  # the point: no error escapes a tick
            delay = self.context.failed(kind, self.namespace, self.name, self.generation)
            reason, message = describe(error)
            if reason == "InternalError":
                logger.exception("%s/%s: reconciliation failed, retrying in %.0fs", self.namespace, self.name, delay)
            else:
                logger.warning("%s/%s: %s (retrying in %.0fs)", self.namespace, self.name, message, delay)
            self._set_reconciled(plural, model, "False", reason, message)
        else:
            # The memory of failures is this process's; after a restart, the status itself tells.
            if self.context.recovered(kind, self.namespace, self.name) or self._failure_recorded():
                self._set_reconciled(plural, model, "True", "Reconciled", "")

    def _failure_recorded(self) -> bool:
        conditions = (self.body.get("status") or {}).get("conditions") or []
        return any(c.get("type") == RECONCILED and c.get("status") == "False" for c in conditions)

    def _set_reconciled(self, plural: str, model: type[S], value: str, reason: str, message: str) -> None:
        """Write the Reconciled condition on the freshly read status; a failure to do so is only logged."""
        try:
            fresh = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, self.name
            )
            status = parse_status(model, fresh.get("status"))
            conditions = status.conditions  # type: ignore[attr-defined]
            existing = find_condition(conditions, RECONCILED)
            if existing is None and value == "True":
                return
            if existing is not None and (existing.status, existing.reason, existing.message) == (
                value,
                reason,
                message,
            ):
                return
            conditions = set_condition(
                conditions,
                RECONCILED,
                value,  # type: ignore[arg-type]
                reason=reason,
                message=message,
                now=self.now,
                generation=self.generation,
            )
            updated = status.model_copy(update={"conditions": conditions})
            if value == "False":
                told = Event("Warning", reason, message)
                write_told(self.api, plural, self.body, updated, previous=status, event=told, now=self.now)
            else:
                write_status(self.api, plural, self.namespace, self.name, updated, previous=status)
        except client.ApiException as error:
            if error.status != 404:  # a resource deleted meanwhile has nothing left to report on
                logger.error("%s/%s: cannot record the outcome: %s", self.namespace, self.name, describe(error)[1])
        except Exception as error:  # reporting must not raise either
            logger.error("%s/%s: cannot record the outcome: %s", self.namespace, self.name, describe(error)[1])
