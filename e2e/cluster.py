"""Helpers the end-to-end tests share: the cluster, the operator process, waiting."""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from e2e.stack.localstack.settings import BIN_DIR, BUCKETS
from trailboss.builders.labels import OPERATOR_INSTANCE_LABEL

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "e2e" / "stack" / "stack.py"
GROUP, VERSION = "trailboss.dev", "v1alpha1"
RUN_LOCALLY = "trailboss.dev/run-locally"
T = TypeVar("T")


class SharedComponents:
    """What every e2e test shares (the operator, MLflow, S3, the stack itself), and who
    may stop it.

    Most tests run side by side on one stack; a test that stops, starts or kills a shared
    component would break the tests beside it, so it must be marked
    ``@pytest.mark.disruptive`` and run after them, alone. The e2e conftest turns the check
    on for every test; benchmarks and the demo, which own their stack, never do.
    """

    enforced = False
    allowed = False

    @classmethod
    @contextlib.contextmanager
    def restoring(cls) -> Iterator[None]:
        """Starting or stopping what the tests share for them, not against them: the
        session's set-up and clean-up, and restarting an operator a test left dead."""
        before, cls.allowed = cls.allowed, True
        try:
            yield
        finally:
            cls.allowed = before

    @classmethod
    def check(cls, what: str) -> None:
        if cls.enforced and not cls.allowed:
            raise AssertionError(
                f"{what}: every e2e test shares it. Mark the test @pytest.mark.disruptive "
                "(disruptive tests run alone, after the others)"
            )


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 120.0, interval: float = 0.5
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Cluster:
    """The API server under test and the MLflow / S3 the operator is pointed at."""

    env: dict[str, str]
    kubectl_bin: str
    api: client.ApiClient = field(init=False)

    def __post_init__(self) -> None:
        self.api = config.new_client_from_config(config_file=self.env["KUBECONFIG"])
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_bin, "--kubeconfig", self.env["KUBECONFIG"], *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    # Custom resources --------------------------------------------------------

    def create(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        plural = manifest["kind"].lower() + "s"
        return _dict(
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, manifest)
        )

    def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        try:
            result = _dict(
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return result

    def list(self, namespace: str, plural: str) -> builtins.list[dict[str, Any]]:
        found = _dict(self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural))
        items: builtins.list[dict[str, Any]] = found["items"]
        return items

    def delete(self, namespace: str, plural: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)

    def uid(self, namespace: str, plural: str, name: str) -> str:
        obj = self.get(namespace, plural, name)
        assert obj is not None, f"{plural}/{name} does not exist"
        uid: str = obj["metadata"]["uid"]
        return uid

    def install_crds(self) -> None:
        """The committed CRDs, applied as a user would, and Established."""
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=trailboss",
        )

    def status(self, namespace: str, plural: str, name: str) -> dict[str, Any]:
        obj = self.get(namespace, plural, name) or {}
        status: dict[str, Any] = obj.get("status") or {}
        return status

    def wait_phase(
        self, namespace: str, plural: str, name: str, phases: set[str], timeout: float = 180.0
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(namespace, plural, name)
            return status if status.get("phase") in phases else None

        return wait_for(f"{plural}/{name} in {sorted(phases)}", reached, timeout)

    def wait_reason(
        self, namespace: str, plural: str, name: str, reason: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Wait until the object's Ready condition has ``reason``; its status then."""

        def reached() -> dict[str, Any] | None:
            status = self.status(namespace, plural, name)
            return status if ready(status).get("reason") == reason else None

        return wait_for(f"{plural}/{name} Ready reason {reason}", reached, timeout)

    def events(self, namespace: str, name: str) -> builtins.list[Any]:
        events = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        return list(events.items)

    def jobs(self, namespace: str) -> builtins.list[Any]:
        return list(self.batch.list_namespaced_job(namespace).items)


def _dict(value: object) -> dict[str, Any]:
    """The custom objects API answers with plain dicts, typed as object."""
    assert isinstance(value, dict), value
    return value


def ready(status: dict[str, Any]) -> dict[str, Any]:
    """The Ready condition of a status, or {} before there is one."""
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def stack_dir() -> Path:
    default = Path.home() / ".cache" / "trailboss" / "stack"
    return Path(os.environ.get("TRAILBOSS_STACK_DIR", default))


def local_stack_env() -> dict[str, str]:
    """The environment of the running local stack (its `env` file)."""
    return read_env_file(stack_dir() / "env")


def scrape_operator(port: int, name: str = "operator") -> None:
    """Point the local stack's Prometheus at an operator on loopback: the same
    file-based target `stack.py start-operator` writes (Prometheus watches it)."""
    targets = stack_dir() / "prometheus" / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    group = [{"targets": [f"127.0.0.1:{port}"], "labels": {"component": "operator"}}]
    (targets / f"{name}.json").write_text(json.dumps(group) + "\n")


def stop_scraping(name: str) -> None:
    (stack_dir() / "prometheus" / "targets" / f"{name}.json").unlink(missing_ok=True)


class OwnMlflow:
    """`mlflow server` as a process of one test's own, on the stack's MLflow host
    (pods reach it there) with a registry in ``data`` and artifacts in the S3 of
    ``stack_env``, so the test can stop it without touching the stack's MLflow."""

    def __init__(self, stack_env: dict[str, str], data: Path) -> None:
        host = urllib.parse.urlsplit(stack_env["MLFLOW_TRACKING_URI"]).hostname or "127.0.0.1"
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.env = {**stack_env, "MLFLOW_TRACKING_URI": self.url}
        """The stack's environment with this server for MLflow."""
        self.data = data
        self.data.mkdir(parents=True, exist_ok=True)
        self._host = host
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        command = [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--host", self._host, "--port", str(self.port)),
            *("--backend-store-uri", f"sqlite:///{self.data / 'mlflow.db'}"),
            *("--default-artifact-root", "s3://mlflow/", "--no-serve-artifacts"),
            *("--workers", "1"),
        ]
        env = {
            **os.environ,
            **self.env,
            "MLFLOW_S3_ENDPOINT_URL": self.env.get("AWS_ENDPOINT_URL_S3", ""),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        log = (self.data / "server.log").open("ab")
        self.proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(f"MLflow at {self.url}", self._healthy, 120, interval=1)

    def stop(self) -> None:
        """Down as an outage is: the server and its workers, at once."""
        _kill_outright(self.proc)

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"MLflow exited; see {self.data / 'server.log'}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False


class OwnS3:
    """An S3 server of one test's own (MinIO when the stack built it, moto
    otherwise), on the stack's S3 host (pods reach it there), with the stack's
    credentials and buckets, so the test can stop it without touching the
    stack's S3."""

    def __init__(self, stack_env: dict[str, str], data: Path) -> None:
        url = urllib.parse.urlsplit(stack_env["AWS_ENDPOINT_URL_S3"])
        self._host = url.hostname or "127.0.0.1"
        self.port = free_port(self._host)
        self.url = f"{url.scheme}://{self._host}:{self.port}"
        self.env = {**stack_env, "AWS_ENDPOINT_URL_S3": self.url}
        """The stack's environment with this server for S3."""
        self.data = data
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        minio = Path(self.env.get("TRAILBOSS_STACK_BIN") or BIN_DIR) / "minio"
        address = f"{self._host}:{self.port}"
        if minio.is_file():
            command = [str(minio), "server", str(self.data / "minio"), "--address", address,
                       "--console-address", f"127.0.0.1:{free_port()}", "--quiet"]  # fmt: skip
        else:
            command = [sys.executable, "-m", "moto.server", "-H", self._host, "-p", str(self.port)]
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.env["AWS_ACCESS_KEY_ID"],
            "MINIO_ROOT_PASSWORD": self.env["AWS_SECRET_ACCESS_KEY"],
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_REGION": self.env.get("AWS_DEFAULT_REGION", "us-east-1"),
        }
        log = (self.data / "server.log").open("ab")
        self.proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(f"S3 at {self.url}", self._healthy, 60, interval=0.5)
        self._create_buckets()  # moto keeps nothing across a restart; MinIO keeps them

    def stop(self) -> None:
        """Down as an outage is: at once."""
        _kill_outright(self.proc)

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.url,
            region_name=self.env.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )  # fmt: skip

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"S3 exited; see {self.data / 'server.log'}")
        try:
            self._client().list_buckets()
        except Exception:  # any failure means "not yet"; the log tells why
            return False
        return True

    def _create_buckets(self) -> None:
        s3 = self._client()
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in sorted(set(BUCKETS) - existing):
            s3.create_bucket(Bucket=bucket)


def _kill_outright(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL to a server started in its own session and every process of it."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def own_labels(namespace: str) -> dict[str, str]:
    """Labels that hand an object to the `own_operator` of the test in ``namespace``."""
    return {OPERATOR_INSTANCE_LABEL: namespace}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class Operator:
    """``trailboss run`` as a real process, so tests can kill and restart it."""

    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        python: str | None = None,
        namespaces: tuple[str, ...] = (),
        instance: str | None = None,
    ) -> None:
        self.env = env
        self.instance = instance
        """Its ``TRAILBOSS_OPERATOR_INSTANCE``: an operator of one test's own, which
        handles only that test's labelled objects and so is not shared."""
        self.log_dir = log_dir
        self.python = python or sys.executable
        self.namespaces = namespaces
        """Namespaces (or patterns like ``e2e-*``) to watch; empty watches all."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.starts = 0
        self.pid: int | None = None
        """The process, also when this handle only uses an operator another process
        started (a test worker using the run's one operator)."""

    def shared(self) -> dict[str, Any]:
        """What another test process needs to use this operator without owning it."""
        return {
            "env": self.env,
            "log_dir": str(self.log_dir),
            "metrics_port": self.metrics_port,
            "liveness_port": self.liveness_port,
            "starts": self.starts,
            "pid": self.pid,
        }

    @classmethod
    def attach(cls, shared: dict[str, Any]) -> Operator:
        """A handle on an operator started by another process: it reads the operator's
        metrics and logs; stopping or restarting it is for the process that owns it."""
        op = cls(shared["env"], Path(shared["log_dir"]))
        op.metrics_port, op.liveness_port = shared["metrics_port"], shared["liveness_port"]
        op.starts, op.pid = shared["starts"], shared["pid"]
        return op

    @property
    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def start(self) -> None:
        self._check("starting the operator")
        self.starts += 1
        log = (self.log_dir / f"operator-{self.starts}.log").open("wb")
        # This checkout's operator, whichever checkout the interpreter's editable
        # install points at.
        path = [str(ROOT / "operator"), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {
            **os.environ,
            **self.env,
            "PYTHONPATH": os.pathsep.join(path),
            "TRAILBOSS_METRICS_PORT": str(self.metrics_port),
            "TRAILBOSS_LIVENESS_PORT": str(self.liveness_port),
            # Tests may shorten an object's durations (trailboss.dev/time-scale).
            "TRAILBOSS_TIME_SCALE_ANNOTATIONS": "true",
            **({"TRAILBOSS_OPERATOR_INSTANCE": self.instance} if self.instance else {}),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)  # outside the cluster, wherever pytest runs
        self.proc = subprocess.Popen(
            [self.python, "-m", "trailboss.cli", "run", *self._scope()],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.pid = self.proc.pid
        wait_for("the operator's /metrics endpoint", self._serving, timeout=60)

    def _scope(self) -> list[str]:
        if not self.namespaces:
            return ["--all-namespaces"]
        return [arg for pattern in self.namespaces for arg in ("--namespace", pattern)]

    def _serving(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no last status write."""
        self._check("killing the operator")
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self._check("stopping the operator")
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _check(self, what: str) -> None:
        if self.instance is None:
            SharedComponents.check(what)

    def log_tail(self, lines: int = 60) -> str:
        path = self.log_dir / f"operator-{self.starts}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def metrics(self) -> str:
        return self._get(self.metrics_port, "/metrics")

    def healthz(self) -> str:
        return self._get(self.liveness_port, "/healthz")

    @staticmethod
    def _get(port: int, path: str) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            text: str = r.read().decode()
            return text

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample on /metrics, or None when it is not exported."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            series, _, value = line.rpartition(" ")
            if series == (f"{name}{{{wanted}}}" if wanted else name):
                return float(value)
        return None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# The stack commands that change what runs; `status` and `env` only read.
CHANGES_THE_STACK = frozenset({"up", "down", "stop", "start", "start-operator"})


def stack_command(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    if args and args[0] in CHANGES_THE_STACK:
        SharedComponents.check(f"`stack.py {' '.join(args)}`")
    return subprocess.run(
        [sys.executable, str(STACK), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def read_env_file(path: Path) -> dict[str, str]:
    """Parse the stack's ``export K='v'`` lines."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("export ") or "PATH=" in line.split("=", 1)[0]:
            continue
        key, _, value = line[len("export ") :].partition("=")
        env[key] = value.strip("'").replace("'\"'\"'", "'")
    return env
