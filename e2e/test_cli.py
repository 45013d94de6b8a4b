"""`kubectl trailboss ...`: the CLI as a kubectl plugin, on the real stack and operator."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from e2e.cluster import ROOT, Cluster, wait_for
from e2e.lifecycle import TRAINER, training_run

pytestmark = pytest.mark.usefixtures("running_operator")
QUICK = ["python", "-c", "import time; time.sleep(2); print('trained')"]
WATCHED = ["python", "-c", "import time; time.sleep(15); print('trained')"]
SLOW = ["python", "-c", "import time; print('training', flush=True); time.sleep(300)"]
VENV_BIN = str(Path(sys.executable).parent)


def plugin_env(cluster: Cluster) -> dict[str, str]:
    """kubectl finds `kubectl-trailboss` on the PATH, as it would after `pip install`."""
    return {**os.environ, "KUBECONFIG": cluster.env["KUBECONFIG"],
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}  # fmt: skip


def kubectl_trailboss(
    cluster: Cluster, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cluster.kubectl_bin, "trailboss", *args],
        env=plugin_env(cluster),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def finished(cluster: Cluster, namespace: str, name: str) -> dict[str, object]:
    return cluster.wait_phase(namespace, "trainingruns", name, {"Succeeded", "Failed"}, 300)


def test_kubectl_finds_the_plugin(cluster: Cluster) -> None:
    listed = subprocess.run(
        [cluster.kubectl_bin, "plugin", "list"], env=plugin_env(cluster),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert f"{VENV_BIN}/kubectl-trailboss" in listed.stdout
    helped = kubectl_trailboss(cluster, "--help")
    assert helped.returncode == 0
    for command in ("get", "list", "status", "logs", "rerun", "suspend", "resume", "promote",
                    "undo", "completion"):  # fmt: skip
        assert f"    {command} " in helped.stdout
    assert "exit codes:" in helped.stdout
    version = kubectl_trailboss(cluster, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("client: trailboss ")
    assert "operator: " in version.stdout


def test_get_lists_a_kind_in_every_format(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, training_run("listed", command=QUICK))
    finished(cluster, namespace, "listed")
    table = kubectl_trailboss(cluster, "get", "trun", "-n", namespace)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["NAME", "MODEL", "PHASE"]
    assert table.stdout.splitlines()[1].split()[0] == "listed"
    named = kubectl_trailboss(cluster, "get", "all", "-n", namespace, "-o", "name")
    assert "trainingrun.trailboss.dev/listed" in named.stdout.splitlines()
    everywhere = kubectl_trailboss(cluster, "list", "trun", "-A", "--no-headers")
    assert any(line.split()[:2] == [namespace, "listed"] for line in everywhere.stdout.splitlines())
    as_json = kubectl_trailboss(cluster, "get", "trun", "listed", "-n", namespace, "-o", "json")
    assert '"name": "listed"' in as_json.stdout


def test_failures_are_one_line_with_their_exit_code(cluster: Cluster, namespace: str) -> None:
    unknown = kubectl_trailboss(cluster, "get", "trun", "--context", "no-such-context")
    assert unknown.returncode == 8
    assert len(unknown.stderr.splitlines()) == 1
    assert "context 'no-such-context' is not in" in unknown.stderr
    missing = kubectl_trailboss(cluster, "get", "trun", "absent", "-n", namespace)
    assert missing.returncode == 4
    assert len(missing.stderr.splitlines()) == 1


def test_get_watch_shows_the_run_and_its_children_live(cluster: Cluster, namespace: str) -> None:
    # Long enough that the watch, started after the create, sees it before it ends.
    cluster.create(namespace, training_run("watched", command=WATCHED))
    watch = subprocess.Popen(
        [cluster.kubectl_bin, "trailboss", "get", "trun", "watched", "-n", namespace, "-w",
         "--timeout", "240"],
        env=plugin_env(cluster), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: list[str] = []
    reader = threading.Thread(
        target=lambda: seen.extend(line.rstrip() for line in watch.stdout or [])
    )
    reader.start()
    done = "trainingrun.trailboss.dev/watched  Succeeded"
    try:
        wait_for("the watch to show Succeeded", lambda: any(s.startswith(done) for s in seen), 240)
        time.sleep(1)  # the rest of that snapshot
    finally:
        watch.terminate()
        watch.wait(timeout=30)
        reader.join(timeout=30)
    snapshots = [line for line in seen if line.startswith("--- ")]
    assert len(snapshots) >= 2, seen  # it showed the run changing, not one picture
    roots = [line for line in seen if line.startswith("trainingrun.trailboss.dev/watched")]
    assert not roots[0].startswith(done), roots
    last = seen[len(seen) - seen[::-1].index(snapshots[-1]) :]
    assert last[0].startswith(done)
    assert last[1].startswith("└── job.batch/watched-train-")
    assert "Complete  1/1 succeeded" in last[1]
    assert last[2].startswith("    └── pod/watched-train-")
    assert "Succeeded  exit code 0" in last[2]


def test_status_exits_non_zero_on_failure(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, training_run("good", command=QUICK))
    cluster.create(namespace, training_run("broken", env={"TRAILBOSS_FAIL": "simulated"}))
    waited = kubectl_trailboss(cluster, "status", "trun", "good", "-n", namespace, "--wait",
                               "--timeout", "240", timeout=300)  # fmt: skip
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert waited.stdout.startswith("trainingrun.trailboss.dev/good: Healthy (phase Succeeded)")
    finished(cluster, namespace, "broken")
    failed = kubectl_trailboss(cluster, "status", "trainingruns.trailboss.dev/broken",
                               "-n", namespace)  # fmt: skip
    assert failed.returncode == 1
    assert "trainingrun.trailboss.dev/broken: Degraded (phase Failed)" in failed.stdout
    assert "(exit code 3)" in failed.stdout
    missing = kubectl_trailboss(cluster, "status", "mver", "nothing", "-n", namespace)
    assert missing.returncode == 4  # not found: never `status`'s 1 (Degraded)
    assert f"modelversion.trailboss.dev/nothing not found in namespace {namespace}" in (
        missing.stderr
    )


def test_logs_show_what_the_trainer_printed(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, training_run("broken", env={"TRAILBOSS_FAIL": "simulated"}))
    finished(cluster, namespace, "broken")
    logs = kubectl_trailboss(cluster, "logs", "broken", "-n", namespace)
    assert logs.returncode == 0, logs.stderr
    assert "simulated" in logs.stdout
    if not cluster.env.get("TRAILBOSS_E2E_EXTERNAL"):
        # The stack has no kubelets to serve logs: the command says so and shows
        # the termination message the pod runner kept, as a real cluster does
        # once a node is gone.
        assert "cannot serve its log" in logs.stderr
    nothing = kubectl_trailboss(cluster, "logs", "absent", "-n", namespace)
    assert nothing.returncode == 4
    assert "trainingrun.trailboss.dev/absent not found" in nothing.stderr


def test_rerun_starts_a_new_run_with_the_same_spec(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, training_run("first", command=["python", TRAINER],
                                           env={"TRAILBOSS_FAIL": "again"}))  # fmt: skip
    finished(cluster, namespace, "first")
    rerun = kubectl_trailboss(cluster, "rerun", "first", "-n", namespace)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == (
        "trainingrun.trailboss.dev/first-rerun-1 created (a rerun of first)"
    )
    old = cluster.get(namespace, "trainingruns", "first")
    new = cluster.get(namespace, "trainingruns", "first-rerun-1")
    assert old is not None
    assert new is not None
    assert new["spec"] == old["spec"]
    assert new["metadata"]["labels"]["trailboss.dev/rerun-of"] == "first"
    # The operator runs it for real: same spec, same failure, a new Job.
    status = finished(cluster, namespace, "first-rerun-1")
    assert status["phase"] == "Failed"
    assert status["jobName"] != old["status"]["jobName"]
    second = kubectl_trailboss(cluster, "rerun", "first", "-n", namespace)
    assert "first-rerun-2 created" in second.stdout


def test_suspend_and_resume_a_running_run(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, training_run("long", command=SLOW))
    cluster.wait_phase(namespace, "trainingruns", "long", {"Running"}, 180)

    def job_suspended() -> bool | None:
        jobs = cluster.jobs(namespace)
        return jobs[0].spec.suspend if jobs else None

    suspended = kubectl_trailboss(cluster, "suspend", "trun", "long", "-n", namespace)
    assert suspended.returncode == 0, suspended.stderr
    assert suspended.stdout.strip() == "trainingrun.trailboss.dev/long suspended"
    wait_for("the Job to be suspended", job_suspended, timeout=60)
    wait_for("the training pod to go", lambda: not cluster.core.list_namespaced_pod(
        namespace, label_selector="trailboss.dev/trainingrun=long").items, timeout=60)  # fmt: skip

    resumed = kubectl_trailboss(cluster, "resume", "trun/long", "-n", namespace)
    assert resumed.returncode == 0, resumed.stderr
    wait_for("the Job to run again", lambda: job_suspended() is False, timeout=60)
    wait_for("a training pod again", lambda: cluster.core.list_namespaced_pod(
        namespace, label_selector="trailboss.dev/trainingrun=long").items, timeout=60)  # fmt: skip

    # A ModelVersion has nothing to suspend (a Deployment's rollout pauses instead).
    refused = kubectl_trailboss(cluster, "suspend", "mver", "churn-v1", "-n", namespace)
    assert refused.returncode == 5  # nothing to act on
    assert "modelversions.trailboss.dev cannot be suspended" in refused.stderr
    cluster.delete(namespace, "trainingruns", "long")


def test_get_and_status_name_a_deployment_unambiguously(cluster: Cluster, namespace: str) -> None:
    manifest = yaml.safe_load((ROOT / "examples" / "deployment-pinned.yaml").read_text())
    manifest["metadata"]["namespace"] = namespace
    cluster.create(namespace, manifest)
    for kind in ("mdeploy", "deployments.trailboss.dev", "deployment"):
        shown = kubectl_trailboss(cluster, "get", kind, "churn", "-n", namespace)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("deployment.trailboss.dev/churn  ")
    status = kubectl_trailboss(cluster, "status", "mdeploy/churn", "-n", namespace)
    assert status.returncode == 0
    assert status.stdout.startswith("deployment.trailboss.dev/churn: Progressing")
    # kubectl itself: the short name reaches the Trailboss kind, `deploy` stays apps/v1's.
    assert cluster.kubectl("-n", namespace, "get", "mdeploy", "-o", "name").stdout.strip() == (
        "deployment.trailboss.dev/churn"
    )
    assert cluster.kubectl("-n", namespace, "get", "deploy", "-o", "name").stdout.strip() == ""
