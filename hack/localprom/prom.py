#!/usr/bin/env python3
"""A real Prometheus and Alertmanager for modelrollout's tests, run as our own loopback processes.

Why: the operator's analysis gates query Prometheus and its alerts go through Alertmanager, and
tests must exercise the real query engine and rule evaluation, not a mock. The Debian packages
``prometheus`` and ``prometheus-alertmanager`` provide the binaries; we never use their system
services. Instead we start them with a generated configuration tuned for tests:

- scrape and rule evaluation every second;
- targets from ``.local/prometheus/targets/*.json`` (file service discovery), so a test adds or
  removes a scrape target by writing or deleting a file;
- rules from ``.local/prometheus/rules/*.yml``, picked up by ``reload()`` (``--web.enable-lifecycle``);
- alerts sent to a local Alertmanager that routes everything to one webhook URL (by default a
  receiver that the tests run, see ``webhook.py``).

Ports are fixed so humans can find them but overridable: ``MODELROLLOUT_PROM_PORT`` (19090),
``MODELROLLOUT_ALERTMANAGER_PORT`` (19093), ``MODELROLLOUT_ALERT_WEBHOOK``
(http://127.0.0.1:19094/alerts). Subcommands: ``up``, ``down``, ``status``, ``reload``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make `hack.localcluster` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hack.localcluster import procs

REPO = Path(__file__).resolve().parents[2]
STATE_DIR = REPO / ".local" / "prometheus"
LOCK_FILE = REPO / ".local" / "prometheus.lock"
TARGETS_DIR = STATE_DIR / "targets"
RULES_DIR = STATE_DIR / "rules"
COMPONENTS = ("alertmanager", "prometheus")
INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager  (or: bash hack/localprom/install.sh)"
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Settings:
    """Ports, webhook URL and binaries, from the environment with test-friendly defaults."""

    prometheus_port: int = 19090
    alertmanager_port: int = 19093
    webhook_url: str = "http://127.0.0.1:19094/alerts"
    prometheus_bin: str = "/usr/bin/prometheus"
    alertmanager_bin: str = "/usr/bin/prometheus-alertmanager"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            prometheus_port=int(env.get("MODELROLLOUT_PROM_PORT", cls.prometheus_port)),
            alertmanager_port=int(env.get("MODELROLLOUT_ALERTMANAGER_PORT", cls.alertmanager_port)),
            webhook_url=env.get("MODELROLLOUT_ALERT_WEBHOOK", cls.webhook_url),
            prometheus_bin=env.get("MODELROLLOUT_PROMETHEUS_BIN") or _which("prometheus", cls.prometheus_bin),
            alertmanager_bin=env.get("MODELROLLOUT_ALERTMANAGER_BIN")
            or _which("prometheus-alertmanager", cls.alertmanager_bin),
        )

    @property
    def prometheus_url(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.alertmanager_port}"


def _which(name: str, default: str) -> str:
    return default if Path(default).exists() else (shutil.which(name) or default)


def missing_binaries(settings: Settings) -> list[str]:
    """Binaries that are not installed (empty when both are there)."""
    return [b for b in (settings.prometheus_bin, settings.alertmanager_bin) if not os.access(b, os.X_OK)]


def prometheus_config(settings: Settings) -> str:
    """Prometheus configuration; JSON, which is valid YAML, to avoid a YAML dependency."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "file-sd",
                "file_sd_configs": [{"files": [str(TARGETS_DIR / "*.json")], "refresh_interval": "1s"}],
            }
        ],
        "rule_files": [str(RULES_DIR / "*.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{procs.LOOPBACK}:{settings.alertmanager_port}"]}]}]
        },
    }
    return json.dumps(config, indent=2) + "\n"


def alertmanager_config(settings: Settings) -> str:
    """Route every alert, quickly and ungrouped, to the one webhook receiver."""
    config = {
        "route": {
            "receiver": "webhook",
            "group_by": ["..."],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "webhook",
                "webhook_configs": [{"url": settings.webhook_url, "send_resolved": True}],
            }
        ],
    }
    return json.dumps(config, indent=2) + "\n"


@dataclass
class State:
    """What `up` started, saved in ``.local/prometheus/state.json``."""

    settings: dict[str, object]
    pids: dict[str, int]
    ready: bool = False

    def save(self) -> None:
        (STATE_DIR / "state.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls) -> State | None:
        try:
            return cls(**json.loads((STATE_DIR / "state.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _argv(settings: Settings) -> dict[str, list[str]]:
    am_dir = STATE_DIR / "alertmanager"
    return {
        "alertmanager": [
            settings.alertmanager_bin,
            f"--config.file={am_dir / 'alertmanager.yml'}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address={procs.LOOPBACK}:{settings.alertmanager_port}",
            f"--web.external-url={settings.alertmanager_url}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        "prometheus": [
            settings.prometheus_bin,
            f"--config.file={STATE_DIR / 'prometheus.yml'}",
            f"--storage.tsdb.path={STATE_DIR / 'data'}",
            f"--web.listen-address={procs.LOOPBACK}:{settings.prometheus_port}",
            f"--web.external-url={settings.prometheus_url}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ],
    }


def running_state(settings: Settings) -> State | None:
    """The saved state when both processes are ours, alive, and answer /-/ready."""
    state = State.load()
    if state is None or not state.ready:
        return None
    if not all(procs.is_ours(state.pids.get(name, -1), STATE_DIR) for name in COMPONENTS):
        return None
    for url in (settings.prometheus_url, settings.alertmanager_url):
        if procs.http_get(f"{url}/-/ready")[0] != 200:
            return None
    return state


def _cleanup_stale() -> None:
    pids = procs.read_pidfiles(STATE_DIR)
    state = State.load()
    if state:
        pids.update({k: v for k, v in state.pids.items() if k not in pids})
    if pids:
        procs.stop_pids(pids, STATE_DIR, tuple(reversed(COMPONENTS)), timeout=10.0)
    if STATE_DIR.exists():
        shutil.rmtree(STATE_DIR)


def _ready_probe(url: str) -> Callable[[], bool]:
    return lambda: procs.http_get(f"{url}/-/ready")[0] == 200


def up(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> State:
    """Start Alertmanager and Prometheus; harmless when already running."""
    missing = missing_binaries(settings)
    if missing:
        raise procs.LaunchError(f"missing {', '.join(missing)}: {INSTALL_HINT}")
    with procs.file_lock(LOCK_FILE):
        state = running_state(settings)
        if state is not None:
            print(f"already running: {settings.prometheus_url}", file=sys.stderr)
            return state
        _cleanup_stale()
        for port in (settings.prometheus_port, settings.alertmanager_port):
            if procs.port_in_use(port):
                raise procs.LaunchError(
                    f"port {port} is taken by another process; set MODELROLLOUT_PROM_PORT / "
                    "MODELROLLOUT_ALERTMANAGER_PORT to free ports"
                )
        for folder in (TARGETS_DIR, RULES_DIR, STATE_DIR / "data", STATE_DIR / "alertmanager" / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / "prometheus.yml").write_text(prometheus_config(settings))
        (STATE_DIR / "alertmanager" / "alertmanager.yml").write_text(alertmanager_config(settings))
        argv = _argv(settings)
        running: dict[str, subprocess.Popen[bytes]] = {}
        state = State(settings=asdict(settings), pids={})
        try:
            for name in COMPONENTS:
                running[name] = procs.spawn(name, argv[name], STATE_DIR)
                state.pids[name] = running[name].pid
            state.save()
            for name, url in (("Alertmanager", settings.alertmanager_url), ("Prometheus", settings.prometheus_url)):
                procs.wait_until(f"{name} /-/ready", _ready_probe(url), running, STATE_DIR, timeout)
        except BaseException:
            procs.stop_pids(state.pids, STATE_DIR, tuple(reversed(COMPONENTS)), timeout=5.0)
            for proc in running.values():
                proc.wait(timeout=5)
            raise
        state.ready = True
        state.save()
        return state


def reload(settings: Settings) -> None:
    """Make Prometheus re-read its config and rule files (targets are picked up by themselves)."""
    code = procs.http_post(f"{settings.prometheus_url}/-/reload")
    if code != 200:
        raise procs.LaunchError(
            f"Prometheus reload answered {code}; log {STATE_DIR / 'logs' / 'prometheus.log'}:\n"
            f"{procs.log_tail(STATE_DIR, 'prometheus')}"
        )


def down() -> None:
    """Stop both processes (also those of a killed run) and remove ``.local/prometheus``."""
    with procs.file_lock(LOCK_FILE):
        _cleanup_stale()


def status(settings: Settings) -> int:
    """Print what runs; exit 0 only when both answer /-/ready."""
    state = State.load()
    if state is None:
        print("not running (no state)")
        return 1
    for name in COMPONENTS:
        pid = state.pids.get(name)
        alive = pid is not None and procs.is_ours(pid, STATE_DIR)
        print(f"{name:14} pid {pid!s:8} {'running' if alive else 'NOT running'}")
    ok = running_state(settings) is not None
    print(f"prometheus     {settings.prometheus_url} ({'ready' if ok else 'not ready'})")
    print(f"alertmanager   {settings.alertmanager_url} -> {settings.webhook_url}")
    print(f"targets        {TARGETS_DIR}/*.json   rules {RULES_DIR}/*.yml")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start Prometheus and Alertmanager on loopback")
    up_parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    sub.add_parser("down", help="stop both and remove .local/prometheus")
    sub.add_parser("status", help="show what runs; exit 1 unless ready")
    sub.add_parser("reload", help="reload the config and rule files")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.command == "up":
            up(settings, timeout=args.timeout)
            print(settings.prometheus_url)
        elif args.command == "down":
            down()
        elif args.command == "status":
            return status(settings)
        elif args.command == "reload":
            reload(settings)
    except procs.LaunchError as err:
        print(f"localprom: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
