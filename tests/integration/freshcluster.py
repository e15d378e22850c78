"""A fresh, private API server (etcd + kube-apiserver) per test module: an empty cluster to install into.

Why not the shared local cluster: installs are about what happens on a cluster that has
never seen modelrollout (no CRDs, no peering object, no Prometheus Operator CRDs), and
uninstalling or deleting CRDs there would break every other test that shares it. This one
uses the same cached binaries and PKI code as ``hack/localcluster/cluster.py``, on free ports
in a temporary folder, without controller-manager, scheduler or kwok: nothing here needs pods
to run. It starts in a few seconds and is stopped with the module.

``identity(user)`` issues a client certificate for any user name, such as the operator's
ServiceAccount (``system:serviceaccount:<ns>:<name>``; RBAC matches ServiceAccount subjects
by that user name), so the operator can run with exactly the permissions it is installed with.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hack.localcluster import cluster, procs

COMPONENTS = ("etcd", "kube-apiserver")


@dataclass(frozen=True)
class FreshCluster:
    folder: Path
    server: str
    kubeconfig: Path
    kubectl_bin: str

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def identity(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig that authenticates as ``user`` (and ``groups``), with no other rights than RBAC gives."""
        slug = user.replace(":", "-")
        subject = "".join(f"/O={group}" for group in groups) + f"/CN={user}"
        cluster._issue(self.folder / "pki", slug, subject, "clientAuth")
        path = self.folder / f"{slug}.kubeconfig"
        cluster.write_kubeconfig(path, self.server, self.folder / "pki", slug)
        return path


@contextlib.contextmanager
def fresh_cluster(timeout: float = 90.0) -> Iterator[FreshCluster]:
    layout = cluster.Layout.current()
    missing = [name for name in ("etcd", "kube-apiserver", "kubectl") if not layout.binary(name).exists()]
    if missing:
        raise AssertionError(f"the local control plane is not built ({', '.join(missing)}): run `make tools`")
    with tempfile.TemporaryDirectory(prefix="modelrollout-fresh-") as tmp:
        folder = Path(tmp)
        pki = folder / "pki"
        cluster.make_pki(pki)
        ports = procs.free_ports(["etcd", "etcd_peer", "apiserver"])
        etcd_url = f"http://{procs.LOOPBACK}:{ports['etcd']}"
        peer_url = f"http://{procs.LOOPBACK}:{ports['etcd_peer']}"
        server = f"https://{procs.LOOPBACK}:{ports['apiserver']}"
        argv = {
            "etcd": [
                str(layout.binary("etcd")), "--name=fresh", f"--data-dir={folder / 'etcd'}",
                f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=fresh={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
            ],
            "kube-apiserver": [
                str(layout.binary("kube-apiserver")), f"--etcd-servers={etcd_url}",
                f"--bind-address={procs.LOOPBACK}", f"--advertise-address={procs.LOOPBACK}",
                f"--secure-port={ports['apiserver']}",
                f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}", f"--service-cluster-ip-range={cluster.SERVICE_CIDR}",
                "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--endpoint-reconciler-type=none", "--profiling=false",
            ],
        }  # fmt: skip
        running: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name in COMPONENTS:
                running[name] = procs.spawn(name, argv[name], folder)
                if name == "etcd":
                    procs.wait_until(
                        "etcd", lambda: procs.http_get(f"{etcd_url}/health")[0] == 200, running, folder, timeout
                    )
            context = cluster._ssl_context(pki)
            procs.wait_until(
                "kube-apiserver /readyz",
                lambda: procs.http_get(f"{server}/readyz", context)[0] == 200,
                running,
                folder,
                timeout,
            )
            kubeconfig = folder / "admin.kubeconfig"
            cluster.write_kubeconfig(kubeconfig, server, pki, "admin")
            yield FreshCluster(folder, server, kubeconfig, str(layout.binary("kubectl")))
        finally:
            procs.stop_pids({n: p.pid for n, p in running.items()}, folder, tuple(reversed(COMPONENTS)), timeout=10)
            for process in running.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
