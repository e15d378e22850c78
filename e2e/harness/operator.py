"""The operator as a real process, the way it runs in its pod: started, killed and restarted by tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from e2e.dataplane import REPO_ROOT
from tests.support.waiting import pace


class OperatorProcess:
    """``modelrollout run`` against a cluster and a Prometheus, with its log kept for failures."""

    def __init__(
        self,
        kubeconfig: Path,
        prometheus_url: str,
        *,
        tick: float = 0.5,
        extra_env: dict[str, str] | None = None,
        namespaces: str | None = "mr-*",
        peering: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.prometheus_url = prometheus_url
        self.tick = tick
        self.extra_env = extra_env or {}
        self.namespaces = namespaces
        self.peering = peering
        """A kopf namespace pattern: only the scenarios' own namespaces, so tests that drive a controller
        directly in other namespaces are not reconciled twice. None: every namespace, one watch per kind."""
        self.process: subprocess.Popen[bytes] | None = None
        handle, path = tempfile.mkstemp(prefix="modelrollout-operator-", suffix=".log")
        os.close(handle)
        self.log_path = Path(path)
        self._log: IO[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "MODELROLLOUT_PROMETHEUS_URL": self.prometheus_url,
            "MODELROLLOUT_TICK_SECONDS": str(self.tick),
            "MODELROLLOUT_RESYNC_SECONDS": "5",
            "MODELROLLOUT_METRICS_PORT": "0",
            "MODELROLLOUT_LIVENESS": "",
            "MODELROLLOUT_PROMETHEUS_TIMEOUT": "2",
            "PYTHONUNBUFFERED": "1",
            **({"MODELROLLOUT_PEERING_NAME": self.peering} if self.peering else {}),
            **self.extra_env,
        }
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelrollout", "run"]
            + (["--namespace", self.namespaces] if self.namespaces else ["--all-namespaces"])
            + ([] if self.peering else ["--standalone"]),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        pace(0.5)  # long enough for a bad flag or a broken import to end the process
        if self.process.poll() is not None:
            raise RuntimeError(f"operator exited at once:\n{self.logs()}")
        return self

    def kill(self) -> None:
        """A crash: SIGKILL, no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
