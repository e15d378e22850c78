#!/usr/bin/env python3
"""Build (once) and cache Argo Rollouts' controller, for the side-by-side benchmark only.

Why a wrapper module: argo-rollouts' go.mod carries ``replace`` lines (every k8s.io staging
module pinned to v0.34.x), so ``go install .../cmd/rollouts-controller@v1.10.2`` refuses it.
The wrapper module in this folder requires argo-rollouts at the pinned version and copies
those replace lines, read by ``pin`` from the go.mod the module proxy serves. No Argo code is
committed here: the module comes from the Go module proxy, checksum-verified.

Why GOTOOLCHAIN=auto: v1.10.2's go.mod asks for Go 1.26.10; the go command fetches that
toolchain from the module proxy when the installed one is older (the rest of the repository
builds with GOTOOLCHAIN=local).

One build-time change, in a throw-away copy (the module cache stays untouched, and ``go build
-overlay`` may not replace files there): the controller binds its metrics and healthz servers to
``0.0.0.0`` (a constant in ``controller/controller.go``, no flag); the build copies the module to
a temporary folder, binds them to 127.0.0.1 like every other process the tests start, and builds
the wrapper with a ``replace`` to that copy.

Cache: ``${MODELROLLOUT_CACHE:-~/.cache/modelrollout}/peers/argo-rollouts/<version>/``
with ``bin/rollouts-controller`` and ``crds/*.yaml`` (the module's ``manifests/crds``), built
into a temporary sibling folder and renamed into place with a ``.complete`` stamp.

Subcommands: ``pin`` (regenerate go.mod/go.sum after a version bump), ``build`` (idempotent,
prints the cache folder), ``path`` (prints the cache folder, exit 1 when not built).
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULE = "github.com/argoproj/argo-rollouts"
VERSION = "v1.10.2"
COMMAND = f"{MODULE}/cmd/rollouts-controller"
BINARY = "rollouts-controller"
WRAPPER_MODULE = "modelrollout.dev/hack/peers/argo-rollouts"
LISTEN_FILE = "controller/controller.go"
LISTEN_ALL = 'listenAddr                         = "0.0.0.0:%d"'
LISTEN_LOOPBACK = 'listenAddr                         = "127.0.0.1:%d"'


class BuildError(RuntimeError):
    """A build step failed; the message carries the log's tail."""


def cache_root() -> Path:
    """Same rule as hack/localcluster: ``MODELROLLOUT_CACHE`` or ``~/.cache/modelrollout``."""
    env = os.environ.get("MODELROLLOUT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelrollout"


def target_dir(version: str = VERSION) -> Path:
    """Where one version's binary and CRDs live."""
    return cache_root() / "peers" / "argo-rollouts" / version


def _log(message: str) -> None:
    print(f"[peers/argo-rollouts] {message}", file=sys.stderr, flush=True)


def _go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "auto", "GOWORK": "off"}


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError("Go is not installed; Go >= 1.26 is needed once to build Argo Rollouts' controller")
    return go


def _run_logged(cmd: list[str], log: Path, cwd: Path = HERE) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ (cd {cwd} && {' '.join(cmd)})\n")
        out.flush()
        result = subprocess.run(cmd, cwd=cwd, env=_go_env(), stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise BuildError(f"{' '.join(cmd[:4])} ... failed; log {log}:\n{tail}")


def _download(module_at_version: str) -> dict[str, str]:
    """``go mod download -json``: the module's folder and the go.mod the proxy serves."""
    out = subprocess.run(
        [_go(), "mod", "download", "-json", module_at_version],
        cwd=tempfile.gettempdir(),
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    info: dict[str, str] = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in info:
        raise BuildError(f"go mod download {module_at_version} failed: {info.get('Error') or out.stderr}")
    return info


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """Build into a temporary sibling and rename it into place only when complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def pin(version: str = VERSION) -> None:
    """Rewrite go.mod from the proxy's go.mod (go line, replace block), then ``go mod tidy``."""
    upstream = Path(_download(f"{MODULE}@{version}")["GoMod"]).read_text()
    go_line = re.search(r"^go\s+(\S+)", upstream, re.MULTILINE)
    replaces = re.search(r"^replace \(\n(.*?)^\)", upstream, re.MULTILINE | re.DOTALL)
    single = re.findall(r"^replace (\S+ => .+)$", upstream, re.MULTILINE)
    lines = (replaces.group(1).splitlines() if replaces else []) + [f"\t{r}" for r in single]
    if go_line is None:
        raise BuildError(f"no go line in {MODULE}@{version}'s go.mod")
    text = (
        "// Wrapper module: builds Argo Rollouts' controller at the pinned release for bench/bench_peers.py.\n"
        "// Generated by `build.py pin` (replace lines copied from the upstream go.mod); do not edit by hand.\n"
        f"module {WRAPPER_MODULE}\n\ngo {go_line.group(1)}\n\nrequire {MODULE} {version}\n\ntool {COMMAND}\n\n"
        "replace (\n" + "".join(f"{line.rstrip()}\n" for line in lines if line.strip()) + ")\n"
    )
    (HERE / "go.mod").write_text(text)
    (HERE / "go.sum").unlink(missing_ok=True)
    _log("go mod tidy (downloads the dependency graph once)")
    _run_logged([_go(), "mod", "tidy"], cache_root() / "logs" / f"argo-rollouts-{version}-pin.log")
    _log("commit hack/peers/argo-rollouts/go.{mod,sum}")


def _check_wrapper(version: str) -> None:
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(MODULE)}\s+(v\S+)", (HERE / "go.mod").read_text(), re.MULTILINE)
    if found is None or found.group(1) != version:
        raise BuildError(f"{HERE}/go.mod does not require {MODULE} {version}: run `build.py pin`")


def _patched_wrapper(module_dir: Path, work: Path) -> Path:
    """A copy of the wrapper whose argo-rollouts is a local copy with metrics/healthz on loopback."""
    source = work / "argo-rollouts"
    shutil.copytree(module_dir, source)
    listen = source / LISTEN_FILE
    text = listen.read_text()
    if LISTEN_ALL not in text:
        raise BuildError(f"{LISTEN_FILE} no longer has {LISTEN_ALL!r}: update {__file__}")
    for path in [source, *source.rglob("*")]:  # the module cache's files are read-only
        path.chmod(0o755 if path.is_dir() else 0o644)
    listen.write_text(text.replace(LISTEN_ALL, LISTEN_LOOPBACK))
    wrapper = work / "wrapper"
    wrapper.mkdir()
    shutil.copyfile(HERE / "go.sum", wrapper / "go.sum")
    go_mod = (HERE / "go.mod").read_text()
    (wrapper / "go.mod").write_text(f"{go_mod}\nreplace {MODULE} => {source}\n")
    return wrapper


def build(version: str = VERSION) -> Path:
    """Build whatever is missing; quick when cached. Returns the cache folder."""
    final = target_dir(version)
    if (final / ".complete").exists():
        return final
    _check_wrapper(version)
    log = cache_root() / "logs" / f"argo-rollouts-{version}.log"
    with _lock(cache_root() / ".peers-build.lock"):
        if (final / ".complete").exists():
            return final
        _log(f"building Argo Rollouts {version} controller (once, several minutes on two cores; log {log})")
        started = time.monotonic()
        module_dir = Path(_download(f"{MODULE}@{version}")["Dir"])
        with _staged(final) as out, tempfile.TemporaryDirectory(prefix="argo-rollouts-build-") as work:
            wrapper = _patched_wrapper(module_dir, Path(work))
            ldflags = f"-s -w -X {MODULE}/utils/version.version={version.removeprefix('v')}"
            cmd = ["nice", "-n", "10", _go(), "build", "-p", "2", "-trimpath", "-ldflags", ldflags]
            cmd += ["-o", str(out / "bin" / BINARY), COMMAND]
            (out / "bin").mkdir()
            _run_logged(cmd, log, cwd=wrapper)
            (out / "crds").mkdir()
            for path in sorted((module_dir / "manifests" / "crds").glob("*-crd.yaml")):
                shutil.copyfile(path, out / "crds" / path.name)
        _log(f"built in {time.monotonic() - started:.0f}s into {final}")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("pin", "build", "path"))
    args = parser.parse_args(argv)
    try:
        if args.command == "pin":
            pin()
        elif args.command == "build":
            print(build())
        else:
            if not (target_dir() / ".complete").exists():
                print("not built: run `python hack/peers/argo-rollouts/build.py build`", file=sys.stderr)
                return 1
            print(target_dir())
    except BuildError as error:
        print(f"peers/argo-rollouts: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
