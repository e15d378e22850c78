"""Start and stop sample model servers as local processes on free loopback ports.

Each server is told ``--port 0`` and reports the port the kernel gave it, so
parallel tests never race for a port. Processes are killed when their context
ends and, as a last resort, when the interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from e2e.dataplane import DEFAULT_REFERENCE, MODEL_SERVER_DIR
from e2e.dataplane._http import get_text, request_json
from tests.support.waiting import wait_for

Role = Literal["stable", "canary", "champion", "challenger", "shadow"]

DEFAULT_MODEL = "next-day-returns"
STARTUP_TIMEOUT_SECONDS = 10.0

_FLAG_FAULTS = {"fail_load": "--fail-load", "out_of_range": "--out-of-range", "nan_output": "--nan-output"}


@dataclass(frozen=True)
class ServerSpec:
    revision: str
    role: Role = "stable"
    model: str = DEFAULT_MODEL
    version: str | None = None
    faults: Mapping[str, Any] = field(default_factory=dict)
    """Start-up faults, same keys as ``POST /admin/fault`` (``fail_load`` can only be useful here)."""
    load_seconds: float = 0.0
    reference: Path = DEFAULT_REFERENCE
    seed: int | None = None
    extra_args: tuple[str, ...] = ()
    """Model-server flags as a pod template's container ``args`` would give them."""

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", "0"]
        command += ["--revision", self.revision, "--reference", str(self.reference), "--model-name", self.model]
        command += ["--load-seconds", str(self.load_seconds)]
        if self.version:
            command += ["--model-version", self.version]
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        for name, value in self.faults.items():
            if name in _FLAG_FAULTS:
                command += [_FLAG_FAULTS[name]] if value else []
            elif name == "shift":
                command += [arg for feature, amount in value.items() for arg in ("--shift", f"{feature}={amount}")]
            else:
                command += ["--" + name.replace("_", "-"), str(value)]
        return [*command, *self.extra_args]


@dataclass(eq=False)
class ServerHandle:
    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def revision(self) -> str:
        return self.spec.revision

    @property
    def role(self) -> str:
        return self.spec.role

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Degrade (or, with None values, repair) the running server; returns the faults now active."""
        status, faults = request_json("POST", self.url + "/admin/fault", changes)
        if status != 200:
            raise ValueError(f"{self.url} refused faults {changes}: {faults}")
        result: dict[str, Any] = faults
        return result

    def clear_faults(self) -> None:
        request_json("DELETE", self.url + "/admin/fault")

    def metrics_text(self) -> str:
        return get_text(self.url + "/metrics")[1]

    def logs(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.log):
            if stream is not None:
                stream.close()
        _live.discard(self)


_live: set[ServerHandle] = set()


@atexit.register
def _stop_leftovers() -> None:
    for handle in list(_live):
        handle.stop()


def _read_port(process: subprocess.Popen[bytes], deadline: float) -> int:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            raise TimeoutError("model server did not report its port in time")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"model server exited with {process.wait()} before listening")
    port: int = json.loads(line)["port"]
    return port


def _wait_ready(handle: ServerHandle, deadline: float, healthy: bool) -> None:
    """Until /healthz answers (200 if ``healthy``): a fail_load server is only expected to answer."""

    def ready() -> bool:
        with contextlib.suppress(OSError):
            status, _ = get_text(handle.url + "/healthz", timeout=1.0)
            return status == 200 or not healthy
        return False

    try:
        wait_for(ready, deadline - time.monotonic(), interval=0.02, message=f"{handle.url} to answer /healthz")
    except AssertionError:
        raise TimeoutError(f"{handle.url} not ready in time; log:\n{handle.logs()}") from None


def start_servers(
    specs: Sequence[ServerSpec], *, wait_healthy: bool = True, timeout: float = STARTUP_TIMEOUT_SECONDS
) -> list[ServerHandle]:
    """Start every server at once (start-up is mostly imports) and wait until each answers /healthz.

    With ``wait_healthy`` a server must answer 200, unless it was started with ``fail_load``
    or a load delay, in which case answering at all is enough.
    """
    deadline = time.monotonic() + timeout
    started: list[tuple[ServerSpec, subprocess.Popen[bytes], IO[bytes]]] = []
    handles: list[ServerHandle] = []
    try:
        for spec in specs:
            log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - ServerHandle.stop closes it
            process = subprocess.Popen(
                spec.command(),
                cwd=MODEL_SERVER_DIR,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            started.append((spec, process, log))
        for spec, process, log in started:
            handle = ServerHandle(spec=spec, port=_read_port(process, deadline), process=process, log=log)
            handles.append(handle)
            _live.add(handle)
        for handle in handles:
            expect_200 = wait_healthy and not handle.spec.faults.get("fail_load") and not handle.spec.load_seconds
            _wait_ready(handle, deadline, expect_200)
    except BaseException:
        for handle in handles:
            handle.stop()
        for _, process, log in started[len(handles) :]:
            process.kill()
            process.wait()
            log.close()
        raise
    return handles


def stop_servers(handles: Iterable[ServerHandle]) -> None:
    handles = list(handles)
    for handle in handles:  # signal all first: each takes a poll interval to wind down
        if handle.process.poll() is None:
            handle.process.terminate()
    for handle in handles:
        handle.stop()


@contextlib.contextmanager
def running_servers(specs: Sequence[ServerSpec], **options: Any) -> Iterator[list[ServerHandle]]:
    handles = start_servers(specs, **options)
    try:
        yield handles
    finally:
        stop_servers(handles)


def file_sd_entry(handle: ServerHandle, *, job: str = "model-server") -> dict[str, Any]:
    """One Prometheus file_sd target group; these labels are the ones the controllers' PromQL selects on."""
    return {
        "targets": [f"127.0.0.1:{handle.port}"],
        "labels": {"revision": handle.revision, "role": handle.role, "model": handle.spec.model, "job": job},
    }


def write_file_sd(path: Path, handles: Iterable[ServerHandle], *, job: str = "model-server") -> None:
    """Replace the file atomically: Prometheus re-reads it on change and must never see half of it."""
    entries = [file_sd_entry(handle, job=job) for handle in handles]
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    temporary.replace(path)
