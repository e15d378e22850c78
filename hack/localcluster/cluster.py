#!/usr/bin/env python3
"""A real local Kubernetes control plane for modelrollout's tests, without Docker.

Why this exists: the operator's integration tests need a real API server (admission, RBAC,
server-side apply, owner-reference garbage collection, a scheduler, Jobs and Deployments that
progress), but our machines have no container runtime. So we build etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubectl and the kwok controller from pinned Go modules
(versions in ``versions.env``), cache the binaries outside the repository keyed by version, and
run them ourselves as loopback processes, envtest-style. kwok plays the kubelet: it marks fake
Nodes Ready and moves Pods through their phases by "stages".

Subcommands: ``pin`` (regenerate the wrapper go.mod files after a version bump), ``build``
(idempotent, quick when cached), ``up``, ``down``, ``status`` and ``env``.

Only the standard library is used, so any Python 3.11 runs it (no virtualenv needed in CI
bootstrap); certificates come from the ``openssl`` command line tool.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make `hack.localcluster` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hack.localcluster import procs

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VERSIONS_FILE = HERE / "versions.env"
STATE_DIR = REPO / ".local" / "cluster"
LOCK_FILE = REPO / ".local" / "cluster.lock"
KUBECONFIG = STATE_DIR / "kubeconfig"

LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/16"
NODE_NAMES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
FAILURE_LABEL = "modelrollout.dev/simulate-failure"
FIELD_MANAGER = "modelrollout-localcluster"

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# Start order; `down` stops them in reverse so nothing loses its API server first.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# Stage files copied from the kwok module: node initialise + lease heartbeat and the fast pod
# stages (ready, complete for Job pods, delete), i.e. kwokctl's defaults. Passing any stage to
# the kwok controller replaces its defaults, hence the explicit list.
KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
GATEWAY_CRD_DIR = "config/crd/standard"

DEFAULT_START_TIMEOUT = 90.0


ClusterError = procs.LaunchError


# --------------------------------------------------------------------------- versions & cache


@dataclass(frozen=True)
class Versions:
    """The pinned versions, read from the single source ``versions.env``."""

    kubernetes: str
    etcd: str
    kwok: str
    gateway_api: str

    @classmethod
    def load(cls, path: Path = VERSIONS_FILE) -> Versions:
        """Parse ``KEY=value`` lines; comments and blank lines are ignored."""
        values: dict[str, str] = {}
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
        try:
            return cls(
                kubernetes=values["KUBERNETES_VERSION"],
                etcd=values["ETCD_VERSION"],
                kwok=values["KWOK_VERSION"],
                gateway_api=values["GATEWAY_API_VERSION"],
            )
        except KeyError as missing:
            raise ClusterError(f"{path} lacks {missing}") from None

    @property
    def staging(self) -> str:
        """Version of the k8s.io staging modules: v1.36.3 -> v0.36.3."""
        return "v0." + self.kubernetes.removeprefix("v1.")


def cache_root() -> Path:
    """Binary cache outside the repo, shared by checkouts; ``MODELROLLOUT_CACHE`` overrides."""
    env = os.environ.get("MODELROLLOUT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelrollout"


@dataclass(frozen=True)
class Layout:
    """Where each cached artifact lives; one folder per component and version."""

    cache: Path
    versions: Versions

    @classmethod
    def current(cls) -> Layout:
        return cls(cache_root(), Versions.load())

    @property
    def k8s_dir(self) -> Path:
        return self.cache / "kubernetes" / self.versions.kubernetes

    @property
    def etcd_dir(self) -> Path:
        return self.cache / "etcd" / self.versions.etcd

    @property
    def kwok_dir(self) -> Path:
        return self.cache / "kwok" / self.versions.kwok

    @property
    def gateway_dir(self) -> Path:
        return self.cache / "gateway-api" / self.versions.gateway_api

    @property
    def bin_dir(self) -> Path:
        """The folder `env` puts on PATH (kubectl matching the server version lives here)."""
        return self.k8s_dir / "bin"

    def binary(self, name: str) -> Path:
        """Path of one executable of the control plane."""
        if name in K8S_COMMANDS:
            return self.k8s_dir / "bin" / name
        if name in ("etcd", "etcdctl"):
            return self.etcd_dir / "bin" / name
        if name == "kwok":
            return self.kwok_dir / "bin" / "kwok"
        raise KeyError(name)

    def is_built(self) -> bool:
        """True when every component has finished building (stamp files are written last)."""
        return all((d / ".complete").exists() for d in (self.k8s_dir, self.etcd_dir, self.kwok_dir, self.gateway_dir))


# --------------------------------------------------------------------------- building


def _log(msg: str) -> None:
    print(f"[localcluster] {msg}", file=sys.stderr, flush=True)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ClusterError(
            "Go is not installed but is needed to build the local control plane once "
            "(Go >= 1.26; binaries are then cached in "
            f"{cache_root()}). Install Go 1.26+ and re-run `python hack/localcluster/cluster.py build`."
        )
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOWORK": "off"})
    return env


def _run_logged(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> None:
    """Run a build step with output to a log file, not the terminal; fail with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ (cd {cwd} && {' '.join(cmd)})\n")
        out.flush()
        result = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise ClusterError(f"build step failed ({' '.join(cmd[:3])} ...), log {log}:\n{tail}")


def _module_dir(module: str, cwd: Path, env: dict[str, str]) -> Path:
    """Folder of a downloaded module (checksum-verified by the go command)."""
    out = subprocess.run(
        [_go(), "mod", "download", "-json", module],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    info = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in info:
        raise ClusterError(f"go mod download {module} failed: {info.get('Error') or out.stderr}")
    return Path(info["Dir"])


def _required_version(go_mod: Path, module: str) -> str | None:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def _check_wrapper(name: str, module: str, version: str) -> Path:
    """Refuse to build when versions.env and the wrapper go.mod disagree (forgotten `pin`)."""
    wrapper = HERE / name
    found = _required_version(wrapper / "go.mod", module)
    if found != version:
        raise ClusterError(
            f"{wrapper}/go.mod requires {module} {found} but versions.env pins {version}: "
            "run `python hack/localcluster/cluster.py pin`"
        )
    return wrapper


@contextlib.contextmanager
def _staged_output(final: Path) -> Iterator[Path]:
    """Build into a temporary sibling folder and move it in place only when complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield tmp
        (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _go_build(wrapper: Path, packages: list[str], ldflags: str, out: Path, log: Path) -> None:
    """``go build`` niced and with -p 2: cold builds share two cores with everyone else.

    ``out`` is a folder (several packages) or, for a single package, the binary's path.
    """
    if len(packages) > 1:
        out.mkdir(parents=True, exist_ok=True)
        target = f"{out}/"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        target = str(out)
    cmd = ["nice", "-n", "10", _go(), "build", "-p", "2", "-trimpath", "-ldflags", ldflags]
    _run_logged([*cmd, "-o", target, *packages], wrapper, log, _go_env())


def _k8s_ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def build(layout: Layout) -> None:
    """Build whatever is missing from the cache; a no-op (well under a second) when cached."""
    v = layout.versions
    logs = layout.cache / "logs"
    with procs.file_lock(layout.cache / ".build.lock"):
        if not (layout.etcd_dir / ".complete").exists():
            wrapper = _check_wrapper("etcd", "go.etcd.io/etcd/server/v3", v.etcd)
            log = logs / f"etcd-{v.etcd}.log"
            _log(f"building etcd {v.etcd} (log: {log})")
            started = time.monotonic()
            with _staged_output(layout.etcd_dir) as out:
                _go_build(wrapper, ["go.etcd.io/etcd/server/v3"], "-s -w", out / "bin" / "etcd", log)
                _go_build(wrapper, ["go.etcd.io/etcd/etcdctl/v3"], "-s -w", out / "bin" / "etcdctl", log)
            _log(f"etcd built in {time.monotonic() - started:.0f}s")

        if not (layout.kwok_dir / ".complete").exists():
            wrapper = _check_wrapper("kwok", "sigs.k8s.io/kwok", v.kwok)
            log = logs / f"kwok-{v.kwok}.log"
            _log(f"building kwok {v.kwok} (log: {log})")
            started = time.monotonic()
            with _staged_output(layout.kwok_dir) as out:
                ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={v.kwok.removeprefix('v')}"
                _go_build(wrapper, ["sigs.k8s.io/kwok/cmd/kwok"], ldflags, out / "bin" / "kwok", log)
                stages = _module_dir(f"sigs.k8s.io/kwok@{v.kwok}", wrapper, _go_env()) / "kustomize" / "stage"
                (out / "stages").mkdir()
                for rel in KWOK_STAGE_FILES:
                    shutil.copyfile(stages / rel, out / "stages" / Path(rel).name)
            _log(f"kwok built in {time.monotonic() - started:.0f}s")

        if not (layout.gateway_dir / ".complete").exists():
            _log(f"fetching Gateway API {v.gateway_api} CRDs")
            src = _module_dir(f"sigs.k8s.io/gateway-api@{v.gateway_api}", HERE, _go_env()) / GATEWAY_CRD_DIR
            with _staged_output(layout.gateway_dir) as out:
                (out / "crds").mkdir()
                for path in sorted(src.glob("*.yaml")):
                    # One file there is a ValidatingAdmissionPolicy, not a CRD: keep CRDs only.
                    if re.search(r"^kind:\s*CustomResourceDefinition\s*$", path.read_text(), re.MULTILINE):
                        shutil.copyfile(path, out / "crds" / path.name)

        if not (layout.k8s_dir / ".complete").exists():
            wrapper = _check_wrapper("kubernetes", "k8s.io/kubernetes", v.kubernetes)
            log = logs / f"kubernetes-{v.kubernetes}.log"
            _log(f"building Kubernetes {v.kubernetes} (several minutes when cold; log: {log})")
            started = time.monotonic()
            with _staged_output(layout.k8s_dir) as out:
                pkgs = [f"k8s.io/kubernetes/cmd/{name}" for name in K8S_COMMANDS]
                _go_build(wrapper, pkgs, _k8s_ldflags(v.kubernetes), out / "bin", log)
            _log(f"Kubernetes built in {time.monotonic() - started:.0f}s")


def pin(versions: Versions) -> None:
    """Regenerate the wrapper go.mod files from versions.env and tidy them.

    The Kubernetes wrapper needs one ``replace`` per staging module, read from the go.mod the
    module proxy serves for that release, because k8s.io/kubernetes requires them at v0.0.0.
    """
    env = _go_env()
    k8s_mod = _module_dir(f"k8s.io/kubernetes@{versions.kubernetes}", HERE, env) / "go.mod"
    staging = re.findall(r"^\s*(k8s\.io/\S+)\s+=>\s+\./staging/", k8s_mod.read_text(), re.MULTILINE)
    if not staging:
        raise ClusterError(f"no staging replace lines found in {k8s_mod}")
    go_line = re.search(r"^go\s+(\S+)", k8s_mod.read_text(), re.MULTILINE)
    go_version = go_line.group(1) if go_line else "1.26.0"
    header = "// Generated by `cluster.py pin` from versions.env; do not edit by hand.\n"
    replaces = "".join(f"\t{m} => {m} {versions.staging}\n" for m in staging)
    tools = "".join(f"\tk8s.io/kubernetes/cmd/{name}\n" for name in K8S_COMMANDS)
    modules = {
        "kubernetes": (
            "// Wrapper module: builds the Kubernetes binaries at the pinned release.\n"
            f"{header}module modelrollout.dev/hack/localcluster/kubernetes\n\ngo {go_version}\n\n"
            f"require k8s.io/kubernetes {versions.kubernetes}\n\ntool (\n{tools})\n\nreplace (\n{replaces})\n"
        ),
        "etcd": (
            "// Wrapper module: builds etcd at the pinned release (server/v3 carries replace\n"
            "// lines, so `go install pkg@version` refuses it; a wrapper does not).\n"
            f"{header}module modelrollout.dev/hack/localcluster/etcd\n\ngo {go_version}\n\n"
            f"require (\n\tgo.etcd.io/etcd/etcdctl/v3 {versions.etcd}\n"
            f"\tgo.etcd.io/etcd/server/v3 {versions.etcd}\n)\n\n"
            "tool (\n\tgo.etcd.io/etcd/etcdctl/v3\n\tgo.etcd.io/etcd/server/v3\n)\n"
        ),
        "kwok": (
            "// Wrapper module: builds the kwok controller at the pinned release.\n"
            f"{header}module modelrollout.dev/hack/localcluster/kwok\n\ngo {go_version}\n\n"
            f"require sigs.k8s.io/kwok {versions.kwok}\n\ntool sigs.k8s.io/kwok/cmd/kwok\n"
        ),
    }
    for name, text in modules.items():
        wrapper = HERE / name
        wrapper.mkdir(exist_ok=True)
        (wrapper / "go.mod").write_text(text)
        (wrapper / "go.sum").unlink(missing_ok=True)
        _log(f"go mod tidy in {wrapper}")
        _run_logged([_go(), "mod", "tidy"], wrapper, cache_root() / "logs" / "pin.log", env)
    _log("wrapper modules regenerated; commit hack/localcluster/*/go.{mod,sum}")


# --------------------------------------------------------------------------- certificates


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise ClusterError("the openssl command is missing: apt-get install -y openssl")
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _new_key(path: Path, rsa: bool = False) -> None:
    if rsa:
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path))
    else:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


def _issue(pki: Path, name: str, subject: str, usage: str, sans: str = "") -> None:
    """Issue ``name.crt``/``name.key`` signed by the local CA (1 year is plenty for tests)."""
    key, csr, crt, ext = (pki / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    _new_key(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if sans:
        lines.append(f"subjectAltName={sans}")
    ext.write_text("\n".join(lines) + "\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
        "-set_serial", str(secrets.randbits(63)), "-days", "365", "-sha256", "-extfile", str(ext),
        "-out", str(crt),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


def make_pki(pki: Path) -> None:
    """One ECDSA CA for serving and client certs, plus an RSA key pair to sign service-account tokens."""
    pki.mkdir(parents=True, exist_ok=True)
    _new_key(pki / "ca.key")
    _openssl(
        "req", "-x509", "-new", "-key", str(pki / "ca.key"), "-subj", "/CN=modelrollout-local-ca",
        "-days", "3650", "-sha256", "-out", str(pki / "ca.crt"),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    sans = f"IP:{LOOPBACK},IP:{SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," + (
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    )
    _issue(pki, "apiserver", "/CN=kube-apiserver", "serverAuth", sans)
    _issue(pki, "admin", "/O=system:masters/CN=modelrollout-admin", "clientAuth")
    _issue(pki, "controller-manager", "/CN=system:kube-controller-manager", "clientAuth")
    _issue(pki, "scheduler", "/CN=system:kube-scheduler", "clientAuth")
    _issue(pki, "kwok", "/O=system:masters/CN=kwok-controller", "clientAuth")
    _issue(pki, "serving", f"/CN={LOOPBACK}", "serverAuth", f"IP:{LOOPBACK},DNS:localhost")
    _new_key(pki / "sa.key", rsa=True)
    _openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    """Self-contained kubeconfig (certs embedded), JSON being valid YAML for every client."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "modelrollout-local",
                "cluster": {"server": server, "certificate-authority-data": _b64(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki / f"{user}.crt"),
                    "client-key-data": _b64(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "modelrollout-local", "context": {"cluster": "modelrollout-local", "user": user}}],
        "current-context": "modelrollout-local",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------- processes & state


@dataclass
class State:
    """What `up` started, saved to ``.local/cluster/state.json`` so other commands find it."""

    versions: dict[str, str]
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    ready: bool = False
    started_at: float = 0.0

    def save(self) -> None:
        (STATE_DIR / "state.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls) -> State | None:
        try:
            return cls(**json.loads((STATE_DIR / "state.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports['apiserver']}"


def _ssl_context(pki: Path, user: str | None = "admin") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if user:
        ctx.load_cert_chain(str(pki / f"{user}.crt"), str(pki / f"{user}.key"))
    return ctx


def _kubectl(layout: Layout, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(layout.binary("kubectl")), f"--kubeconfig={KUBECONFIG}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


LOCALLY_RUN_LABEL = "modelrollout.dev/smoke-kind"
LOCALLY_RUN_VALUE = "builtin"


def _leave_locally_run_pods(stage: str) -> str:
    """kwok completes Job pods at once; built-in smoke pods are run for real by the tests' local kubelet
    (e2e/harness/kubelet.py), which sets their outcome itself, so kwok must leave them Running."""
    if "name: pod-complete" not in stage:
        return stage
    anchor = "    matchExpressions:\n"
    extra = (
        f"    - key: '.metadata.labels[\"{LOCALLY_RUN_LABEL}\"]'\n"
        "      operator: 'NotIn'\n"
        "      values:\n"
        f"      - '{LOCALLY_RUN_VALUE}'\n"
    )
    return stage.replace(anchor, anchor + extra, 1)


def _stages_yaml(layout: Layout) -> str:
    """kwok's default node and fast pod stages, plus our on-demand Job failure stage."""
    docs = [_leave_locally_run_pods(p.read_text().strip()) for p in sorted((layout.kwok_dir / "stages").glob("*.yaml"))]
    docs.append((HERE / "stages" / "pod-simulate-failure.yaml").read_text().strip())
    return "\n---\n".join(docs) + "\n"


def _nodes_yaml() -> str:
    docs = []
    for name in NODE_NAMES:
        docs.append(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "type": "kwok",
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "node-role.kubernetes.io/agent": "",
                        },
                    },
                }
            )
        )
    return "\n---\n".join(docs) + "\n"


def _component_argv(layout: Layout, state: State) -> dict[str, list[str]]:
    pki = STATE_DIR / "pki"
    p = state.ports
    etcd_url = f"http://{LOOPBACK}:{p['etcd']}"
    peer_url = f"http://{LOOPBACK}:{p['etcd_peer']}"
    secure = ["--bind-address", LOOPBACK, "--tls-cert-file", str(pki / "serving.crt"),
              "--tls-private-key-file", str(pki / "serving.key")]  # fmt: skip
    return {
        "etcd": [
            str(layout.binary("etcd")), "--name=local", f"--data-dir={STATE_DIR / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=local={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
            "--quota-backend-bytes=2147483648",
        ],
        "kube-apiserver": [
            str(layout.binary("kube-apiserver")), f"--etcd-servers={etcd_url}",
            f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}", f"--secure-port={p['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC", "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--endpoint-reconciler-type=none", "--profiling=false",
            # Front-proxy settings only so components stop logging a missing CA bundle; no client
            # cert named front-proxy-client is ever issued, so nobody can use them.
            f"--requestheader-client-ca-file={pki / 'ca.crt'}", "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        ],
        "kube-controller-manager": [
            str(layout.binary("kube-controller-manager")),
            f"--kubeconfig={STATE_DIR / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={STATE_DIR / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={STATE_DIR / 'controller-manager.kubeconfig'}",
            *secure, f"--secure-port={p['controller_manager']}",
            f"--root-ca-file={pki / 'ca.crt'}", f"--service-account-private-key-file={pki / 'sa.key'}",
            "--use-service-account-credentials=true", f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--leader-elect=false", "--profiling=false",
        ],
        "kube-scheduler": [
            str(layout.binary("kube-scheduler")), f"--kubeconfig={STATE_DIR / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={STATE_DIR / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={STATE_DIR / 'scheduler.kubeconfig'}",
            *secure, f"--secure-port={p['scheduler']}", "--leader-elect=false", "--profiling=false",
        ],
        "kwok": [
            str(layout.binary("kwok")), f"--kubeconfig={STATE_DIR / 'kwok.kubeconfig'}",
            f"--config={STATE_DIR / 'kwok-stages.yaml'}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40", f"--cidr={POD_CIDR}", f"--node-ip={LOOPBACK}",
        ],
    }  # fmt: skip


def running_state() -> State | None:
    """The saved state when every component is alive and the API server answers /readyz."""
    state = State.load()
    if state is None or not state.ready:
        return None
    if not all(procs.is_ours(state.pids.get(name, -1), STATE_DIR) for name in COMPONENTS):
        return None
    code, _ = procs.http_get(f"{state.server}/readyz", _ssl_context(STATE_DIR / "pki"))
    return state if code == 200 else None


def _cleanup_stale() -> None:
    """Kill processes a killed run left behind (only ours, by pidfile + cmdline) and drop its state."""
    pids = procs.read_pidfiles(STATE_DIR)
    state = State.load()
    if state:
        pids.update({k: v for k, v in state.pids.items() if k not in pids})
    if pids:
        procs.stop_pids(pids, STATE_DIR, tuple(reversed(COMPONENTS)), timeout=10.0)
    if STATE_DIR.exists():
        shutil.rmtree(STATE_DIR)


def _install_crds(layout: Layout) -> None:
    files = sorted((layout.gateway_dir / "crds").glob("*.yaml"))
    files.append(HERE / "crds" / "istio-virtualservice.yaml")
    args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
    for path in files:
        args += ["-f", str(path)]
    _kubectl(layout, *args)
    _kubectl(layout, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


def up(layout: Layout, timeout: float = DEFAULT_START_TIMEOUT) -> State:
    """Start the control plane (building first if needed); harmless when already running."""
    with procs.file_lock(LOCK_FILE):
        state = running_state()
        if state is not None:
            _log(f"already running at {state.server} (kubeconfig {KUBECONFIG})")
            return state
        _cleanup_stale()
        build(layout)
        began = time.monotonic()
        STATE_DIR.mkdir(parents=True)
        make_pki(STATE_DIR / "pki")
        ports = procs.free_ports(["etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler"])
        state = State(versions=asdict(layout.versions), ports=ports, started_at=time.time())
        for user in ("admin", "controller-manager", "scheduler", "kwok"):
            path = KUBECONFIG if user == "admin" else STATE_DIR / f"{user}.kubeconfig"
            write_kubeconfig(path, state.server, STATE_DIR / "pki", user)
        (STATE_DIR / "kwok-stages.yaml").write_text(_stages_yaml(layout))
        running: dict[str, subprocess.Popen[bytes]] = {}
        try:
            _start(layout, state, running, timeout)
        except BaseException:
            for name in running:
                _log(f"--- {name} log tail ---\n{procs.log_tail(STATE_DIR, name, 10)}")
            pids = {n: p.pid for n, p in running.items()}
            procs.stop_pids(pids, STATE_DIR, tuple(reversed(COMPONENTS)), timeout=5.0)
            for proc in running.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1)
            raise
        state.ready = True
        state.save()
        _log(f"up in {time.monotonic() - began:.1f}s at {state.server}; kubeconfig {KUBECONFIG}")
        return state


def _start(layout: Layout, state: State, running: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    """Start the components in order and wait for a usable cluster (nodes Ready, CRDs, default SA).

    ``running`` is filled as processes start so the caller can stop them if anything fails.
    """
    argv = _component_argv(layout, state)
    ctx = _ssl_context(STATE_DIR / "pki")
    server = state.server

    def start(*names: str) -> None:
        for name in names:
            running[name] = procs.spawn(name, argv[name], STATE_DIR)
        state.pids = {n: p.pid for n, p in running.items()}
        state.save()

    def wait(what: str, check: Callable[[], bool]) -> None:
        procs.wait_until(what, check, running, STATE_DIR, timeout)

    start("etcd", "kube-apiserver")
    wait("etcd /health", lambda: procs.http_get(f"http://{LOOPBACK}:{state.ports['etcd']}/health")[0] == 200)
    wait("kube-apiserver /readyz", lambda: procs.http_get(f"{server}/readyz", ctx)[0] == 200)
    start("kube-controller-manager", "kube-scheduler", "kwok")
    _kubectl(layout, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", stdin=_nodes_yaml())
    _install_crds(layout)
    wait("Ready nodes", lambda: _nodes_ready(server, ctx))
    default_sa = f"{server}/api/v1/namespaces/default/serviceaccounts/default"
    wait("the default ServiceAccount", lambda: procs.http_get(default_sa, ctx)[0] == 200)


def _nodes_ready(server: str, ctx: ssl.SSLContext) -> bool:
    code, body = procs.http_get(f"{server}/api/v1/nodes", ctx)
    if code != 200:
        return False
    ready = 0
    for node in json.loads(body).get("items", []):
        conditions = node.get("status", {}).get("conditions", [])
        ready += any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready >= len(NODE_NAMES)


def down() -> None:
    """Stop every process we started (also those of a killed run) and remove the state folder."""
    with procs.file_lock(LOCK_FILE):
        _cleanup_stale()


def status(layout: Layout) -> int:
    """Print what runs; exit 0 only when the cluster is up and ready."""
    state = State.load()
    if state is None:
        print("not running (no state)")
        return 1
    for name in COMPONENTS:
        pid = state.pids.get(name)
        alive = pid is not None and procs.is_ours(pid, STATE_DIR)
        print(f"{name:24} pid {pid!s:8} {'running' if alive else 'NOT running'}")
    ok = running_state() is not None
    print(f"api server   {state.server} ({'ready' if ok else 'not ready'})")
    print(f"kubeconfig   {KUBECONFIG}")
    print(f"versions     {state.versions}")
    print(f"binaries     {layout.bin_dir} ({'built' if layout.is_built() else 'not built'})")
    return 0 if ok else 1


def env_lines(layout: Layout) -> list[str]:
    """Shell lines for ``eval "$(cluster.py env)"``."""
    return [f"export KUBECONFIG={KUBECONFIG}", f'export PATH="{layout.bin_dir}:$PATH"']


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pin", help="regenerate wrapper go.mod/go.sum from versions.env")
    sub.add_parser("build", help="build and cache the binaries (no-op when cached)")
    up_parser = sub.add_parser("up", help="start the control plane (builds first if needed)")
    up_parser.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT)
    sub.add_parser("down", help="stop every process and remove the state")
    sub.add_parser("status", help="show what runs; exit 1 unless ready")
    sub.add_parser("env", help="print export lines for KUBECONFIG and PATH")
    args = parser.parse_args(argv)
    try:
        layout = Layout.current()
        if args.command == "pin":
            pin(layout.versions)
        elif args.command == "build":
            build(layout)
            print(layout.bin_dir)
        elif args.command == "up":
            up(layout, timeout=args.timeout)
        elif args.command == "down":
            down()
        elif args.command == "status":
            return status(layout)
        elif args.command == "env":
            print("\n".join(env_lines(layout)))
    except ClusterError as err:
        print(f"localcluster: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
