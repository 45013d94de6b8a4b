#!/usr/bin/env python3
"""Runs pods labelled ``trailboss.dev/run-locally=true`` as local processes.

kwok fakes the status of the pods on its fake nodes but runs nothing. For the
pods that must really run (a training process that logs to MLflow and S3), this
runner takes the place of a kubelet:

* every second it lists the labelled pods bound to fake nodes (level-based: a
  missed event is picked up by the next list);
* a new pod is claimed with an annotation first, so a restarted runner never
  runs it twice, then its first container's ``command`` + ``args`` run as a
  local process with the container's environment (plain values,
  ``secretKeyRef`` / ``configMapKeyRef`` / ``fieldRef``, ``envFrom``) and
  ``$(VAR)`` references expanded; ``python``/``python3`` is this interpreter,
  so the project's venv is used; a missing Secret or ConfigMap leaves the pod
  waiting (CreateContainerConfigError) until it appears;
* output goes to ``<state>/podlogs/<namespace>_<pod>.log``;
* the pod is set Running (podIP 127.0.0.1) when the process starts and
  Succeeded/Failed with the exit code when it ends; on failure the last lines
  of output become the termination message, as with
  ``terminationMessagePolicy: FallbackToLogsOnError``;
* a pod being deleted has its process group killed and is then removed with a
  grace period of 0, as a kubelet does.

Limits: one run per pod (no restarts, whatever the restartPolicy), only the
first container runs (the others mirror its state), no volumes, no image: the
command must exist on this machine. A pod claimed by an earlier runner that is
not finished is marked Failed (reason PodRunnerRestarted) and its leftover
process is killed: its exit code is lost.

    python podrunner.py --kubeconfig KUBECONFIG --state-dir DIR
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

RUN_LOCALLY = "trailboss.dev/run-locally"
CLAIMED = "podrunner.trailboss.dev/claimed-at"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
MESSAGE_LINES, MESSAGE_BYTES = 80, 4096  # the kubelet's limits for a log-tail message
KILL_GRACE = 5.0
POD_UID_ENV = "PODRUNNER_POD_UID"  # lets a restarted runner find the processes of its pods
# A pod's image is stood in for by this checkout: relative paths in a command
# (`python examples/trainer/train.py`) resolve against the repository root, the
# way they would against the WORKDIR of an image built from it.
IMAGE_WORKDIR = Path(
    os.environ.get("TRAILBOSS_PODRUNNER_WORKDIR", Path(__file__).resolve().parents[2])
)
PYTHON = re.compile(r"^python(3(\.\d+)?)?$")

log = logging.getLogger("podrunner")
Pod = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- API access


class Kube:
    """The few API calls the runner makes, over HTTPS with the kubeconfig's client cert."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        ctx_name = config["current-context"]
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"].rstrip("/")
        self._tmp = tempfile.TemporaryDirectory(prefix="podrunner-")
        self.tls = ssl.create_default_context(cafile=self._file(cluster, "certificate-authority"))
        self.tls.load_cert_chain(
            self._file(user, "client-certificate"), self._file(user, "client-key")
        )

    def _file(self, section: dict[str, str], key: str) -> str:
        if key in section:
            return section[key]
        path = Path(self._tmp.name) / key
        path.write_bytes(base64.b64decode(section[f"{key}-data"]))
        path.chmod(0o600)
        return str(path)

    def call(
        self,
        method: str,
        path: str,
        body: object | None = None,
        content_type: str = "application/json",
    ) -> Any:
        req = urllib.request.Request(
            self.server + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10, context=self.tls) as resp:
            return json.loads(resp.read() or b"null")

    def pods(self) -> list[Pod]:
        selector = urllib.parse.quote(f"{RUN_LOCALLY}=true")
        return list(self.call("GET", f"/api/v1/pods?labelSelector={selector}")["items"])

    def fake_nodes(self) -> set[str]:
        nodes = self.call("GET", "/api/v1/nodes")["items"]
        return {
            n["metadata"]["name"]
            for n in nodes
            if FAKE_NODE_ANNOTATION in (n["metadata"].get("annotations") or {})
        }

    def patch(self, pod: Pod, body: object, subresource: str = "") -> None:
        m = pod["metadata"]
        path = f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}{subresource}"
        self.call("PATCH", path, body, "application/strategic-merge-patch+json")

    def delete_now(self, pod: Pod) -> None:
        m = pod["metadata"]
        with contextlib.suppress(urllib.error.HTTPError):  # already gone
            self.call(
                "DELETE",
                f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": m["uid"]}},
            )

    def key_ref(self, kind: str, namespace: str, ref: dict[str, Any]) -> str | None:
        """A key of a Secret or ConfigMap; None when it is missing and `optional`."""
        values = self.all_keys(kind, namespace, ref)
        if ref["key"] not in values and not ref.get("optional"):
            raise ValueError(f"{kind} {namespace}/{ref['name']} has no key {ref['key']}")
        return values.get(ref["key"])

    def all_keys(self, kind: str, namespace: str, ref: dict[str, Any]) -> dict[str, str]:
        """Every key of a Secret or ConfigMap, decoded; empty when it is missing and `optional`."""
        try:
            obj = self.call("GET", f"/api/v1/namespaces/{namespace}/{kind}/{ref['name']}")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            if ref.get("optional"):
                return {}
            raise ValueError(f'{kind[:-1]} "{ref["name"]}" not found') from None
        return _decoded(kind, obj)


def _decoded(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    data = obj.get("data") or {}
    if kind == "secrets":
        return {k: base64.b64decode(v).decode() for k, v in data.items()}
    return dict(data)


# --------------------------------------------------------------------------- environment


def _field(pod: Pod, path: str) -> str:
    m = pod["metadata"]
    simple = {
        "metadata.name": m["name"],
        "metadata.namespace": m["namespace"],
        "metadata.uid": m["uid"],
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    found = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if found:
        return str((m.get(found[1]) or {}).get(found[2], ""))
    raise ValueError(f"unsupported fieldRef {path}")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes a $."""

    def repl(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        return env.get(m[1], m[0])

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, text)


def container_env(kube: Kube, pod: Pod, container: dict[str, Any]) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            values = kube.all_keys("configmaps", ns, src["configMapRef"])
        else:
            values = kube.all_keys("secrets", ns, src["secretRef"])
        env.update({prefix + k: v for k, v in values.items()})
    for var in container.get("env") or []:
        value: str | None
        if "valueFrom" not in var:
            value = expand(var.get("value", ""), env)
        elif "secretKeyRef" in var["valueFrom"]:
            value = kube.key_ref("secrets", ns, var["valueFrom"]["secretKeyRef"])
        elif "configMapKeyRef" in var["valueFrom"]:
            value = kube.key_ref("configmaps", ns, var["valueFrom"]["configMapKeyRef"])
        elif "fieldRef" in var["valueFrom"]:
            value = _field(pod, var["valueFrom"]["fieldRef"]["fieldPath"])
        else:
            raise ValueError(f"unsupported valueFrom for {var['name']}")
        if value is not None:
            env[var["name"]] = value
    return env


def base_env() -> dict[str, str]:
    """What a container image would provide: a PATH (this venv first) and a home."""
    venv_bin = str(Path(sys.executable).parent)
    keep = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
    return {
        **keep,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONUNBUFFERED": "1",
    }


# --------------------------------------------------------------------------- status


def _container_statuses(pod: Pod, state: dict[str, Any], ready: bool, pid: int) -> list[Any]:
    ident = {"containerID": f"podrunner://{pid}"} if pid else {}
    return [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            **ident,
            "ready": ready,
            "started": ready,
            "restartCount": 0,
            "state": state,
        }
        for c in pod["spec"]["containers"]
    ]


def waiting_status(pod: Pod, reason: str, message: str) -> dict[str, Any]:
    return {
        "status": {
            "containerStatuses": _container_statuses(
                pod, {"waiting": {"reason": reason, "message": message}}, False, 0
            )
        }
    }


def running_status(pod: Pod, pid: int, started: str) -> dict[str, Any]:
    conditions = [
        {"type": t, "status": "True", "lastTransitionTime": started}
        for t in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
    ]
    return {
        "status": {
            "phase": "Running",
            "startTime": started,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "conditions": conditions,
            "containerStatuses": _container_statuses(
                pod, {"running": {"startedAt": started}}, True, pid
            ),
        }
    }


def finished_status(
    pod: Pod, pid: int, started: str, code: int, reason: str, message: str
) -> dict[str, Any]:
    finished = now()
    terminated = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished}
    if message:
        terminated["message"] = message
    phase_reason = "PodCompleted" if code == 0 else "PodFailed"
    return {
        "status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": [
                {
                    "type": t,
                    "status": "False",
                    "reason": phase_reason,
                    "lastTransitionTime": finished,
                }
                for t in ("ContainersReady", "Ready")
            ],
            "containerStatuses": _container_statuses(pod, {"terminated": terminated}, False, pid),
        }
    }


def tail(path: Path) -> str:
    try:
        data = path.read_bytes()[-MESSAGE_BYTES:]
    except OSError:
        return ""
    lines = data.decode(errors="replace").splitlines()[-MESSAGE_LINES:]
    return "\n".join(lines)[-MESSAGE_BYTES:]


# --------------------------------------------------------------------------- runner


@dataclass
class Process:
    pod: Pod
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: str


class Runner:
    def __init__(self, kube: Kube, state_dir: Path) -> None:
        self.kube = kube
        self.logs = state_dir / "podlogs"
        self.work = state_dir / "podwork"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Process] = {}  # by pod UID
        self.waiting: dict[str, str] = {}  # pod UID -> why it cannot start yet

    def sync(self) -> None:
        """One level-based pass over every labelled pod on a fake node."""
        fake = self.kube.fake_nodes()
        pods = {
            p["metadata"]["uid"]: p for p in self.kube.pods() if p["spec"].get("nodeName") in fake
        }
        self.waiting = {uid: why for uid, why in self.waiting.items() if uid in pods}
        ours = set(self.procs)  # the listed state of these is older than our own
        for uid, proc in list(self.procs.items()):
            pod = pods.get(uid)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                _guarded(proc.pod, self.kill, proc)
            elif proc.popen.poll() is not None:
                _guarded(proc.pod, self.finish, proc)
        for uid, pod in pods.items():
            if uid in ours:
                continue
            meta, phase = pod["metadata"], pod.get("status", {}).get("phase")
            if meta.get("deletionTimestamp"):
                _guarded(pod, self.kube.delete_now, pod)
            elif CLAIMED not in (meta.get("annotations") or {}):
                _guarded(pod, self.start, pod)
            elif phase not in ("Succeeded", "Failed"):
                _guarded(pod, self.orphaned, pod)

    def start(self, pod: Pod) -> None:
        m = pod["metadata"]
        name = f"{m['namespace']}/{m['name']}"
        container = pod["spec"]["containers"][0]
        try:
            pod_env = container_env(self.kube, pod, container)
        except (OSError, ValueError) as e:
            # Like a kubelet: wait (CreateContainerConfigError) until the Secret or
            # ConfigMap appears, retrying on every pass.
            if self.waiting.get(m["uid"]) != str(e):
                log.warning("%s: waiting for its environment: %s", name, e)
                self.kube.patch(
                    pod, waiting_status(pod, "CreateContainerConfigError", str(e)), "/status"
                )
            self.waiting[m["uid"]] = str(e)
            return
        self.waiting.pop(m["uid"], None)
        # Claim first: if we die between claim and start, the pod is failed, not rerun.
        self.kube.patch(pod, {"metadata": {"annotations": {CLAIMED: now()}}})
        log_path = self.logs / f"{m['namespace']}_{m['name']}.log"
        started = now()
        try:
            argv, env = self.command(pod, container, pod_env)
            scratch = self.work / f"{m['namespace']}_{m['name']}"
            scratch.mkdir(parents=True, exist_ok=True)
            env.setdefault("TMPDIR", str(scratch))
            workdir = container.get("workingDir") or str(IMAGE_WORKDIR)
            with log_path.open("ab") as out:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=workdir,
                    start_new_session=True,
                )
        except (OSError, ValueError) as e:
            log.warning("%s: cannot start: %s", name, e)
            log_path.write_text(f"pod runner: cannot start: {e}\n")
            self.kube.patch(
                pod, finished_status(pod, 0, started, 128, "StartError", str(e)), "/status"
            )
            return
        log.info("%s: started pid %d: %s", name, popen.pid, " ".join(argv))
        self.procs[m["uid"]] = Process(pod, popen, log_path, started)
        self.kube.patch(pod, running_status(pod, popen.pid, started), "/status")

    def command(
        self, pod: Pod, container: dict[str, Any], pod_env: dict[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        if not container.get("command"):
            raise ValueError(
                "the first container has no command; the pod runner cannot "
                "run an image's entrypoint"
            )
        argv = [expand(a, pod_env) for a in container["command"] + (container.get("args") or [])]
        if PYTHON.match(Path(argv[0]).name):
            argv[0] = sys.executable
        env = {
            **base_env(),
            "HOSTNAME": pod["metadata"]["name"],
            POD_UID_ENV: pod["metadata"]["uid"],
            **pod_env,
        }
        return argv, env

    def finish(self, proc: Process) -> None:
        code = proc.popen.returncode
        if code < 0:  # killed by a signal: report it the way a container runtime does
            code = 128 - code
        m = proc.pod["metadata"]
        log.info("%s/%s: exited with %d", m["namespace"], m["name"], code)
        message = tail(proc.log_path) if code != 0 else ""
        reason = "Completed" if code == 0 else "Error"
        with contextlib.suppress(urllib.error.HTTPError):  # deleted meanwhile
            self.kube.patch(
                proc.pod,
                finished_status(proc.pod, proc.popen.pid, proc.started, code, reason, message),
                "/status",
            )
        del self.procs[m["uid"]]

    def kill(self, proc: Process) -> None:
        m = proc.pod["metadata"]
        log.info("%s/%s: pod deleted, stopping pid %d", m["namespace"], m["name"], proc.popen.pid)
        _kill_group(proc.popen)
        self.kube.delete_now(proc.pod)
        del self.procs[m["uid"]]

    def orphaned(self, pod: Pod) -> None:
        m = pod["metadata"]
        log.warning(
            "%s/%s: claimed by an earlier runner and not finished; marking it failed",
            m["namespace"],
            m["name"],
        )
        _kill_orphan(pod)
        started = pod.get("status", {}).get("startTime") or now()
        self.kube.patch(
            pod,
            finished_status(
                pod,
                0,
                started,
                137,
                "PodRunnerRestarted",
                "the pod runner restarted while this pod ran",
            ),
            "/status",
        )

    def stop_all(self) -> None:
        for proc in self.procs.values():
            _kill_group(proc.popen)


def _guarded(pod: Pod, action: Any, *args: Any) -> None:
    """One pod's API error must not hold up the others; the next pass retries it."""
    try:
        action(*args)
    except (OSError, ValueError) as e:  # urllib's errors are OSErrors
        m = pod["metadata"]
        log.warning(
            "%s/%s: %s failed, will retry: %s", m["namespace"], m["name"], action.__name__, e
        )


def _kill_orphan(pod: Pod) -> None:
    """Kill the process an earlier runner started for this pod, if it still runs."""
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    found = re.fullmatch(r"podrunner://(\d+)", statuses[0].get("containerID", ""))
    if not found:
        return
    pid = int(found[1])
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return
    if f"{POD_UID_ENV}={pod['metadata']['uid']}".encode() in environ:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)
        try:
            popen.wait(KILL_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    runner = Runner(Kube(args.kubeconfig), args.state_dir)

    def shutdown(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, shutdown)
    log.info("watching pods labelled %s=true on fake nodes", RUN_LOCALLY)
    try:
        while True:
            try:
                runner.sync()
            except (OSError, urllib.error.URLError, ValueError) as e:
                log.warning("pass failed, retrying: %s", e)
            time.sleep(args.interval)
    finally:
        runner.stop_all()


if __name__ == "__main__":
    sys.exit(main())
