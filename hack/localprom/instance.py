"""A private Prometheus for one test: its own configuration, port and data folder, stopped afterwards.

Why: some tests need a Prometheus configured differently from the shared one of ``prom.py``
(which they must not touch): one that demands TLS, a client certificate and basic auth
(``--web.config.file``), one that runs a scrape configuration under test, one fed by a chosen
set of exporters. It uses the same Debian binary. TLS material comes from the local cluster's
PKI code (an ECDSA CA, a serving certificate for 127.0.0.1, a client certificate).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from hack.localcluster import cluster, procs
from hack.localprom import prom


@dataclass(frozen=True)
class Tls:
    """Files of a CA, the server's certificate and a client certificate, all under ``folder``."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def server(self) -> tuple[Path, Path]:
        return self.folder / "serving.crt", self.folder / "serving.key"

    @property
    def client(self) -> tuple[Path, Path]:
        return self.folder / "admin.crt", self.folder / "admin.key"


@dataclass(frozen=True)
class PrivatePrometheus:
    url: str
    folder: Path
    tls: Tls | None
    basic_auth: tuple[str, str] | None

    def session(self) -> requests.Session:
        """A session that passes this Prometheus' TLS and auth (for test assertions)."""
        session = requests.Session()
        if self.tls is not None:
            session.verify = str(self.tls.ca)
            session.cert = (str(self.tls.client[0]), str(self.tls.client[1]))
        if self.basic_auth is not None:
            session.auth = self.basic_auth
        return session

    def get(self, path: str, **params: str) -> requests.Response:
        session = self.session()
        # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's CA bundle.
        return session.get(f"{self.url}{path}", params=params, timeout=10, verify=session.verify)

    def api(self, path: str, **params: str) -> Any:
        response = self.get(f"/api/v1/{path}", **params)
        response.raise_for_status()
        return response.json()["data"]


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for Prometheus' web config (cost 4: tests, not production)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # noqa: PLC0415 - deprecated module, only for this

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@contextlib.contextmanager
def private_prometheus(
    config: Mapping[str, Any],
    *,
    tls: bool = False,
    require_client_cert: bool = False,
    basic_auth: tuple[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[PrivatePrometheus]:
    """Run Prometheus with ``config`` (a prometheus.yml as a mapping) until the block ends."""
    binary = prom.Settings.from_env().prometheus_bin
    with tempfile.TemporaryDirectory(prefix="modelrollout-prom-") as tmp:
        folder = Path(tmp)
        port = procs.free_ports(["prometheus"])["prometheus"]
        (folder / "prometheus.yml").write_text(json.dumps(config))
        argv = [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={procs.LOOPBACK}:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        material = None
        if tls or basic_auth:
            web: dict[str, Any] = {}
            if tls:
                material = Tls(folder / "pki")
                cluster.make_pki(material.folder)
                web["tls_server_config"] = {
                    "cert_file": str(material.server[0]),
                    "key_file": str(material.server[1]),
                    # Debian's 2.42 build fails every TLS 1.3 handshake here ("bad record MAC", from
                    # curl and Python alike); TLS 1.2 with ECDHE and AES-GCM works.
                    "max_version": "TLS12",
                }
                if require_client_cert:
                    web["tls_server_config"] |= {
                        "client_ca_file": str(material.ca),
                        "client_auth_type": "RequireAndVerifyClientCert",
                    }
            if basic_auth:
                web["basic_auth_users"] = {basic_auth[0]: bcrypt_hash(basic_auth[1])}
            (folder / "web.yml").write_text(json.dumps(web))
            argv.append(f"--web.config.file={folder / 'web.yml'}")
        scheme = "https" if tls else "http"
        handle = PrivatePrometheus(f"{scheme}://{procs.LOOPBACK}:{port}", folder, material, basic_auth)
        process = procs.spawn("prometheus", argv, folder)
        try:
            _wait_ready(handle, process, timeout)
            yield handle
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(handle: PrivatePrometheus, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {procs.log_tail(handle.folder, 'prometheus')}")
        with contextlib.suppress(requests.RequestException):
            if handle.get("/-/ready").status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"prometheus not ready after {timeout:g}s: {procs.log_tail(handle.folder, 'prometheus')}"
            )
        time.sleep(0.2)
