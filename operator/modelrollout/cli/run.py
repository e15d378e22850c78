"""``modelrollout run``: the operator process (what the Deployment's container runs)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Any

from modelrollout.config import Settings, SettingsError

DESCRIPTION = """\
Run the operator: watch ModelDeployments, DriftMonitors and Experiments and reconcile them.
Settings come from MODELROLLOUT_* environment variables (see docs/install.md); the options
below override the few that differ between a pod and a laptop."""


def run(args: argparse.Namespace) -> int:
    from modelrollout.engine.operator import run as run_operator  # noqa: PLC0415 - keep CLI start-up light

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"modelrollout run: {error}", file=sys.stderr)
        return 2
    if args.namespace:
        settings = dataclasses.replace(settings, namespaces=tuple(args.namespace))
    if args.standalone:
        settings = dataclasses.replace(settings, peering=None)
    if args.liveness:
        settings = dataclasses.replace(settings, liveness_endpoint=args.liveness)
    run_operator(_with_own_image(settings))
    return 0


def _with_own_image(settings: Settings) -> Settings:
    """In a pod, smoke Jobs run the operator's own image unless MODELROLLOUT_OPERATOR_IMAGE says otherwise.

    The pod is named by POD_ID and POD_NAMESPACE (downward API, as the manifests set them).
    """
    pod, namespace = os.environ.get("POD_ID"), os.environ.get("POD_NAMESPACE")
    if settings.operator_image_set or not pod or not namespace:
        return settings
    from modelrollout.kube import bootstrap  # noqa: PLC0415 - needs the Kubernetes client
    from modelrollout.kube.client import api_client  # noqa: PLC0415

    image = bootstrap.own_image(api_client(), namespace, pod)
    if image is None:
        logging.getLogger(__name__).warning(
            "no container named operator in pod %s; smoke Jobs use %s", pod, settings.operator_image
        )
        return settings
    return dataclasses.replace(settings, operator_image=image)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the operator (settings from MODELROLLOUT_* environment variables)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--namespace", "-n", action="append", metavar="NS", help="watch only this namespace or glob (repeatable)"
    )
    parser.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)")
    parser.add_argument("--liveness", metavar="URL", help="kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--standalone", action="store_true", help="act alone, without kopf peering")
    parser.set_defaults(handler=run)
