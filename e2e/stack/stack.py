#!/usr/bin/env python3
"""A real Kubernetes control plane, MLflow and S3 on loopback, for e2e tests and the demo.

    python e2e/stack/stack.py up|down|status|env

``up`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok (fake nodes and pod lifecycles), the pod runner (runs pods labelled
``trailboss.dev/run-locally=true`` as local processes), an MLflow tracking
server and an S3 server (MinIO when it was built, otherwise moto), then waits
until each one is healthy. ``down`` stops them by PID. The binaries come from
``e2e/stack/build.sh`` (``make stack-build``); everything the stack writes goes
to the state directory (``$TRAILBOSS_STACK_DIR``, default
``~/.cache/trailboss/stack``). See README.md next to this file.

Run it with the project's interpreter (``.venv/bin/python``): MLflow, moto and
the pod runner are started with the same interpreter.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE_DIR = Path(os.environ.get("TRAILBOSS_CACHE", Path.home() / ".cache" / "trailboss"))
BIN_DIR = CACHE_DIR / "bin"
STATE_DIR = Path(os.environ.get("TRAILBOSS_STACK_DIR", CACHE_DIR / "stack"))

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the "kubernetes" Service
FAKE_NODES = ("kwok-node-0", "kwok-node-1")
FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
BUCKETS = ("mlflow", "datasets")
REGION = "us-east-1"

# Every controller a Job, CronJob, Deployment, StatefulSet or Service needs,
# plus namespace and garbage collection; none that need kubelets or a cloud.
CONTROLLERS = (
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "disruption-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "pod-garbage-collector-controller",
    "resourcequota-controller",
    "service-cidr-controller",
)

# Start order; `down` goes the other way.
ORDER = (
    "s3",
    "mlflow",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "podrunner",
)
GO_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)


class StackError(Exception):
    """Something the user has to fix; printed without a traceback."""


# --------------------------------------------------------------------------- paths


class Paths:
    """Where the stack keeps pids, logs, certificates, data and client configs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run = root / "run"  # <component>.pid
        self.logs = root / "logs"  # <component>.log
        self.certs = root / "certs"
        self.data = root / "data"  # etcd, MLflow's SQLite, MinIO, serving certs
        self.kubeconfig = root / "kubeconfig"  # cluster admin
        self.env = root / "env"  # export K=V lines, printed by `env`
        self.state = root / "state.json"  # ports, S3 backend and credentials

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def kubeconfig_for(self, user: str) -> Path:
        return self.root / "kubeconfigs" / f"{user}.kubeconfig"


P = Paths(STATE_DIR)


# --------------------------------------------------------------------------- processes


def _proc_start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot, or None if it is gone.

    Stored next to each PID so that `down` never signals a process that merely
    reused the number after ours exited.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # exited, waiting to be reaped
        return None
    return int(fields[19])


@dataclass
class Running:
    name: str
    pid: int
    ticks: int

    def alive(self) -> bool:
        return _proc_start_ticks(self.pid) == self.ticks


def read_pid(name: str) -> Running | None:
    try:
        data = json.loads(P.pidfile(name).read_text())
    except (OSError, ValueError):
        return None
    return Running(name, int(data["pid"]), int(data["ticks"]))


def spawn(
    name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a component in its own session (so its children die with it)."""
    P.logs.mkdir(parents=True, exist_ok=True)
    P.run.mkdir(parents=True, exist_ok=True)
    log = P.log(name).open("ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd or P.root,
        start_new_session=True,
    )
    log.close()
    ticks = _proc_start_ticks(proc.pid) or 0
    P.pidfile(name).write_text(json.dumps({"pid": proc.pid, "ticks": ticks, "argv": argv}))
    return proc


def stop(name: str, grace: float = 10.0) -> bool:
    """SIGTERM the component's process group, SIGKILL it after `grace` seconds."""
    running = read_pid(name)
    P.pidfile(name).unlink(missing_ok=True)
    if running is None or not running.alive():
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(running.pid, os.WNOHANG)  # reap it when we are its parent
            if not running.alive() and not _group_alive(running.pid):
                return True
            time.sleep(0.1)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; look for a live member.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def log_tail(name: str, lines: int = 25) -> str:
    try:
        text = P.log(name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- ports


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(names: list[str], previous: dict[str, int]) -> dict[str, int]:
    """Reuse last run's ports when they are still free (stable URLs), else new ones."""
    ports: dict[str, int] = {}
    for name in names:
        old = previous.get(name)
        if old and old not in ports.values() and port_free(old):
            ports[name] = old
            continue
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in ports.values():
                ports[name] = port
                break
    return ports


PORT_NAMES = [
    "etcd",
    "etcd-peer",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "mlflow",
    "s3",
    "s3-console",
]


# --------------------------------------------------------------------------- certificates


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _issue(name: str, subject: str, ext: str) -> None:
    """A key and a certificate signed by the stack's CA."""
    d = P.certs
    _openssl(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(d / f"{name}.key"),
        "-subj",
        subject,
        "-out",
        str(d / f"{name}.csr"),
    )
    (d / f"{name}.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n" + ext
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(d / f"{name}.csr"),
        "-CA",
        str(d / "ca.crt"),
        "-CAkey",
        str(d / "ca.key"),
        "-CAcreateserial",
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        str(d / f"{name}.ext"),
        "-out",
        str(d / f"{name}.crt"),
    )
    (d / f"{name}.csr").unlink()


# Client identities: file name -> subject. The names are the ones Kubernetes'
# bootstrap RBAC policy grants rights to.
CLIENTS = {
    "admin": "/O=system:masters/CN=trailboss-admin",
    "kube-controller-manager": "/CN=system:kube-controller-manager",
    "kube-scheduler": "/CN=system:kube-scheduler",
    # kwok writes status of nodes and pods and manages node leases: cluster admin.
    "kwok": "/O=system:masters/CN=kwok-controller",
    # How the API server proves itself to aggregated API servers.
    "front-proxy-client": "/CN=front-proxy-client",
}


def ensure_certs() -> None:
    """CA, API server serving cert, client certs and the service-account key, once."""
    d = P.certs
    d.mkdir(parents=True, exist_ok=True)
    if (d / "complete").exists():
        return
    _openssl(
        "req",
        "-x509",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=trailboss-local-ca",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.crt"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )
    sans = [
        "IP:127.0.0.1",
        f"IP:{SERVICE_IP}",
        "DNS:localhost",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
    ]
    _issue(
        "kube-apiserver",
        "/CN=kube-apiserver",
        f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(sans)}\n",
    )
    for name, subject in CLIENTS.items():
        _issue(name, subject, "extendedKeyUsage=clientAuth\n")
    _openssl("genrsa", "-out", str(d / "sa.key"), "2048")
    _openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))
    for key in d.glob("*.key"):
        key.chmod(0o600)
    (d / "complete").write_text("")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, user: str, server: str) -> None:
    """A self-contained kubeconfig (certificates inlined) for one client identity."""
    d = P.certs
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "trailboss",
                "cluster": {"server": server, "certificate-authority-data": _b64(d / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(d / f"{user}.crt"),
                    "client-key-data": _b64(d / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "trailboss", "context": {"cluster": "trailboss", "user": user}}],
        "current-context": "trailboss",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML; no dependency needed to write it.
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------- HTTP


def _admin_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(P.certs / "ca.crt"))
    ctx.load_cert_chain(str(P.certs / "admin.crt"), str(P.certs / "admin.key"))
    return ctx


def _insecure_tls() -> ssl.SSLContext:
    # Controller-manager and scheduler serve /healthz with a self-signed cert.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http(
    method: str,
    url: str,
    body: object | None = None,
    tls: ssl.SSLContext | None = None,
    timeout: float = 3.0,
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_ok(url: str, tls: ssl.SSLContext | None = None, expect: bytes | None = None) -> bool:
    try:
        status, body = http("GET", url, tls=tls, timeout=2.0)
    except (OSError, ValueError):
        return False
    return status == 200 and (expect is None or expect in body)


# --------------------------------------------------------------------------- state


@dataclass
class State:
    ports: dict[str, int] = field(default_factory=dict)
    s3_backend: str = ""
    access_key: str = ""
    secret_key: str = ""

    @classmethod
    def load(cls) -> State:
        try:
            return cls(**json.loads(P.state.read_text()))
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self) -> None:
        P.root.mkdir(parents=True, exist_ok=True)
        P.state.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        P.state.chmod(0o600)

    def url(self, name: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[name]}"

    def env(self) -> dict[str, str]:
        """What tests, the operator and a shell need to reach the stack."""
        s3 = self.url("s3")
        return {
            "KUBECONFIG": str(P.kubeconfig),
            "MLFLOW_TRACKING_URI": self.url("mlflow"),
            "MLFLOW_S3_ENDPOINT_URL": s3,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": s3,
            "TRAILBOSS_S3_ENDPOINT_URL": s3,
            "TRAILBOSS_S3_ENDPOINT": s3,
            "TRAILBOSS_S3_BACKEND": self.s3_backend,
            "TRAILBOSS_STACK_DIR": str(P.root),
            "TRAILBOSS_STACK_BIN": str(BIN_DIR),
        }


def write_env_file(state: State) -> None:
    lines = [f"export {k}={_shell_quote(v)}" for k, v in state.env().items()]
    # The stack's own kubectl and helm first, matching the API server's version.
    lines.append(f'export PATH={_shell_quote(str(BIN_DIR))}:"$PATH"')
    P.env.write_text("\n".join(lines) + "\n")
    P.env.chmod(0o600)


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


# --------------------------------------------------------------------------- components


@dataclass
class Component:
    name: str
    argv: Callable[[State], list[str]]
    healthy: Callable[[State], bool]
    timeout: float = 60.0
    env: Callable[[State], dict[str, str]] = lambda _state: {}
    port: str | None = None


def _etcd(st: State) -> list[str]:
    client, peer = st.url("etcd"), st.url("etcd-peer")
    return [
        str(BIN_DIR / "etcd"),
        "--name",
        "trailboss",
        "--data-dir",
        str(P.data / "etcd"),
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        f"trailboss={peer}",
        "--initial-cluster-state",
        "new",
        # Throw-away test data: durability is not worth the fsyncs.
        "--unsafe-no-fsync",
        "--quota-backend-bytes",
        str(2 * 1024**3),
        "--log-level",
        "warn",
    ]


def _apiserver(st: State) -> list[str]:
    c = P.certs
    return [
        str(BIN_DIR / "kube-apiserver"),
        "--etcd-servers",
        st.url("etcd"),
        "--bind-address",
        "127.0.0.1",
        "--advertise-address",
        "127.0.0.1",
        "--secure-port",
        str(st.ports["kube-apiserver"]),
        "--tls-cert-file",
        str(c / "kube-apiserver.crt"),
        "--tls-private-key-file",
        str(c / "kube-apiserver.key"),
        "--client-ca-file",
        str(c / "ca.crt"),
        "--service-account-issuer",
        "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file",
        str(c / "sa.pub"),
        "--service-account-signing-key-file",
        str(c / "sa.key"),
        "--authorization-mode",
        "Node,RBAC",
        # No node-lifecycle controller runs (there are no kubelets to watch), so
        # nothing would lift the not-ready taint this plugin puts on new nodes.
        "--disable-admission-plugins",
        "TaintNodesByCondition",
        # Pod logs and exec go to a node's kubelet. The fake nodes have none; by
        # their InternalIP (127.0.0.1) such a request is refused on loopback,
        # whereas by hostname the API server would ask the machine's DNS.
        "--kubelet-preferred-address-types",
        "InternalIP",
        # The front-proxy settings that controller-manager and scheduler read for
        # their delegated authentication (and that aggregated API servers need).
        "--requestheader-client-ca-file",
        str(c / "ca.crt"),
        "--requestheader-allowed-names",
        "front-proxy-client",
        "--requestheader-username-headers",
        "X-Remote-User",
        "--requestheader-group-headers",
        "X-Remote-Group",
        "--requestheader-extra-headers-prefix",
        "X-Remote-Extra-",
        "--proxy-client-cert-file",
        str(c / "front-proxy-client.crt"),
        "--proxy-client-key-file",
        str(c / "front-proxy-client.key"),
        "--service-cluster-ip-range",
        SERVICE_CIDR,
        "--allow-privileged=true",
        # The "kubernetes" Service cannot point at a loopback address; nothing
        # in this stack reaches the API server through it anyway.
        "--endpoint-reconciler-type",
        "none",
        "--profiling=false",
        "--cert-dir",
        str(P.data / "kube-apiserver"),
    ]


def _serving_flags(name: str, st: State) -> list[str]:
    kubeconfig = str(P.kubeconfig_for(name))
    return [
        "--kubeconfig",
        kubeconfig,
        "--authentication-kubeconfig",
        kubeconfig,
        "--authorization-kubeconfig",
        kubeconfig,
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        str(st.ports[name]),
        "--cert-dir",
        str(P.data / name),
        "--leader-elect=false",
    ]


def _controller_manager(st: State) -> list[str]:
    c = P.certs
    return [
        str(BIN_DIR / "kube-controller-manager"),
        *_serving_flags("kube-controller-manager", st),
        "--controllers",
        ",".join(CONTROLLERS),
        # Each controller acts as its own service account, as kubeadm sets it up.
        "--use-service-account-credentials=true",
        "--service-account-private-key-file",
        str(c / "sa.key"),
        "--root-ca-file",
        str(c / "ca.crt"),
        "--cluster-name",
        "trailboss",
    ]


def _scheduler(st: State) -> list[str]:
    return [str(BIN_DIR / "kube-scheduler"), *_serving_flags("kube-scheduler", st)]


def _kwok(_st: State) -> list[str]:
    stages = [str(p) for p in sorted((HERE / "kwok").glob("*.yaml"))]
    return [
        str(BIN_DIR / "kwok"),
        "--kubeconfig",
        str(P.kubeconfig_for("kwok")),
        *(a for s in stages for a in ("--config", s)),
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector",
        "=".join(FAKE_NODE_ANNOTATION),
        "--node-ip",
        "127.0.0.1",
        "--cidr",
        "10.244.0.1/16",
        "--node-lease-duration-seconds",
        "40",
    ]


def _mlflow(st: State) -> list[str]:
    # Artifacts go straight to S3 (no proxying through the tracking server):
    # runs get real s3://mlflow/... artifact URIs that the operator, training
    # processes and model servers all read and write with their own S3
    # credentials, as they would against a production MLflow and bucket.
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(st.ports["mlflow"]),
        "--backend-store-uri",
        f"sqlite:///{P.data / 'mlflow' / 'mlflow.db'}",
        "--default-artifact-root",
        "s3://mlflow/",
        "--no-serve-artifacts",
        "--workers",
        os.environ.get("TRAILBOSS_MLFLOW_WORKERS", "1"),
    ]


def _mlflow_env(st: State) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": st.access_key,
        "AWS_SECRET_ACCESS_KEY": st.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_S3_ENDPOINT_URL": st.url("s3"),
        # The GenAI job workers (scorers, trace archival) are of no use here and
        # cost half a dozen processes.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def _s3(st: State) -> list[str]:
    if st.s3_backend == "minio":
        return [
            str(BIN_DIR / "minio"),
            "server",
            str(P.data / "minio"),
            "--address",
            f"127.0.0.1:{st.ports['s3']}",
            "--console-address",
            f"127.0.0.1:{st.ports['s3-console']}",
            "--quiet",
        ]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(st.ports["s3"])]


def _s3_env(st: State) -> dict[str, str]:
    return {
        "MINIO_ROOT_USER": st.access_key,
        "MINIO_ROOT_PASSWORD": st.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_REGION": REGION,
    }


def s3_client(st: State, timeout: float = 2.0) -> Any:
    import boto3  # only here: `down` must work without it
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=st.url("s3"),
        region_name=REGION,
        aws_access_key_id=st.access_key,
        aws_secret_access_key=st.secret_key,
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )


def _s3_healthy(st: State) -> bool:
    """The S3 API answers ListBuckets with the stack's credentials."""
    try:
        s3_client(st).list_buckets()
    except Exception:  # any failure means "not yet"; the log tells why
        return False
    return True


def _podrunner(_st: State) -> list[str]:
    return [
        sys.executable,
        str(HERE / "podrunner.py"),
        "--kubeconfig",
        str(P.kubeconfig),
        "--state-dir",
        str(P.root),
    ]


COMPONENTS = {
    c.name: c
    for c in (
        Component("s3", _s3, _s3_healthy, env=_s3_env, port="s3"),
        Component(
            "mlflow",
            _mlflow,
            lambda st: http_ok(st.url("mlflow") + "/health", expect=b"OK"),
            timeout=120.0,
            env=_mlflow_env,
            port="mlflow",
        ),
        Component(
            "etcd",
            _etcd,
            lambda st: http_ok(st.url("etcd") + "/health", expect=b"true"),
            port="etcd",
        ),
        Component(
            "kube-apiserver",
            _apiserver,
            lambda st: http_ok(st.url("kube-apiserver", "https") + "/readyz", tls=_admin_tls()),
            timeout=90.0,
            port="kube-apiserver",
        ),
        Component(
            "kube-controller-manager",
            _controller_manager,
            lambda st: http_ok(
                st.url("kube-controller-manager", "https") + "/healthz", tls=_insecure_tls()
            ),
            port="kube-controller-manager",
        ),
        Component(
            "kube-scheduler",
            _scheduler,
            lambda st: http_ok(st.url("kube-scheduler", "https") + "/healthz", tls=_insecure_tls()),
            port="kube-scheduler",
        ),
        Component("kwok", _kwok, lambda st: nodes_ready(st)),
        Component("podrunner", _podrunner, lambda _st: True),
    )
}


# --------------------------------------------------------------------------- cluster objects


def api(st: State, method: str, path: str, body: object | None = None) -> tuple[int, object]:
    status, raw = http(method, st.url("kube-apiserver", "https") + path, body, tls=_admin_tls())
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def kube_version() -> str:
    try:
        stamp = (BIN_DIR / ".stamps" / "kube-apiserver").read_text().split()
        return stamp[1]
    except (OSError, IndexError):
        return "unknown"


def create_fake_nodes(st: State) -> None:
    """Node objects kwok adopts by their annotation; it then plays the node stages."""
    for name in FAKE_NODES:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {
                    FAKE_NODE_ANNOTATION[0]: FAKE_NODE_ANNOTATION[1],
                    "node.alpha.kubernetes.io/ttl": "0",
                    "trailboss.dev/kubelet-version": kube_version(),
                },
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            # Room for the GPU requests TrainingRuns may carry.
            "status": {
                "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "4"},
                "allocatable": {
                    "cpu": "16",
                    "memory": "64Gi",
                    "pods": "110",
                    "nvidia.com/gpu": "4",
                },
            },
        }
        status, body = api(st, "POST", "/api/v1/nodes", node)
        if status not in (201, 409):
            raise StackError(f"creating node {name}: HTTP {status}: {body}")


def nodes_ready(st: State) -> bool:
    try:
        status, body = api(st, "GET", "/api/v1/nodes")
    except OSError:
        return False
    if status != 200 or not isinstance(body, dict):
        return False
    ready = {
        n["metadata"]["name"]
        for n in body.get("items", [])
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in n.get("status", {}).get("conditions", [])
        )
    }
    return set(FAKE_NODES) <= ready


def create_buckets(st: State) -> None:
    s3 = s3_client(st, timeout=10.0)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in BUCKETS:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)


# --------------------------------------------------------------------------- commands


def running_components() -> dict[str, Running]:
    found = {}
    for name in ORDER:
        r = read_pid(name)
        if r is not None and r.alive():
            found[name] = r
    return found


def choose_s3_backend(requested: str) -> str:
    has_minio = (BIN_DIR / "minio").exists()
    has_moto = importlib.util.find_spec("moto") is not None
    if requested == "minio" and not has_minio:
        raise StackError(
            f"S3 backend minio requested but {BIN_DIR / 'minio'} is missing "
            "(make stack-build; see e2e/stack/README.md if MinIO does not build)"
        )
    if requested == "moto" and not has_moto:
        raise StackError(
            "S3 backend moto requested but moto is not installed in "
            f"{sys.executable} (pip install 'moto[server]')"
        )
    if requested in ("minio", "moto"):
        return requested
    if has_minio:
        return "minio"
    if has_moto:
        return "moto"
    raise StackError("no S3 server: neither the MinIO binary nor moto[server] is available")


def preflight() -> None:
    missing = [b for b in GO_BINARIES if not (BIN_DIR / b).exists()]
    if missing:
        raise StackError(
            f"missing {', '.join(missing)} in {BIN_DIR}: run `make stack-build` "
            "(e2e/stack/build.sh) first"
        )
    for module in ("mlflow", "boto3", "yaml"):
        if importlib.util.find_spec(module) is None:
            raise StackError(
                f"{module} is not importable by {sys.executable}: run the stack "
                "with the project's venv (make dev; .venv/bin/python)"
            )
    if shutil.which("openssl") is None:
        raise StackError("openssl is needed to make the stack's certificates")


def wait_healthy(
    names: list[str], st: State, procs: dict[str, subprocess.Popen[bytes]], since: float
) -> None:
    pending = {n: time.monotonic() + COMPONENTS[n].timeout for n in names}
    while pending:
        for name, deadline in list(pending.items()):
            proc = procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"{name} exited with code {proc.returncode}; "
                    f"last lines of {P.log(name)}:\n{log_tail(name)}"
                )
            if COMPONENTS[name].healthy(st):
                del pending[name]
                print(f"  {name:<24} ready at {time.monotonic() - since:4.1f}s")
            elif time.monotonic() > deadline:
                raise StackError(
                    f"{name} not healthy after {COMPONENTS[name].timeout:.0f}s; "
                    f"last lines of {P.log(name)}:\n{log_tail(name)}"
                )
        time.sleep(0.2)


def cmd_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    running = running_components()
    if running:
        if set(running) == set(ORDER):
            print(f"stack already up ({P.root}); `stack.py env` prints its environment")
            return 0
        print(f"stack partly up ({', '.join(running)}); restarting it")
        stop_all(quiet=True)

    st = State.load()
    st.s3_backend = choose_s3_backend(args.s3 or os.environ.get("TRAILBOSS_S3_BACKEND", "auto"))
    preflight()
    for d in (P.run, P.logs, P.data / "mlflow", P.data / "etcd", P.root / "podlogs"):
        d.mkdir(parents=True, exist_ok=True)
    if not st.access_key:
        # Fixed for the life of the state directory; handed out by `env`, never in code.
        st.access_key = "trailboss-" + secrets.token_hex(4)
        st.secret_key = secrets.token_urlsafe(24)
    st.ports = pick_ports(PORT_NAMES, st.ports)
    st.save()
    ensure_certs()
    server = st.url("kube-apiserver", "https")
    write_kubeconfig(P.kubeconfig, "admin", server)
    for user in ("kube-controller-manager", "kube-scheduler", "kwok"):
        write_kubeconfig(P.kubeconfig_for(user), user, server)

    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(*names: str) -> None:
        for name in names:
            c = COMPONENTS[name]
            procs[name] = spawn(name, c.argv(st), c.env(st))

    print(f"starting the stack in {P.root} (S3: {st.s3_backend})")
    try:
        # The Python servers are the slowest to come up: start them first.
        start("s3", "mlflow", "etcd")
        wait_healthy(["etcd"], st, procs, started)
        start("kube-apiserver")
        wait_healthy(["kube-apiserver"], st, procs, started)
        start("kube-controller-manager", "kube-scheduler", "kwok")
        create_fake_nodes(st)
        wait_healthy(
            ["kube-controller-manager", "kube-scheduler", "kwok", "s3"], st, procs, started
        )
        create_buckets(st)
        start("podrunner")
        wait_healthy(["mlflow"], st, procs, started)
        if procs["podrunner"].poll() is not None:
            raise StackError(f"podrunner exited; last lines of its log:\n{log_tail('podrunner')}")
    except (StackError, KeyboardInterrupt):
        print(
            f"stack failed to start; stopping what was started (logs kept in {P.logs})",
            file=sys.stderr,
        )
        stop_all(quiet=True)
        raise
    write_env_file(st)
    print(
        f"kubeconfig: {P.kubeconfig}\nmlflow:     {st.url('mlflow')}\n"
        f"s3:         {st.url('s3')} ({st.s3_backend})\n"
        f'env:        {P.env}  (source it, or eval "$(stack.py env)")'
    )
    print(f"stack up in {time.monotonic() - started:.1f}s")
    return 0


OPERATOR = "operator"


def stop_all(quiet: bool = False) -> list[str]:
    stopped = []
    for name in (OPERATOR, *reversed(ORDER)):
        t0 = time.monotonic()
        if stop(name):
            stopped.append(name)
            if not quiet:
                print(f"  stopped {name} ({time.monotonic() - t0:.1f}s)")
    return stopped


def cmd_down(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stopped = stop_all()
    st = State.load()
    busy = [f"{n}:{p}" for n, p in st.ports.items() if not port_free(p)]
    P.env.unlink(missing_ok=True)
    if args.purge and P.root.exists():
        shutil.rmtree(P.root)
        print(f"  removed {P.root}")
    if not stopped:
        print("stack was not running")
    else:
        print(f"stack down in {time.monotonic() - started:.1f}s")
    if busy:
        print(f"warning: ports still in use: {', '.join(busy)}", file=sys.stderr)
        return 1
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    st = State.load()
    all_ok = True
    print(f"state: {P.root}")
    for name in ORDER:
        r = read_pid(name)
        alive = r is not None and r.alive()
        port = st.ports.get(COMPONENTS[name].port or "")
        try:
            healthy = alive and bool(st.ports) and COMPONENTS[name].healthy(st)
        except (OSError, ValueError):
            healthy = False
        all_ok &= healthy
        state = "healthy" if healthy else ("running, unhealthy" if alive else "stopped")
        print(
            f"  {name:<24} {state:<20} pid={r.pid if alive and r else '-':<8} "
            f"port={port or '-':<6} log={P.log(name)}"
        )
    return 0 if all_ok else 1


def cmd_env(_args: argparse.Namespace) -> int:
    if not P.env.exists() or not running_components():
        print("stack is not up: run `python e2e/stack/stack.py up`", file=sys.stderr)
        return 1
    sys.stdout.write(P.env.read_text())
    return 0


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """One `up` or `down` at a time per state directory (parallel test workers)."""
    P.root.parent.mkdir(parents=True, exist_ok=True)
    with open(P.root.parent / f".{P.root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop one component (tests use it to simulate an outage)."""
    stopped = stop(args.name)
    print(f"{args.name}: {'stopped' if stopped else 'was not running'}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Start one component of a running stack again and wait until it is healthy."""
    started = time.monotonic()
    running = read_pid(args.name)
    if running is not None and running.alive():
        print(f"{args.name}: already running")
        return 0
    st = State.load()
    component = COMPONENTS[args.name]
    procs = {args.name: spawn(args.name, component.argv(st), component.env(st))}
    wait_healthy([args.name], st, procs, started)
    return 0


def cmd_start_operator(args: argparse.Namespace) -> int:
    """Run a command (the operator) as part of the stack, so `down` stops it too.
    It inherits this process's environment; its log is logs/operator.log."""
    argv = [a for a in args.argv if a != "--"]
    if not argv:
        raise StackError("start-operator needs a command after --")
    stop(OPERATOR)
    proc = spawn(OPERATOR, argv, cwd=HERE.parents[1])
    time.sleep(3)
    if proc.poll() is not None:
        raise StackError(f"the operator exited with {proc.returncode}:\n{log_tail(OPERATOR)}")
    print(f"operator running (pid {proc.pid}, log {P.log(OPERATOR)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack (no-op when it is up)")
    up.add_argument(
        "--s3",
        choices=("auto", "minio", "moto"),
        help="S3 server (default: $TRAILBOSS_S3_BACKEND or auto: MinIO if built)",
    )
    down = sub.add_parser("down", help="stop the stack")
    down.add_argument(
        "--purge",
        action="store_true",
        help="also delete the state directory (cluster, MLflow and S3 data)",
    )
    sub.add_parser("status", help="show each component")
    sub.add_parser("env", help="print `export K=V` lines for the stack")
    for verb, helptext in (("stop", "stop one component"), ("start", "start one component")):
        one = sub.add_parser(verb, help=helptext)
        one.add_argument("name", choices=(*ORDER, OPERATOR) if verb == "stop" else ORDER)
    operator = sub.add_parser("start-operator", help="run COMMAND as the stack's operator")
    operator.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    args = parser.parse_args(argv)
    handler = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "env": cmd_env,
        "stop": cmd_stop,
        "start": cmd_start,
        "start-operator": cmd_start_operator,
    }
    try:
        if args.command in ("up", "down"):
            with exclusive():
                return handler[args.command](args)
        return handler[args.command](args)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
