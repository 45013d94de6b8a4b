"""A drift check spread over the pods of one Indexed Job
(`spec.monitoring.parallelism`): each pod measures its group of features and
writes its own part; the operator merges the parts into the result one pod
would have given, and a missing part fails the check instead of giving a
partial verdict."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import ValidationError

from tests.unit.driftdata import NOW as LOGGED_AT
from tests.unit.driftdata import TARGET, LocalStore, mixed_window
from tests.unit.fakes import NOW, services
from trailboss.api.monitoring import MAX_DRIFT_PODS, MonitoringSpec
from trailboss.builders import drift as jobs
from trailboss.builders.serving import Owner
from trailboss.cli import _parser
from trailboss.drift import job
from trailboss.drift.shard import Shard
from trailboss.policies import drift as policy
from trailboss.reconcilers import deployment

ROOT = Path(__file__).resolve().parents[2]
NS = "ml"
PROFILE = "s3://mlflow/runs/abc/reference-profile/"
LOGS = "s3://predictions/churn/"
MONITORING = {"predictionLogs": LOGS, "interval": "5m", "window": "1h", "correction": "holm"}
OWNER = Owner(name="churn", namespace=NS, uid="dep-1")
CTX = jobs.JobContext(image="ghcr.io/trailboss-dev/trailboss:test")
INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


# ------------------------------------------------------------------------ the field


def test_one_pod_per_check_unless_asked() -> None:
    assert MonitoringSpec().parallelism == 1


@pytest.mark.parametrize("pods", [0, -1, 33])
def test_parallelism_is_between_1_and_32(pods: int) -> None:
    with pytest.raises(ValidationError, match="parallelism"):
        MonitoringSpec.model_validate({"parallelism": pods})


def test_the_crd_states_the_bounds_and_the_memory_effect() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "trailboss.dev_deployments.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    field = schema["properties"]["spec"]["properties"]["monitoring"]["properties"]["parallelism"]
    assert (field["minimum"], field["maximum"], field["default"]) == (1, 32, 1)
    assert "1/N of the features" in " ".join(field["description"].split())


# ---------------------------------------------------------------------- the Job


def _command(pods: int, number: int = 1) -> tuple[dict[str, Any], str]:
    spec = MonitoringSpec.model_validate({**MONITORING, "parallelism": pods})
    name = jobs.check_job_name(OWNER, number)
    result = policy.result_location(LOGS, NS, "churn", name)
    args = policy.drift_command(
        spec, profile=PROFILE, namespace=NS, deployment="churn", model_version="v1",
        result=result,
    )  # fmt: skip
    return jobs.check_job(OWNER, number, args, CTX, pods=pods), result


def _pod_argv(built: dict[str, Any], index: int) -> list[str]:
    """The command a pod of the Indexed Job runs: the kubelet expands
    $(VAR) from the container's env, here the pod's completion index."""
    container = built["spec"]["template"]["spec"]["containers"][0]
    declared = {e["name"] for e in container["env"]}
    values = {"JOB_COMPLETION_INDEX": str(index)}

    def expand(match: re.Match[str]) -> str:
        return values[match[1]] if match[1] in declared else match[0]

    return [re.sub(r"\$\(([A-Z_]+)\)", expand, arg) for arg in container["command"]]


def test_a_parallel_check_is_one_indexed_job_whose_pods_write_distinct_parts() -> None:
    built, result = _command(4)
    spec = built["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    assert spec["backoffLimit"] == 0  # a pod that fails fails the check
    container = spec["template"]["spec"]["containers"][0]
    index_env = next(e for e in container["env"] if e["name"] == "JOB_COMPLETION_INDEX")
    assert index_env["valueFrom"]["fieldRef"]["fieldPath"] == INDEX_ANNOTATION
    pods = [_parser().parse_args(_pod_argv(built, i)[1:]) for i in range(4)]
    assert [Shard.parse(p.shard) for p in pods] == [Shard(i, 4) for i in range(4)]
    outputs = [p.output for p in pods]
    assert outputs == [policy.part_location(result, i, 4) for i in range(4)]
    assert len(set(outputs)) == 4
    assert result not in outputs
    # The check's name does not depend on how many pods run it.
    assert built["metadata"]["name"] == _command(1)[0]["metadata"]["name"]
    assert built == _command(4)[0]


def test_a_one_pod_check_is_the_plain_job_it_always_was() -> None:
    built, result = _command(1)
    spec = built["spec"]
    assert "completionMode" not in spec
    assert "completions" not in spec
    (pod,) = [_parser().parse_args(_pod_argv(built, 0)[1:])]
    assert (pod.shard, pod.output) == (None, result)


def test_part_keys_sit_beside_the_checks_result() -> None:
    result = "s3://p/drift-results/deployment=ml.churn/churn-drift-3-ab12c.json"
    assert policy.part_location(result, 2, 4) == (
        "s3://p/drift-results/deployment=ml.churn/churn-drift-3-ab12c.part-2-of-4.json"
    )


# ------------------------------------------------------------- the reconciler


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return mixed_window(tmp_path_factory.mktemp("parallel"))


class Monitored:
    """A served Deployment with drift monitoring over the fakes."""

    def __init__(self, **monitoring: Any) -> None:
        deployment.forget("dep-1")
        self.svc, self.kube, _, self.storage = services()
        self.now = NOW
        self.svc.clock = lambda: self.now
        self.kube.put(_served_version())
        self.body = self.kube.put({
            "apiVersion": "trailboss.dev/v1alpha1",
            "kind": "Deployment",
            "metadata": {"name": "churn", "namespace": NS, "uid": "dep-1", "generation": 1},
            "spec": {"model": "churn", "modelVersion": "v1",
                     "monitoring": {**MONITORING, **monitoring}},
        })  # fmt: skip

    def reconcile(self, after: float = 0.0) -> dict[str, Any]:
        self.now += dt.timedelta(seconds=after)
        deployment.reconcile(self.kube.current(self.body), self.svc)
        status: dict[str, Any] = self.kube.current(self.body)["status"]
        return status

    def restart(self) -> None:
        """A new operator process: nothing in memory, the same cluster and S3."""
        deployment.forget("dep-1")
        self.svc = dataclasses.replace(self.svc)

    def checks(self) -> list[dict[str, Any]]:
        return [j for j in self.kube.jobs() if jobs.DRIFT_CHECK_LABEL in j["metadata"]["labels"]]

    def finish(self, name: str) -> None:
        self.kube.objects[("Job", NS, name)]["status"] = {
            "conditions": [{"type": "Complete", "status": "True"}]
        }

    def result_of(self, name: str) -> str:
        return policy.result_location(LOGS, NS, "churn", name)

    def events(self) -> list[tuple[str, str]]:
        return list(self.kube.events)


def _served_version() -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "v1", "namespace": NS, "uid": "mv-1", "generation": 1},
        "spec": {"model": "churn", "artifactUri": "s3://mlflow/runs/abc/model"},
        "status": {
            "phase": "Validated", "registryVersion": "1",
            "artifact": {"uri": "s3://mlflow/runs/abc/model"},
            "referenceProfile": {"location": PROFILE, "rows": 3000},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }  # fmt: skip


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def _parts(window: LocalStore, count: int) -> list[dict[str, Any]]:
    spec = MonitoringSpec.model_validate(MONITORING)
    return [
        job.run_check(window, TARGET, spec, LOGGED_AT, Shard(i, count))  # type: ignore[arg-type]
        for i in range(count)
    ]


def _gauges() -> dict[str, float]:
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for metric in REGISTRY.collect()
        if metric.name.startswith("trailboss_drift") or metric.name == "trailboss_dataset_drift"
        for s in metric.samples
        if s.labels.get("deployment") == "churn"
        and s.labels.get("namespace") == NS
        and not s.name.endswith(("_total", "_created"))  # counters add up over both worlds
    }


def test_the_parts_of_a_parallel_check_merge_into_the_one_pod_result(window: LocalStore) -> None:
    spec = MonitoringSpec.model_validate(MONITORING)
    whole = job.run_check(window, TARGET, spec, LOGGED_AT)  # type: ignore[arg-type]
    single = Monitored()
    single.reconcile()
    (one,) = single.checks()
    single.storage.documents[single.result_of(one["metadata"]["name"])] = whole
    single.finish(one["metadata"]["name"])
    alone = single.reconcile(10)
    alone_gauges, alone_events = _gauges(), single.events()

    spread = Monitored(parallelism=4)
    spread.reconcile()
    (indexed,) = spread.checks()
    name = indexed["metadata"]["name"]
    assert indexed["spec"]["completions"] == 4
    assert name == one["metadata"]["name"]
    for part in _parts(window, 4):
        index = part["shard"]["index"]
        spread.storage.documents[policy.part_location(spread.result_of(name), index, 4)] = part
    spread.finish(name)
    merged = spread.reconcile(10)

    assert merged["drift"] == alone["drift"]
    assert merged["drift"]["checkedFeatures"] == 9
    assert merged["drift"]["features"][0]["pValue"] is not None
    said = [{k: c[k] for k in ("status", "reason", "message")} for c in (merged, alone)
            for c in [_condition(c, "DriftMonitoring")]]  # fmt: skip
    assert said[0] == said[1]
    assert spread.events() == alone_events
    assert _gauges() == alone_gauges


def test_a_missing_part_fails_the_check_naming_the_shard(window: LocalStore) -> None:
    world = Monitored(parallelism=4)
    world.reconcile()
    (check,) = world.checks()
    name = check["metadata"]["name"]
    for part in _parts(window, 4):
        if part["shard"]["index"] != 2:
            location = policy.part_location(world.result_of(name), part["shard"]["index"], 4)
            world.storage.documents[location] = part
    world.finish(name)
    status = world.reconcile(10)
    condition = _condition(status, "DriftMonitoring")
    assert (condition["status"], condition["reason"]) == ("False", "DriftCheckFailed")
    assert "shard 2 of 4" in condition["message"]
    assert policy.part_location(world.result_of(name), 2, 4) in condition["message"]
    assert status["drift"]["checks"] == 1
    assert not status["drift"].get("features")  # no partial verdict
    assert status["drift"].get("drifted") is None
    assert [r for r, _ in world.events() if r.startswith("Drift")] == ["DriftCheckFailed"]
    world.reconcile(60)
    assert len(world.checks()) == 1  # the next check waits an interval
    world.reconcile(300)
    assert len(world.checks()) == 2


def test_an_unreadable_part_fails_the_check_naming_the_shard(window: LocalStore) -> None:
    world = Monitored(parallelism=2)
    world.reconcile()
    (check,) = world.checks()
    name = check["metadata"]["name"]
    first, second = _parts(window, 2)
    world.storage.documents[policy.part_location(world.result_of(name), 0, 2)] = first
    broken = {**second, "features": [{"score": "high"}]}
    world.storage.documents[policy.part_location(world.result_of(name), 1, 2)] = broken
    world.finish(name)
    condition = _condition(world.reconcile(10), "DriftMonitoring")
    assert (condition["status"], condition["reason"]) == ("False", "DriftCheckFailed")
    assert "shard 1 of 2" in condition["message"]


def test_a_part_of_another_shard_is_not_taken_for_the_missing_one(window: LocalStore) -> None:
    world = Monitored(parallelism=2)
    world.reconcile()
    (check,) = world.checks()
    name = check["metadata"]["name"]
    first, _ = _parts(window, 2)
    for index in (0, 1):
        world.storage.documents[policy.part_location(world.result_of(name), index, 2)] = first
    world.finish(name)
    condition = _condition(world.reconcile(10), "DriftMonitoring")
    assert condition["reason"] == "DriftCheckFailed"
    assert "shard 1 of 2" in condition["message"]


def test_a_restart_or_a_new_parallelism_mid_check_starts_no_second_job(
    window: LocalStore,
) -> None:
    world = Monitored(parallelism=4)
    world.reconcile()
    (check,) = world.checks()
    name = check["metadata"]["name"]
    world.restart()
    world.reconcile(10)
    assert [j["metadata"]["name"] for j in world.checks()] == [name]
    body = world.kube.current(world.body)
    body["spec"]["monitoring"]["parallelism"] = 2  # the user changes it while pods run
    body["metadata"]["generation"] = 2
    world.kube.put(body)
    world.restart()
    world.reconcile(10)
    assert [j["metadata"]["name"] for j in world.checks()] == [name]
    # The running check is merged from the four parts its Job was started with.
    for part in _parts(window, 4):
        location = policy.part_location(world.result_of(name), part["shard"]["index"], 4)
        world.storage.documents[location] = part
    world.finish(name)
    status = world.reconcile(10)
    assert _condition(status, "DriftMonitoring")["status"] == "True"
    assert status["drift"]["checks"] == 1
    assert status["drift"]["checkedFeatures"] == 9
    world.reconcile(300)
    following = [j for j in world.checks() if j["metadata"]["name"] != name]
    assert [j["spec"]["completions"] for j in following] == [2]


def test_every_pod_of_a_check_of_a_long_named_deployment_has_a_valid_hostname() -> None:
    owner = Owner(name="a" * 63, namespace=NS, uid="dep-1")
    for number in (1, 10**7):
        name = jobs.check_job_name(owner, number)
        hostname = f"{name}-{MAX_DRIFT_PODS - 1}"  # what the Job controller gives pods
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", hostname), hostname


def test_the_pods_of_a_check_are_read_from_its_job() -> None:
    assert policy.pods_of(_command(4)[0]) == 4
    assert policy.pods_of(_command(1)[0]) == 1
    spec = policy.started_with(_command(4)[0])
    assert spec == MonitoringSpec.model_validate({**MONITORING, "parallelism": 4})
    assert policy.started_with({"spec": {}}) is None


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"shard": {"index": 0, "count": 2}}, "not the part of shard 1 of 2"),
        ({"shard": None}, "not the part of shard 1 of 2"),
        ({"windowRows": "many"}, "malformed"),
        ({"checkedAt": "yesterday"}, "malformed"),
        ({"features": [{"name": "a", "rows": "x"}]}, "malformed"),
        ({"features": "a"}, "malformed"),
    ],
)
def test_a_part_that_cannot_be_merged_says_why(change: dict[str, Any], says: str) -> None:
    part = {
        "deployment": "ml.churn", "window": {}, "profile": PROFILE, "modelVersion": "v1",
        "windowRows": 10, "checkedAt": NOW.isoformat(), "shard": {"index": 1, "count": 2},
        "features": [{"name": "a"}],
    }  # fmt: skip
    assert policy.part_problem(part, 1, 2) is None
    problem = policy.part_problem({**part, **change}, 1, 2)
    assert problem is not None
    assert says in problem
    missing = dict(part)
    del missing["features"]
    assert "has no features" in str(policy.part_problem(missing, 1, 2))
