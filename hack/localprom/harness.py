"""Test-side handle on the local Prometheus + Alertmanager, shared by the pytest fixtures.

Why: tests need to add scrape targets (their own exporters on loopback ports, labelled by
revision), load alert rules, and see the alerts that reach a webhook, without knowing the file
layout or reload mechanics of ``prom.py``. Like the cluster harness, it starts the stack only
if it is not running yet, and stops it afterwards only if it started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from hack.localcluster import procs
from hack.localprom import prom
from hack.localprom.webhook import AlertReceiver

PROM_PY = Path(prom.__file__).resolve()


class HarnessError(RuntimeError):
    """Prometheus cannot be had; the message says what to install or run."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


@dataclass
class LocalPrometheus:
    """A running Prometheus: its URL, target/rule files, and the alerts the webhook received."""

    url: str
    alertmanager_url: str
    receiver: AlertReceiver
    started_here: bool
    settings: prom.Settings
    _created: set[Path] = field(default_factory=set)

    def add_target(self, job: str, host_port: str, labels: Mapping[str, str] | None = None) -> Path:
        """Scrape ``host_port`` as ``job`` with extra target ``labels`` (e.g. revision, role).

        Written atomically as one file-SD file per (job, target); Prometheus notices it within
        about a second (inotify), no reload needed.
        """
        path = prom.TARGETS_DIR / f"{_slug(job)}--{_slug(host_port)}.json"
        group = [{"targets": [host_port], "labels": {**(labels or {}), "job": job}}]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(group))
        tmp.rename(path)
        self._created.add(path)
        return path

    def remove_target(self, job: str, host_port: str) -> None:
        """Stop scraping ``host_port`` for ``job``."""
        path = prom.TARGETS_DIR / f"{_slug(job)}--{_slug(host_port)}.json"
        path.unlink(missing_ok=True)
        self._created.discard(path)

    def add_rules(self, name: str, rules_yaml: str) -> Path:
        """Install a Prometheus rule file (``groups:`` YAML) and reload; fails on invalid rules."""
        path = prom.RULES_DIR / f"{_slug(name)}.yml"
        path.write_text(rules_yaml)
        self._created.add(path)
        try:
            prom.reload(self.settings)
        except procs.LaunchError:
            path.unlink(missing_ok=True)
            self._created.discard(path)
            prom.reload(self.settings)
            raise
        return path

    def remove_rules(self, name: str) -> None:
        """Remove a rule file installed with ``add_rules`` and reload."""
        path = prom.RULES_DIR / f"{_slug(name)}.yml"
        path.unlink(missing_ok=True)
        self._created.discard(path)
        prom.reload(self.settings)

    def alerts_received(self) -> list[dict[str, Any]]:
        """Alerts that reached the webhook receiver so far (Alertmanager webhook v4 alerts)."""
        return self.receiver.alerts()

    def client(self) -> Any:
        """A ``prometheus_api_client.PrometheusConnect`` for this Prometheus."""
        from prometheus_api_client import PrometheusConnect  # noqa: PLC0415 - optional for the launcher

        return PrometheusConnect(url=self.url, disable_ssl=True)

    def wait_for_target(self, job: str, host_port: str, timeout: float = 20.0) -> None:
        """Block until Prometheus has scraped ``host_port`` for ``job`` successfully."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, body = procs.http_get(f"{self.url}/api/v1/targets?state=active")
            if code == 200:
                for target in json.loads(body)["data"]["activeTargets"]:
                    labels = target.get("labels", {})
                    if labels.get("job") == job and labels.get("instance") == host_port and target["health"] == "up":
                        return
            time.sleep(0.2)
        raise HarnessError(f"target {host_port} (job {job}) not up after {timeout:.0f}s")

    def cleanup(self) -> None:
        """Remove every target and rule file this session created (when the stack stays up)."""
        rules_removed = any(p.parent == prom.RULES_DIR for p in self._created)
        for path in list(self._created):
            path.unlink(missing_ok=True)
        self._created.clear()
        if rules_removed:
            with contextlib.suppress(procs.LaunchError):
                prom.reload(self.settings)


EXTERNAL_URL = "MODELROLLOUT_TEST_PROMETHEUS_URL"


@dataclass
class ExternalPrometheus:
    """A Prometheus this session neither starts nor configures (kind: the in-cluster one, port-forwarded).

    It discovers its own targets. File-SD targets on loopback, rule files and the alert webhook are
    the local Prometheus's: a test that needs them is skipped here, saying so.
    """

    url: str
    started_here: bool = False

    def _unavailable(self, what: str) -> NoReturn:
        import pytest  # noqa: PLC0415 - only tests reach this

        pytest.skip(f"{what} needs the local Prometheus; {EXTERNAL_URL} points at one this session does not own")

    def add_target(self, job: str, host_port: str, labels: Mapping[str, str] | None = None) -> Path:
        self._unavailable("a loopback scrape target")

    def remove_target(self, job: str, host_port: str) -> None:
        """Nothing to remove: add_target never added anything (kept for teardown paths)."""

    def add_rules(self, name: str, rules_yaml: str) -> Path:
        self._unavailable("a rule file")

    def remove_rules(self, name: str) -> None:
        """Nothing to remove (see add_rules)."""

    def alerts_received(self) -> list[dict[str, Any]]:
        self._unavailable("the alert webhook")

    def client(self) -> Any:
        from prometheus_api_client import PrometheusConnect  # noqa: PLC0415 - optional for the launcher

        return PrometheusConnect(url=self.url, disable_ssl=True)

    def wait_for_target(self, job: str, host_port: str, timeout: float = 20.0) -> None:
        """Block until Prometheus scrapes ``host_port`` (its instance label) for ``job`` successfully."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, body = procs.http_get(f"{self.url}/api/v1/targets?state=active")
            if code == 200:
                for target in json.loads(body)["data"]["activeTargets"]:
                    labels = target.get("labels", {})
                    if labels.get("job") == job and labels.get("instance") == host_port and target["health"] == "up":
                        return
            time.sleep(0.2)
        raise HarnessError(f"target {host_port} (job {job}) not up after {timeout:.0f}s")


def _run_launcher(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROM_PY), *args], capture_output=True, text=True, check=False, env=env)


@contextlib.contextmanager
def prometheus_session() -> Iterator[LocalPrometheus | ExternalPrometheus]:
    """Yield a ready Prometheus + Alertmanager + webhook receiver for a test session.

    With ``MODELROLLOUT_TEST_PROMETHEUS_URL`` set, yield an :class:`ExternalPrometheus` on that URL
    instead (checked to answer ``/-/ready``), and start nothing.
    """
    external = os.environ.get(EXTERNAL_URL, "").rstrip("/")
    if external:
        code, _ = procs.http_get(f"{external}/-/ready")
        if code != 200:
            raise HarnessError(f"{EXTERNAL_URL}={external} is not a ready Prometheus (GET /-/ready: {code})")
        yield ExternalPrometheus(url=external)
        return
    settings = prom.Settings.from_env()
    missing = prom.missing_binaries(settings)
    if missing:
        raise HarnessError(f"missing {', '.join(missing)}: {prom.INSTALL_HINT}")
    hook = urlsplit(settings.webhook_url)
    receiver = AlertReceiver(host=hook.hostname or "127.0.0.1", port=hook.port or 80, path=hook.path or "/")
    try:
        receiver.start()
    except OSError as err:
        raise HarnessError(
            f"cannot listen on {settings.webhook_url} for alerts ({err}); another test session may "
            "hold it: set MODELROLLOUT_ALERT_WEBHOOK (and the Prometheus ports) to free values"
        ) from err
    started_here = prom.running_state(settings) is None
    try:
        if started_here:
            result = _run_launcher("up", env=os.environ)
            if result.returncode != 0:
                raise HarnessError(f"`prom.py up` failed:\n{result.stderr[-6000:]}")
        handle = LocalPrometheus(
            url=settings.prometheus_url,
            alertmanager_url=settings.alertmanager_url,
            receiver=receiver,
            started_here=started_here,
            settings=settings,
        )
        try:
            yield handle
        finally:
            if started_here:
                _run_launcher("down")
            else:
                handle.cleanup()
    finally:
        receiver.stop()
