"""User-facing commands.

Each module in this package that defines ``register(subparsers)`` contributes
one or more subcommands; ``register`` adds its parser and sets
``handler=callable(args) -> int`` as a default, so the exit code is explicit.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Any, Protocol


class _Registrar(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[Any]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelrollout",
        description="Roll ML models out safely: operator, rollout control, drift and experiment analysis.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module: Any = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser
