"""The one reconciliation loop every kind runs: the whole tick, in the same order for all three.

A tick of a resource goes:

1. **quiet check** on the cached body: a resource with nothing due (same
   generation, no action, no outbox, no resync due, and nothing due in its
   own life cycle, as the kind says) costs nothing, not even a read;
2. **fresh read** (one GET) unless the watch's copy is known to hold our own
   last write (:mod:`modelrollout.engine.freshness`): deciding from a status that
   lacks it would replay the last transition;
3. **Events first**: what the outbox still holds from before a crash;
4. **parse** the spec; one the schema let through but the rules reject is
   reported once as the ``InvalidSpec`` condition with a Warning Event, and
   nothing else changes; a spec that became valid clears the condition;
5. the **kind's own work**: observe, decide (pure), record (status before
   Events, :func:`modelrollout.engine.writing.record`), act, decide again on
   what the act read back, record;
6. **telemetry**, and the ``Reconciled`` condition: whatever stopped the tick
   (an API refusal, a bug) is a condition naming the object and field, never
   an exception into kopf, and the next try comes after a short back-off.

Each kind's engine module keeps only what is its own (:class:`Kind`): when it
is quiet, and what it observes and how it acts.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import kopf
from kubernetes import client
from pydantic import BaseModel, ValidationError

from modelrollout import telemetry
from modelrollout.api.conditions import ConditionStatus, find_condition, set_condition
from modelrollout.api.status import ResourceStatus
from modelrollout.core.actions import ACTION_ANNOTATION
from modelrollout.core.decisions import Event
from modelrollout.engine.context import Context
from modelrollout.engine.queue import Priority
from modelrollout.engine.resources import ApiResources, Resources
from modelrollout.engine.tickwrites import TickWrites
from modelrollout.engine.writing import MESSAGE_LIMIT, post_outbox, record
from modelrollout.kube.client import api_client, is_status

logger = logging.getLogger(__name__)

RECONCILED = "Reconciled"
"""The condition that says whether the last reconciliation ran through, and if not, what stopped it."""
INVALID_SPEC = "InvalidSpec"
_API_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid"}

SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=ResourceStatus)


@dataclass
class Tick:
    """One reconciliation of one resource: the clients, the body as last read, and the time."""

    context: Context
    api: client.ApiClient
    """For the adapters that converge derived objects and routes (``kube/``, ``routing/``)."""
    resources: Resources
    """For the engine's own calls (its resources, their Events, what they name)."""
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

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.meta.get("annotations") or {})


@dataclass
class KindWork:
    """Base of a kind's per-tick work (its observe, decide, record, act): the tick's facts by name."""

    tick: Tick

    @property
    def api(self) -> client.ApiClient:
        return self.tick.api

    @property
    def namespace(self) -> str:
        return self.tick.namespace

    @property
    def name(self) -> str:
        return self.tick.name

    @property
    def now(self) -> datetime:
        return self.tick.now

    @property
    def generation(self) -> int:
        return self.tick.generation


class Kind(Protocol[SpecT, StatusT]):
    """What one kind brings to the loop: its models, when it is quiet, and its own work."""

    name: str
    """The controller's name in telemetry and bookkeeping (``modeldeployment``)."""
    plural: str
    spec_model: type[SpecT]
    status_model: type[StatusT]

    def at_rest(self, spec: Mapping[str, Any], status: StatusT, now: datetime) -> bool:
        """Nothing of the kind's own life cycle is due (the loop checks generation, actions and the outbox)."""
        ...

    def active(self, spec: Mapping[str, Any], status: StatusT) -> bool:
        """In a part of its life cycle where work comes due with time: looked at every ``tick_seconds``."""
        ...

    def resyncs(self, spec: Mapping[str, Any], status: StatusT) -> bool:
        """Re-verified every ``resync_seconds`` while nothing else brings it up: what no watch tells of (a
        route someone edited), or a wait that only a watch event ends, in case that event was lost."""
        ...

    def priority(self, body: Mapping[str, Any]) -> Priority:
        """Where it goes in the work queue: a rollback to carry out before the rest."""
        ...

    def reconcile(self, tick: Tick, spec: SpecT, status: StatusT) -> StatusT:
        """Observe, decide, record, act; returns the status as recorded."""
        ...


class Reconciler(Generic[SpecT, StatusT]):
    """Runs :class:`Kind` ticks: the loop above, the back-off, and the ``Reconciled`` condition."""

    def __init__(
        self,
        kind: Kind[SpecT, StatusT],
        context: Context,
        *,
        api: Callable[[], client.ApiClient] = api_client,
        resources: Callable[[client.ApiClient], Resources] = ApiResources,
    ) -> None:
        self.kind = kind
        self.context = context
        self._api = api
        self._resources = resources

    def tick(
        self, body: Mapping[str, Any], *, now: datetime | None = None, force: bool = False, fresh: bool = False
    ) -> StatusT | None:
        """One reconciliation of ``body`` (the watch's copy); never raises. Returns the status recorded,
        or None when the resource was quiet or the tick failed. ``force`` skips the quiet check (an
        object it owns changed); ``fresh`` says ``body`` holds our own last write, so it is not read again."""
        api = self._api()
        writes = TickWrites(self._resources(api), self.context.freshness, self.context.clearings)
        tick = Tick(self.context, api, writes, dict(body), now or datetime.now(UTC))
        key = (self.kind.name, tick.namespace, tick.name)
        if self.context.backing_off(*key, tick.generation):
            return None
        try:
            if not force and self._quiet(tick, writes):
                writes.send_due(self.kind.plural, tick.namespace, tick.name)
                return None
            status = self._run(tick, writes, fresh=fresh)
            writes.send_due(self.kind.plural, tick.namespace, tick.name)
        except Exception as error:  # the point: no error escapes a tick
            delay = self.context.failed(*key, tick.generation)
            reason, message = describe(error)
            if reason == "InternalError":
                logger.exception("%s/%s: reconciliation failed, retrying in %.0fs", tick.namespace, tick.name, delay)
            else:
                logger.warning("%s/%s: %s (retrying in %.0fs)", tick.namespace, tick.name, message, delay)
            self._set_reconciled(tick, writes, "False", reason, message)
            return None
        # The memory of failures is this process's; after a restart, the status itself tells.
        if self.context.recovered(*key) or _failure_recorded(status):
            self._set_reconciled(tick, writes, "True", RECONCILED, "")
        return status

    def _quiet(self, tick: Tick, writes: TickWrites) -> bool:
        cached = self._recorded(writes, tick.body)
        if cached.observed_generation != tick.generation or ACTION_ANNOTATION in tick.annotations:
            return False
        if cached.pending_events:  # Events recorded before a crash: posted before anything else
            return False
        spec = dict(tick.body.get("spec") or {})
        every = self.context.settings.resync_seconds
        if self.kind.resyncs(spec, cached) and self.context.due(self.kind.name, tick.namespace, tick.name, every):
            return False
        return self.kind.at_rest(spec, cached, tick.now)

    def _recorded(self, writes: TickWrites, body: Mapping[str, Any]) -> StatusT:
        """The status ``body`` records, less the outbox's Events this process has posted and not yet cleared."""
        return writes.unposted(self.kind.plural, body, self.status_of(body))

    def wake_in(self, body: Mapping[str, Any], status: StatusT | None) -> float | None:
        """Seconds until this resource should be looked at again without any change to it; None: never.

        A failed tick is retried after its back-off, an active one a ``tick_seconds`` later, one at rest
        only for its periodic re-verification, if its kind does one.
        """
        meta = body["metadata"]
        retry = self.context.retry_in(self.kind.name, meta["namespace"], meta["name"])
        if retry is not None:
            return retry
        current = status if status is not None else self.status_of(body)
        settings = self.context.settings
        if self.active(body, current):
            return settings.tick_seconds
        return settings.resync_seconds if self.kind.resyncs(dict(body.get("spec") or {}), current) else None

    def active(self, body: Mapping[str, Any], status: StatusT | None) -> bool:
        """Whether the resource is looked at every ``tick_seconds`` (a rollout in its steps, say)."""
        current = status if status is not None else self.status_of(body)
        return self.kind.active(dict(body.get("spec") or {}), current)

    def status_of(self, body: Mapping[str, Any]) -> StatusT:
        """The status ``body`` holds, parsed (once, by a caller that asks both :meth:`wake_in` and :meth:`active`)."""
        return parse_status(self.kind.status_model, body.get("status"))

    def _run(self, tick: Tick, writes: TickWrites, *, fresh: bool) -> StatusT:
        started = time.monotonic()
        kind = self.kind
        if fresh:  # a copy: the tick must not change the store's
            tick.body = copy.deepcopy(tick.body)
        else:
            tick.body = tick.resources.get(kind.plural, tick.namespace, tick.name)
        status = post_outbox(tick.resources, kind.plural, tick.body, self._recorded(writes, tick.body))
        try:
            spec = kind.spec_model.model_validate(tick.body.get("spec") or {})
        except ValidationError as error:
            self.context.synced(kind.name, tick.namespace, tick.name)  # nothing to re-verify until it changes
            return self._invalid_spec(tick, status, error)
        status = self._spec_valid(tick, status)
        status = kind.reconcile(tick, spec, status)
        self.context.synced(kind.name, tick.namespace, tick.name)
        telemetry.reconcile_seconds.labels(kind.name).observe(time.monotonic() - started)
        return status

    def _invalid_spec(self, tick: Tick, status: StatusT, error: ValidationError) -> StatusT:
        """A spec the schema let through but the rules reject: say so once, and change nothing else.

        The generation is recorded as observed, so the resource costs nothing more until its spec changes.
        """
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors())
        message = message[:MESSAGE_LIMIT]
        existing = find_condition(status.conditions, INVALID_SPEC)
        if existing is not None and existing.status == "True" and existing.message == message:
            return status
        updated = _with_condition(status, tick, INVALID_SPEC, "True", reason="ValidationFailed", message=message)
        # Acted on, as far as it can be: the resource is quiet until its spec changes again.
        updated = updated.model_copy(update={"observed_generation": tick.generation})
        told = Event("Warning", INVALID_SPEC, message)
        return record(tick.resources, self.kind.plural, tick.body, status, updated, events=(told,), now=tick.now)

    def _spec_valid(self, tick: Tick, status: StatusT) -> StatusT:
        invalid = find_condition(status.conditions, INVALID_SPEC)
        if invalid is None or invalid.status != "True":
            return status
        updated = _with_condition(status, tick, INVALID_SPEC, "False", reason="Valid", message="")
        return record(tick.resources, self.kind.plural, tick.body, status, updated, now=tick.now)

    def _set_reconciled(
        self, tick: Tick, writes: TickWrites, value: ConditionStatus, reason: str, message: str
    ) -> None:
        """Write the Reconciled condition on the freshly read status; a failure to do so is only logged."""
        plural = self.kind.plural
        try:
            fresh = writes.get(plural, tick.namespace, tick.name)
            status = self._recorded(writes, fresh)
            existing = find_condition(status.conditions, RECONCILED)
            if existing is None and value == "True":
                return
            if existing is not None and (existing.status, existing.reason, existing.message) == (
                value,
                reason,
                message,
            ):
                return
            updated = _with_condition(status, tick, RECONCILED, value, reason=reason, message=message)
            told = (Event("Warning", reason, message),) if value == "False" else ()
            record(writes, plural, fresh, status, updated, events=told, now=tick.now)
        except Exception as error:  # reporting must not raise either
            if not is_status(error, 404):  # a resource deleted meanwhile has nothing left to report on
                logger.error("%s/%s: cannot record the outcome: %s", tick.namespace, tick.name, describe(error)[1])


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


def parse_status(model: type[StatusT], raw: Mapping[str, Any] | None) -> StatusT:
    """The status as the model reads it; an unreadable one (an older schema, a hand edit) starts afresh
    rather than stopping the controller."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError:
        logger.warning("unreadable %s, starting from an empty one: %s", model.__name__, raw)
        return model()


def _with_condition(
    status: StatusT, tick: Tick, type_: str, value: ConditionStatus, *, reason: str, message: str
) -> StatusT:
    conditions = set_condition(
        status.conditions,
        type_,
        value,
        reason=reason,
        message=message,
        now=tick.now,
        generation=tick.generation,
    )
    return status.model_copy(update={"conditions": conditions})


def _failure_recorded(status: StatusT | None) -> bool:
    if status is None:
        return False
    condition = find_condition(status.conditions, RECONCILED)
    return condition is not None and condition.status == "False"


class NoDiffBaseStorage(kopf.DiffBaseStorage):
    """kopf's diff-base that remembers nothing: our controllers decide from status, never from kopf's diff.

    kopf's default keeps the whole spec in the ``last-handled-configuration`` annotation; annotations are
    limited to 256 KiB in total, so a big spec made every patch of kopf's fail and the object was throttled
    for good. Here every object's essence, stored and current, is the same empty one: every event is a
    no-op for kopf's change detection (we register no create/update handlers), nothing is written, and no
    event costs the two deep copies of the whole body that kopf's own essence takes (each status write of
    ours comes back as a watch event, so a burst of canaries made thousands of them).
    """

    def build(self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None) -> kopf.BodyEssence:
        del body, extra_fields
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        del body
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        del body, patch, essence
