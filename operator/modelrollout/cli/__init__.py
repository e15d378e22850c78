"""User-facing commands.

Each command module defines ``register(subparsers)``, which adds its parser and
sets ``handler=callable(args) -> int`` as a default, so the exit code is
explicit. The modules are listed here, in the order ``--help`` shows them: an
explicit list is greppable, type-checked, and does not import whatever file
happens to sit in the folder.
"""

from __future__ import annotations

import argparse
from importlib import metadata

from modelrollout.cli import analyze, crds, drift, experiment, reference, rollout, run, smoke

COMMANDS = (rollout, experiment, drift, reference, analyze, smoke, run, crds)
"""Every command module; rollout registers status, promote, abort, retry, pause, resume, history and undo."""


def version() -> str:
    """The installed distribution's version (the image's), or "unknown" in a source tree without metadata."""
    try:
        return metadata.version("modelrollout")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelrollout",
        description="Roll ML models out safely: operator, rollout control, drift and experiment analysis.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}", help="print the version")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser
