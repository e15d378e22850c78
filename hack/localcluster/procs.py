"""Process plumbing shared by the local control plane and the local Prometheus launchers.

Why: both launchers start long-lived daemons that must outlive the command that started them
(so `up` returns and tests run), survive being started twice, and be cleaned up after a killed
run. They track pids in files and only ever signal a pid whose command line names their own
state folder, so a recycled pid that now belongs to someone else is never touched.
Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

LOOPBACK = "127.0.0.1"


class LaunchError(RuntimeError):
    """A failure the user can act on; the message says what to do."""


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise `up`/`down`/builds across processes (two test sessions, two terminals)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_ours(pid: int, marker: Path) -> bool:
    """True if ``pid`` is alive, not a zombie, and has ``marker`` in its command line.

    The zombie check matters because PID 1 in some sandboxes never reaps orphans.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return str(marker) in cmdline


def read_pidfiles(state_dir: Path) -> dict[str, int]:
    """Pids recorded under ``state_dir/pids``, by component name."""
    pids: dict[str, int] = {}
    for path in (state_dir / "pids").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pids[path.stem] = int(path.read_text().strip())
    return pids


def stop_pids(pids: Mapping[str, int], marker: Path, order: tuple[str, ...], timeout: float = 10.0) -> None:
    """Stop ours one by one in ``order`` (others after): SIGTERM, wait up to ``timeout``, SIGKILL.

    One at a time on purpose: an API server whose clients are gone stops in about a second,
    while one stopped together with etcd and its clients lingers past any sensible timeout.
    """
    names = [n for n in order if n in pids] + [n for n in pids if n not in order]
    for name in names:
        pid = pids[name]
        if not is_ours(pid, marker):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_ours(pid, marker):
            time.sleep(0.02)
        if is_ours(pid, marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def spawn(name: str, argv: list[str], state_dir: Path) -> subprocess.Popen[bytes]:
    """Start a daemon in its own session, output to ``logs/<name>.log``, pid to ``pids/<name>.pid``."""
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    (state_dir / "pids").mkdir(parents=True, exist_ok=True)
    with (state_dir / "logs" / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    (state_dir / "pids" / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def log_tail(state_dir: Path, name: str, lines: int = 25) -> str:
    """Last lines of a component's log, to put in an error message."""
    try:
        text = (state_dir / "logs" / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def http_get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answered. Used for loopback health checks only."""
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, ssl.SSLError):
        return 0, b""


def http_post(url: str, timeout: float = 5.0) -> int:
    """POST with an empty body (lifecycle endpoints such as Prometheus' /-/reload)."""
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def free_ports(names: list[str]) -> dict[str, int]:
    """Distinct free loopback ports, so several checkouts on one machine never collide."""
    sockets: list[socket.socket] = []
    try:
        for _ in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return {name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


def port_in_use(port: int) -> bool:
    """True when something already listens on the loopback ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def wait_until(
    what: str,
    check: Callable[[], bool],
    procs: Mapping[str, subprocess.Popen[bytes]],
    state_dir: Path,
    timeout: float,
) -> None:
    """Poll ``check()`` until true; fail at once, with its log, if one of ``procs`` died."""
    deadline = time.monotonic() + timeout
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise LaunchError(
                    f"{name} exited with {proc.returncode} while waiting for {what}; "
                    f"log {state_dir / 'logs' / (name + '.log')}:\n{log_tail(state_dir, name)}"
                )
        if check():
            return
        if time.monotonic() > deadline:
            raise LaunchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (0 if it is gone), from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
