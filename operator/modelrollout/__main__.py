"""The ``modelrollout`` command: the operator itself and the user CLI.

Subcommands are the modules listed in :data:`modelrollout.cli.COMMANDS`: a new
command is one new module with a ``register`` function, added to that list.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from modelrollout.cli import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
