"""``modelrollout reference``: build the training reference a DriftMonitor compares against."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelrollout.cli._files import InputError, Progress, read_csv_columns
from modelrollout.references import (
    DEFAULT_BINS,
    FloatArray,
    ModelInfo,
    build_reference,
    dumps_reference,
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
    build = commands.add_parser(
        "build",
        help="build a reference from a training CSV",
        description="Histograms of every feature of a training CSV (and, with --prediction-column, of the "
        "predictions and the quality baselines): the reference a DriftMonitor compares live data with.",
    )
    build.add_argument("--data", type=Path, required=True, metavar="CSV", help="training CSV with a header row")
    build.add_argument(
        "--bins", type=int, default=DEFAULT_BINS, metavar="N", help="bins per numeric feature (default %(default)s)"
    )
    build.add_argument(
        "--binning",
        choices=["quantile", "uniform"],
        default="quantile",
        help="quantile: bins of equal training counts (robust to skew); uniform: equal widths (default %(default)s)",
    )
    build.add_argument(
        "--prediction-column",
        metavar="COLUMN",
        help="column of in-sample predictions (becomes the prediction histogram)",
    )
    build.add_argument(
        "--target-column", metavar="COLUMN", help="column of realised targets (with predictions: quality baselines)"
    )
    build.add_argument(
        "--categorical", metavar="COLUMNS", default="", help="comma-separated columns to treat as categorical"
    )
    build.add_argument(
        "--exclude", action="append", default=[], metavar="COLUMN", help="column to leave out (repeatable)"
    )
    build.add_argument("--model-name", metavar="NAME", help="recorded in the reference's model section")
    build.add_argument("--model-version", metavar="VERSION", help="recorded in the reference's model section")
    build.add_argument("--name", metavar="NAME", help="ConfigMap name (required with --format configmap)")
    build.add_argument("--namespace", metavar="NS", help="ConfigMap namespace")
    build.add_argument(
        "--format",
        choices=["json", "configmap"],
        default="json",
        help="json: the reference document; configmap: a ConfigMap holding it, to kubectl apply (default %(default)s)",
    )
    build.add_argument("--output", type=Path, metavar="FILE", help="file to write (default: stdout)")
    build.set_defaults(handler=build_command)


def build_command(args: argparse.Namespace) -> int:
    if args.format == "configmap" and not args.name:
        print("modelrollout reference build: --format configmap needs --name", file=sys.stderr)
        return 2
    if args.bins < 1:
        print("modelrollout reference build: --bins must be at least 1", file=sys.stderr)
        return 2
    model = None
    if args.model_name or args.model_version:
        model = ModelInfo(name=args.model_name, version=args.model_version)
    try:
        categorical = [name.strip() for name in args.categorical.split(",") if name.strip()]
        read = read_csv_columns(args.data, categorical=categorical, progress=Progress())
        columns: dict[str, list[str] | FloatArray] = {
            name: column.labels if column.kind == "categorical" else column.values for name, column in read.items()
        }
        reference = build_reference(
            columns,
            bins=args.bins,
            binning=args.binning,
            prediction_column=args.prediction_column,
            target_column=args.target_column,
            exclude=args.exclude,
            model=model,
        )
    except (InputError, OSError, ValueError, ValidationError) as error:
        print(f"modelrollout reference build: {error}", file=sys.stderr)
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
