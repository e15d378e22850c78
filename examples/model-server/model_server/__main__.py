"""``python -m model_server``: serve the sample model on one port.

On start it prints one JSON line ``{"event": "listening", "host", "port"}``
to stdout, so a harness can pass ``--port 0`` and learn the port the kernel
chose instead of racing for a free one.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import numpy as np

from model_server import MODEL_NAME, MODEL_VERSION
from model_server.app import ModelHTTPServer, ServerState
from model_server.faults import Faults
from model_server.metrics import ModelMetrics
from model_server.reference import load_reference


def _shift(text: str) -> tuple[str, float]:
    feature, _, amount = text.partition("=")
    if not feature or not amount:
        raise argparse.ArgumentTypeError(f"expected FEATURE=AMOUNT, got {text!r}")
    return feature, float(amount)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (the container uses 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--revision", required=True, help="revision reported by /model")
    parser.add_argument("--reference", type=Path, required=True, help="training reference JSON")
    parser.add_argument("--model-name", default=None, help=f"default: reference model.name or {MODEL_NAME}")
    parser.add_argument("--model-version", default=None, help=f"default: reference model.version or {MODEL_VERSION}")
    parser.add_argument("--load-seconds", type=float, default=0.0, help="report 'loading' for this long")
    parser.add_argument("--seed", type=int, default=None, help="seed for injected randomness")
    parser.add_argument("--no-admin", dest="admin", action="store_false", help="disable /admin/fault")
    faults = parser.add_argument_group("faults (also settable at runtime with POST /admin/fault)")
    faults.add_argument("--latency-ms", type=float, default=0.0)
    faults.add_argument("--error-rate", type=float, default=0.0)
    faults.add_argument("--shift", type=_shift, action="append", default=[], metavar="FEATURE=AMOUNT")
    faults.add_argument("--degrade", type=float, default=0.0)
    faults.add_argument("--fail-load", action="store_true")
    faults.add_argument("--out-of-range", action="store_true")
    faults.add_argument("--nan-output", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        reference = load_reference(args.reference)
        faults = Faults().updated(
            {
                "latency_ms": args.latency_ms,
                "error_rate": args.error_rate,
                "shift": dict(args.shift),
                "degrade": args.degrade,
                "fail_load": args.fail_load,
                "out_of_range": args.out_of_range,
                "nan_output": args.nan_output,
            }
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"model_server: cannot start: {error!r}", file=sys.stderr)
        return 2

    name = args.model_name or reference.model.get("name") or MODEL_NAME
    version = args.model_version or reference.model.get("version") or MODEL_VERSION
    state = ServerState(
        name=name,
        version=version,
        revision=args.revision,
        reference=reference,
        metrics=ModelMetrics(reference, name=name, version=version),
        faults=faults,
        admin=args.admin,
        rng=np.random.default_rng(args.seed),
    )
    server = ModelHTTPServer((args.host, args.port), state)
    host, port = server.server_address[:2]
    print(json.dumps({"event": "listening", "host": host, "port": port}), flush=True)

    loader = threading.Timer(args.load_seconds, state.loaded.set)
    loader.daemon = True
    loader.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
