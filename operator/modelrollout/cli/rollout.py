"""Rollout control: ``status``, ``promote``, ``abort``, ``retry``, ``pause``, ``resume``, ``history``, ``undo``.

Installed as ``modelrollout`` and as the kubectl plugin ``kubectl-modelrollout``.
The one-off actions (promote, abort, retry) are requests: two annotations the
operator consumes exactly once (:mod:`modelrollout.core.actions`), so they
never touch the spec and GitOps tools see nothing to sync. ``pause``,
``resume`` and ``undo`` do edit the spec, and say so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from modelrollout.cli import _kube, _render, _undo
from modelrollout.cli._kube import CommandError
from modelrollout.core.actions import ACTION_ANNOTATION, ACTION_ID_ANNOTATION, ActionName
from modelrollout.core.revisions import version_id

Handler = Callable[[argparse.Namespace], int]
CLEAR_SCREEN = "\x1b[H\x1b[2J"
WATCH_INTERVAL_SECONDS = 1.0

ACTION_EFFECTS: dict[ActionName, str] = {
    "promote": "the canary moves on to its next step (a manual gate opens; analysis is not waited for)",
    "promote-full": "the canary becomes stable at once, skipping the remaining steps",
    "abort": "all traffic returns to the stable revision; the spec is left as it is",
    "retry": "the aborted revision starts over, from its smoke tests when it has them",
}
GITOPS_NOTE = "this edits the spec: with GitOps, change it in Git instead, or the next sync reverts it"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    status = _command(subparsers, "status", "show where a rollout is: revisions, steps, smoke test, analysis", _status)
    status.add_argument("-w", "--watch", action="store_true", help="re-render every second until Ctrl-C")
    _format_argument(status)

    promote = _command(subparsers, "promote", "move the canary to its next step (opens a manual gate)", _promote)
    promote.add_argument("--full", action="store_true", help="skip the remaining steps: make the canary stable now")
    _command(subparsers, "abort", "send all traffic back to the stable revision", _action_handler("abort"))
    _command(subparsers, "retry", "start an aborted or failed revision over", _action_handler("retry"))

    _command(subparsers, "pause", f"hold the rollout where it is (spec.paused=true); {GITOPS_NOTE}", _pause)
    _command(subparsers, "resume", f"let a paused rollout continue (spec.paused=false); {GITOPS_NOTE}", _resume)

    history = _command(subparsers, "history", "list the revisions with their outcomes and lineage", _history)
    _format_argument(history)

    undo = _command(
        subparsers,
        "undo",
        "roll back by restoring an earlier revision's model, template and port in the spec (the spec then "
        "differs from Git)",
        _undo_command,
    )
    undo.add_argument(
        "--to-revision",
        type=int,
        metavar="N",
        help="the revision to restore (default: the stable revision during a canary, else the previous one)",
    )
    undo.add_argument("--dry-run", action="store_true", help="print the JSON patch instead of applying it")


def _command(subparsers: argparse._SubParsersAction[Any], name: str, summary: str, handler: Handler) -> Any:
    parser = subparsers.add_parser(name, help=summary, description=summary[:1].upper() + summary[1:] + ".")
    parser.add_argument("name", metavar="NAME", help="the ModelDeployment")
    _kube.add_connection_arguments(parser)
    parser.set_defaults(handler=_reporting_errors(name, handler))
    return parser


def _format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--format", choices=("text", "json"), default="text", help="output format")


def _reporting_errors(command: str, handler: Handler) -> Handler:
    """Turn the errors a user can act on into one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CommandError, _undo.UndoError) as error:
            print(f"modelrollout {command}: {error}", file=sys.stderr)
            return 1

    return run


def _now() -> datetime:
    return datetime.now(UTC)


# --- status -----------------------------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    cluster = _kube.connect(args)
    render = _status_json if args.format == "json" else _render.render_status
    if not args.watch:
        print(render(cluster.get_model_deployment(args.name), _now()))
        return 0
    clear = sys.stdout.isatty() and args.format == "text"
    try:
        while True:
            frame = render(cluster.get_model_deployment(args.name), _now())
            print(CLEAR_SCREEN + frame if clear else frame, flush=True)
            if not clear and args.format == "text":
                print(flush=True)
            time.sleep(WATCH_INTERVAL_SECONDS)
    except KeyboardInterrupt:
        return 0


def _status_json(resource: Mapping[str, Any], now: datetime) -> str:
    """One compact line per frame, so ``--watch --format json`` is a stream of JSON lines."""
    return json.dumps(_render.status_view(resource, now), separators=(",", ":"))


# --- one-off actions --------------------------------------------------------------------------------------------


def _promote(args: argparse.Namespace) -> int:
    return _request(args, "promote-full" if args.full else "promote")


def _action_handler(action: ActionName) -> Handler:
    def run(args: argparse.Namespace) -> int:
        return _request(args, action)

    return run


def _request(args: argparse.Namespace, action: ActionName) -> int:
    cluster = _kube.connect(args)
    resource = cluster.get_model_deployment(args.name)
    action_id = uuid.uuid4().hex
    cluster.merge_patch(
        args.name, {"metadata": {"annotations": {ACTION_ANNOTATION: action, ACTION_ID_ANNOTATION: action_id}}}
    )
    print(f"{action} requested for modeldeployment/{args.name} in {cluster.namespace} (action id {action_id})")
    print(f"  {ACTION_EFFECTS[action]}")
    warning = ignored_because(action, resource.get("status") or {})
    if warning:
        print(f"warning: the operator will likely ignore it: {warning}", file=sys.stderr)
    return 0


def ignored_because(action: ActionName, status: Mapping[str, Any]) -> str | None:
    """Why the operator would ignore this action in the state status shows, or None.

    Only a hint: the operator decides on its own, fresher, state and reports an
    ``ActionIgnored`` Event when it declines.
    """
    aborted = bool(status.get("aborted"))
    smoke_state = (status.get("smokeTest") or {}).get("state")
    if not _render.is_canary(status):
        return "no canary in progress"
    if action == "retry":
        return None if aborted else "nothing was aborted or failed"
    if aborted:
        return "the canary was aborted or failed (retry it first)"
    if action == "promote" and status.get("currentStepIndex") is None:
        return "no traffic step in progress (smoke tests cannot be skipped)"
    if action == "promote-full" and smoke_state not in (None, "Passed"):
        return "the canary has not passed its smoke tests"
    return None


# --- spec edits -------------------------------------------------------------------------------------------------


def _pause(args: argparse.Namespace) -> int:
    return _set_paused(args, paused=True)


def _resume(args: argparse.Namespace) -> int:
    return _set_paused(args, paused=False)


def _set_paused(args: argparse.Namespace, *, paused: bool) -> int:
    cluster = _kube.connect(args)
    cluster.merge_patch(args.name, {"spec": {"paused": paused}})
    verb, effect = ("paused", "traffic holds where it is") if paused else ("resumed", "the rollout continues")
    print(f"modeldeployment/{args.name} {verb} (spec.paused={str(paused).lower()}): {effect}")
    print(f"note: {GITOPS_NOTE}", file=sys.stderr)
    return 0


def _history(args: argparse.Namespace) -> int:
    cluster = _kube.connect(args)
    resource = cluster.get_model_deployment(args.name)
    rows = _render.history_view(resource, cluster.controller_revisions(args.name))
    print(json.dumps(rows, indent=2) if args.format == "json" else _render.history_text(rows))
    return 0


def _undo_command(args: argparse.Namespace) -> int:
    cluster = _kube.connect(args)
    resource = cluster.get_model_deployment(args.name)
    revision = _undo.choose_revision(resource, cluster.controller_revisions(args.name), args.to_revision)
    number = _undo.revision_number(revision)
    label = _revision_label(revision)
    if _undo.is_current(resource, revision):
        print(f"modeldeployment/{args.name} already asks for revision {number} ({label}): nothing to undo")
        return 0
    operations = _undo.restore_operations(revision)
    if args.dry_run:
        print(json.dumps(operations, indent=2))
        return 0
    cluster.json_patch(args.name, operations)
    print(f"modeldeployment/{args.name} rolled back to revision {number} ({label})")
    print(
        "warning: spec.model, spec.template and spec.port now differ from Git: commit the same change "
        "(or revert the commit), or the next sync rolls forward again",
        file=sys.stderr,
    )
    return 0


def _revision_label(revision: Mapping[str, Any]) -> str:
    model = (revision.get("data") or {}).get("model") or {}
    vid = version_id(_undo.revision_number(revision), _undo.revision_hash(revision))
    return f"{vid}, model {model.get('version')}"
