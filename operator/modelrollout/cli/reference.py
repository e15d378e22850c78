"""``modelrollout reference``: build the training reference a DriftMonitor compares against."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelrollout.references import (
    DEFAULT_BINS,
    ModelInfo,
    build_reference,
    dumps_reference,
    read_csv_columns,
    render_configmap,
)


class _BlockStyleDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, so the embedded JSON stays readable in the ConfigMap."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_BlockStyleDumper.add_representer(str, _represent_str)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("reference", help="build training references for drift monitoring")
    commands = parser.add_subparsers(title="reference commands", metavar="COMMAND", required=True)
    build = commands.add_parser("build", help="build a reference from a training CSV")
    build.add_argument("--data", type=Path, required=True, help="training CSV with a header row")
    build.add_argument("--bins", type=int, default=DEFAULT_BINS, help="bins per numeric feature (default 10)")
    build.add_argument("--binning", choices=["quantile", "uniform"], default="quantile")
    build.add_argument("--prediction-column", help="column of in-sample predictions (becomes the prediction histogram)")
    build.add_argument("--target-column", help="column of realised targets (with predictions: baselines)")
    build.add_argument("--exclude", action="append", default=[], metavar="COLUMN", help="column to leave out")
    build.add_argument("--model-name", help="recorded in the reference's model section")
    build.add_argument("--model-version", help="recorded in the reference's model section")
    build.add_argument("--name", help="ConfigMap name (required with --format configmap)")
    build.add_argument("--namespace", help="ConfigMap namespace")
    build.add_argument("--format", choices=["json", "configmap"], default="json")
    build.add_argument("--output", type=Path, help="file to write (default: stdout)")
    build.set_defaults(handler=build_command)


def build_command(args: argparse.Namespace) -> int:
    if args.format == "configmap" and not args.name:
        print("reference build: --format configmap needs --name", file=sys.stderr)
        return 2
    if args.bins < 1:
        print("reference build: --bins must be at least 1", file=sys.stderr)
        return 2
    model = None
    if args.model_name or args.model_version:
        model = ModelInfo(name=args.model_name, version=args.model_version)
    try:
        with args.data.open(encoding="utf-8", newline="") as stream:
            columns = read_csv_columns(stream)
        reference = build_reference(
            columns,
            bins=args.bins,
            binning=args.binning,
            prediction_column=args.prediction_column,
            target_column=args.target_column,
            exclude=args.exclude,
            model=model,
        )
    except (OSError, ValueError, ValidationError) as error:
        print(f"reference build: {error}", file=sys.stderr)
        return 2

    if args.format == "json":
        text = dumps_reference(reference)
    else:
        manifest = render_configmap(reference, name=args.name, namespace=args.namespace)
        text = yaml.dump(manifest, Dumper=_BlockStyleDumper, sort_keys=False)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
