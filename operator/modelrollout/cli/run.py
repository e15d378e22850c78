"""``modelrollout run``: the operator process (what the Deployment's container runs)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from modelrollout.config import Settings


def run(args: argparse.Namespace) -> int:
    from modelrollout.engine.operator import run as run_operator  # noqa: PLC0415 - keep CLI start-up light

    settings = Settings.from_env()
    if args.namespace:
        settings = dataclasses.replace(settings, namespaces=tuple(args.namespace))
    if args.standalone:
        settings = dataclasses.replace(settings, peering=None)
    if args.liveness:
        settings = dataclasses.replace(settings, liveness_endpoint=args.liveness)
    run_operator(settings)
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("run", help="run the operator (settings from MODELROLLOUT_* environment variables)")
    parser.add_argument("--namespace", "-n", action="append", help="watch only this namespace (repeatable)")
    parser.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)")
    parser.add_argument("--liveness", help="kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--standalone", action="store_true", help="act alone, without kopf peering")
    parser.set_defaults(handler=run)
