"""Where hack/tools/*.sh cache their binaries, for tests that need them but must not build them.

Why: building helm or kustomize takes minutes, so a test must not do it behind
the developer's back; but a test that silently skips when the tool is missing
hides a gap. Tests call :func:`require_tool`, which returns the cached binary
or fails with the one command that builds it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parents[1]


def cache_dir() -> Path:
    """The folder goinstall.sh installs into (same rule as the shell script)."""
    root = os.environ.get("MODELROLLOUT_CACHE") or str(Path.home() / ".cache" / "modelrollout")
    return Path(root) / "tools" / "bin"


def pinned(name: str) -> str:
    """The module@version a hack/tools/NAME.sh script pins, read from the script itself."""
    script = (TOOLS / f"{name}.sh").read_text()
    version = re.search(r'_VERSION="\$\{\w+_VERSION:-(v[^}]+)\}"', script)
    module = re.search(r'goinstall\.sh"\s+\S+\s+(\S+)\s', script)
    if version is None or module is None:
        raise ValueError(f"cannot read the pinned version from hack/tools/{name}.sh")
    return f"{module.group(1)}@{version.group(1)}"


def require_tool(name: str) -> Path:
    """The cached binary of hack/tools/NAME.sh at its pinned version; raises with the build command otherwise."""
    binary = cache_dir() / name
    stamp = cache_dir() / f".{name}.version"
    want = pinned(name)
    if not binary.exists() or not stamp.exists() or stamp.read_text().strip() != want:
        raise FileNotFoundError(
            f"{name} ({want}) is not in the tool cache {cache_dir()}: build it once with `bash hack/tools/{name}.sh`"
        )
    return binary
