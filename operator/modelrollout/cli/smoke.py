"""``modelrollout smoke``: the built-in smoke checks, as run by a canary's smoke Job.

Exit codes: 0 every check passed, 1 a check failed, 2 the input was unusable.
The failure reason also goes to the termination log, where the operator reads
it back from the pod's terminated state.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from modelrollout.smoke import SmokeConfig, load_golden, run_checks

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="run the built-in smoke checks against a model server",
        description="The checks a built-in smoke-test Job runs before a canary gets traffic: the model loads, "
        "golden inputs give the expected outputs, outputs have the expected shape and range, and the p95 "
        "latency is within budget. Exit status 0 when every check passes, 1 otherwise.",
    )
    parser.add_argument("--url", required=True, help="base URL of the model server, e.g. http://model.ns:8080")
    parser.add_argument("--golden", type=Path, help='JSON {"instances": [...], "expected": [...], "tolerance": t}')
    parser.add_argument("--expect-shape", type=int, help="width of each prediction (default: one scalar)")
    parser.add_argument("--min", type=float, dest="min_value", help="lowest acceptable prediction")
    parser.add_argument("--max", type=float, dest="max_value", help="highest acceptable prediction")
    parser.add_argument("--latency-budget-ms", type=float, help="p95 budget for single-instance requests")
    parser.add_argument("--latency-requests", type=int, default=20, help="requests timed for the p95")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the model to load")
    parser.add_argument("--request-timeout", type=float, default=10.0, help="seconds per HTTP request")
    parser.add_argument(
        "--health-path",
        default="/healthz",
        metavar="PATH",
        help="readiness path polled until the model loads (default %(default)s)",
    )
    parser.add_argument(
        "--predict-path",
        default="/predict",
        metavar="PATH",
        help='prediction path, POSTed {"instances": [...]} (default %(default)s)',
    )
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="report format on stdout (default %(default)s)"
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=DEFAULT_TERMINATION_LOG,
        help="where to write the verdict for the pod status (ignored if not writable)",
    )
    parser.set_defaults(handler=smoke_command)


def smoke_command(args: argparse.Namespace) -> int:
    try:
        config = SmokeConfig(
            golden=None if args.golden is None else load_golden(args.golden),
            expect_shape=args.expect_shape,
            min_value=args.min_value,
            max_value=args.max_value,
            latency_budget_ms=args.latency_budget_ms,
            latency_requests=args.latency_requests,
            load_timeout_seconds=args.timeout,
            request_timeout_seconds=args.request_timeout,
            health_path=args.health_path,
            predict_path=args.predict_path,
        )
        report = run_checks(args.url, config)
    except (OSError, ValueError) as error:
        message = f"smoke: bad input: {error}"
        print(message, file=sys.stderr)
        _write_termination_log(args.termination_log, message)
        return 2

    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.to_text())
    _write_termination_log(args.termination_log, report.summary())
    if not report.passed:
        print(report.summary(), file=sys.stderr)
    return 0 if report.passed else 1


def _write_termination_log(path: Path, message: str) -> None:
    """Best effort, and never creates the default path: outside a pod /dev is no place for files."""
    if path == DEFAULT_TERMINATION_LOG and not path.exists():
        return
    with contextlib.suppress(OSError):
        path.write_text(message, encoding="utf-8")
