"""Which revision ``undo`` restores, and the patch that restores it, as pure functions.

A ControllerRevision's ``data`` is the frozen model identity, pod template and
port of one revision: the exact fields the operator hashes. Writing those
three values back into the spec, whole, makes the spec hash to that revision
again, so the operator recognises it (stable again, or renumbered as the
newest revision) instead of seeing a near-copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelrollout.kube import naming

Resource = Mapping[str, Any]
RESTORED_FIELDS = ("model", "template", "port")


class UndoError(Exception):
    """There is nothing sensible to roll back to; the message says why."""


def revision_hash(revision: Resource) -> str:
    return str(((revision.get("metadata") or {}).get("labels") or {}).get(naming.REVISION_LABEL, ""))


def revision_number(revision: Resource) -> int:
    return int(revision.get("revision") or 0)


def choose_revision(resource: Resource, revisions: Sequence[Resource], to_revision: int | None) -> Resource:
    """The ControllerRevision to restore.

    Without ``--to-revision``: the stable revision while a canary is in
    progress (or was rolled back), since that is what serves; otherwise the
    revision before the current one, like ``kubectl rollout undo``.
    """
    if not revisions:
        raise UndoError("no revisions recorded yet: the operator has not rolled this resource out")
    if to_revision is not None:
        found = next((r for r in revisions if revision_number(r) == to_revision), None)
        if found is None:
            known = ", ".join(str(n) for n in sorted(revision_number(r) for r in revisions))
            raise UndoError(f"revision {to_revision} not found; kept revisions: {known}")
        return found
    status = resource.get("status") or {}
    current = (status.get("currentRevision") or {}).get("hash")
    stable = (status.get("stableRevision") or {}).get("hash")
    if current is None:
        raise UndoError("the operator has not reported a current revision yet; pass --to-revision")
    if stable is not None and stable != current:
        return _by_hash(revisions, stable)
    current_number = revision_number(_by_hash(revisions, current))
    earlier = [r for r in revisions if revision_number(r) < current_number]
    if not earlier:
        raise UndoError(f"revision {current_number} is the oldest kept revision: nothing earlier to roll back to")
    return max(earlier, key=revision_number)


def is_current(resource: Resource, revision: Resource) -> bool:
    """Whether the spec already asks for this revision (as far as the operator has seen it)."""
    metadata = resource.get("metadata") or {}
    status = resource.get("status") or {}
    current = (status.get("currentRevision") or {}).get("hash")
    up_to_date = status.get("observedGeneration") == metadata.get("generation")
    return up_to_date and current == revision_hash(revision)


def restore_operations(revision: Resource) -> list[dict[str, Any]]:
    """A JSON patch setting spec.model, spec.template and spec.port to the revision's values, whole.

    A merge patch would merge the old template into the current one, keeping
    any container, env var or label added since; ``add`` replaces each value
    outright (RFC 6902: ``add`` on an existing member replaces it, and unlike
    ``replace`` it does not fail if a defaulted field such as port is absent).
    """
    data = revision.get("data") or {}
    missing = [key for key in RESTORED_FIELDS if key not in data]
    if missing:
        raise UndoError(f"ControllerRevision {_name(revision)} lacks {', '.join(missing)}: it cannot be restored")
    return [{"op": "add", "path": f"/spec/{key}", "value": data[key]} for key in RESTORED_FIELDS]


def _by_hash(revisions: Sequence[Resource], content_hash: str) -> Resource:
    found = next((r for r in revisions if revision_hash(r) == content_hash), None)
    if found is None:
        raise UndoError(f"no ControllerRevision for revision hash {content_hash} (pruned?); pass --to-revision")
    return found


def _name(revision: Resource) -> str:
    return str((revision.get("metadata") or {}).get("name", "?"))
