"""``modelrollout experiment report``: what an Experiment designed, measured and decided.

Reads the Experiment from the cluster (kubectl's configuration) or, with
``--file``, from a saved ``kubectl get experiment NAME -o yaml``, prints the
report, and with ``--html`` also writes a self-contained page with the effect
estimate and its confidence sequence over time. Exit status 0 on success,
1 when the Experiment cannot be read, 2 when it cannot be parsed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelrollout import GROUP, VERSION
from modelrollout.api import experiment as exp
from modelrollout.cli._kube import Cluster, CommandError, add_connection_arguments
from modelrollout.report import html_report, text_report


class ReadError(Exception):
    """The Experiment could not be read (exit status 1)."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("experiment", help="inspect Experiments (A/B and shadow tests of models)")
    commands = parser.add_subparsers(title="experiment commands", metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="print an Experiment's design, per-arm numbers, tests and decision",
        description="The design, per-arm numbers, intervals, p-values, SRM check and decision of an Experiment.",
    )
    report.add_argument("name", metavar="NAME", help="the Experiment")
    add_connection_arguments(report)
    report.add_argument("--file", metavar="FILE", help="read the Experiment from a YAML or JSON file instead")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report to FILE")
    report.set_defaults(handler=run_report)
    parser.set_defaults(handler=lambda _: _usage(parser))


def run_report(args: argparse.Namespace) -> int:
    try:
        body = read_file(args.file) if args.file else read_cluster(args.name, args)
    except (ReadError, CommandError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    try:
        spec = exp.ExperimentSpec.model_validate(body.get("spec") or {})
        status = exp.ExperimentStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        sys.stderr.write(f"error: not a valid Experiment: {error}\n")
        return 2
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name") or args.name)
    namespace = str(metadata.get("namespace") or args.namespace or "default")
    sys.stdout.write(text_report(name, namespace, spec, status))
    if args.html:
        Path(args.html).write_text(html_report(name, namespace, spec, status), encoding="utf-8")
        sys.stdout.write(f"\nHTML report written to {args.html}\n")
    return 0


def read_file(path: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ReadError(f"cannot read {path}: {error}") from error
    if not isinstance(loaded, dict) or loaded.get("kind") not in (None, exp.KIND):
        raise ReadError(f"{path} does not hold an Experiment")
    return loaded


def read_cluster(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The Experiment from the cluster, connecting as every other command does (kubeconfig, context namespace)."""
    from kubernetes import client  # noqa: PLC0415 - only the cluster path needs the client

    cluster = Cluster.from_args(args)
    args.namespace = cluster.namespace
    try:
        found: dict[str, Any] = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, exp.PLURAL, name
        )
    except client.ApiException as error:
        where = f"{cluster.namespace}/{name}"
        if error.status == 404:
            raise ReadError(f"experiment {where} not found") from error
        raise ReadError(f"cannot read experiment {where}: {error.status} {error.reason}") from error
    return found


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
