"""The retraining loop over days of simulated time: schedules and cooldowns that
meet, drift streaks across failed checks and promotions, more runs than status
keeps, runs that never end, retrained versions reaching traffic under every
version policy, time zones and reference profiles that fail once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.unit.fakes import NOW, services
from tests.unit.test_retraining import NS, TEMPLATE, Loop, _condition
from trailboss.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from trailboss.builders import drift as jobs
from trailboss.builders.registration import build_model_version
from trailboss.builders.training import Owner
from trailboss.reconcilers import deployment, modelversion

ROOT = Path(__file__).resolve().parents[2]
LOGS = "s3://predictions/churn/"
PROFILE = "s3://mlflow/runs/abc/reference-profile/"


def _version(name: str, registry: str, phase: str = "Validated", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": labels,
                     "creationTimestamp": f"2026-11-{int(registry):02d}T00:00:00Z"},
        "spec": {"model": "churn", "artifactUri": f"s3://mlflow/{name}/model"},
        "status": {"phase": phase, "registryVersion": registry,
                   "artifact": {"uri": f"s3://mlflow/runs/{name}/model"},
                   "referenceProfile": {"location": PROFILE, "rows": 100},
                   "conditions": [{"type": "Ready", "status": str(phase == "Validated")}]},
    }  # fmt: skip


def _deployment(loop: Loop) -> dict[str, Any]:
    return loop.kube.objects[("Deployment", NS, "churn")]


def _unfinished(loop: Loop) -> list[dict[str, Any]]:
    return [r for r in loop.runs() if not r.get("status")]


# --------------------------------------------------------------------- schedule and cooldown


@pytest.mark.parametrize(
    ("zone", "first_day"),
    [(None, dt.date(2026, 11, 23)), ("Europe/Berlin", dt.date(2027, 3, 26))],  # over DST
)
def test_a_daily_schedule_with_a_day_of_cooldown_fires_every_day(
    zone: str | None, first_day: dt.date
) -> None:
    extra: dict[str, Any] = {"timeZone": zone} if zone else {}
    loop = Loop(schedule="0 3 * * *", **extra)  # the default cooldown: 24h
    local = dt.UTC if zone is None else ZoneInfo(zone)
    days = [first_day + dt.timedelta(days=n) for n in range(4)]
    for day, jitter in zip(days, (2.0, 1.0, 1.5, 0.5), strict=True):
        slot = dt.datetime(day.year, day.month, day.day, 3, tzinfo=local).astimezone(dt.UTC)
        loop.now = slot + dt.timedelta(seconds=jitter)  # a requeue lands a little late
        loop.reconcile()
        for run in _unfinished(loop):
            loop.finish(run, "Failed")
        loop.reconcile(30)
    assert len(loop.runs()) == 4


def test_a_scheduled_run_held_by_the_run_limit_counts_its_cooldown_from_its_schedule_time() -> None:
    """Every 30 minutes, a 10 minute cooldown, one run at a time: the 11:00 run waits
    for the 10:30 one and starts at 11:25. The 11:30 run is due 30 minutes after it
    by the schedule (docs/retraining.md), though it starts 5 minutes after it."""
    loop = Loop(schedule="*/30 * * * *", cooldown="10m", maxConcurrentRuns=1)
    at = NOW.replace(minute=30, second=1)
    for minutes, finish in ((0, False), (30, False), (55, True), (57, True), (60, False)):
        loop.now = at + dt.timedelta(minutes=minutes)
        if finish:
            for run in _unfinished(loop):
                loop.finish(run, "Failed")
        loop.reconcile()
    triggers = sorted(r["metadata"]["annotations"]["trailboss.dev/trigger"] for r in loop.runs())
    assert [t[11:16] for t in triggers] == ["10:30", "11:00", "11:30"]


def test_a_drift_run_still_holds_the_schedule_for_its_cooldown() -> None:
    loop = Loop(schedule="0 3 * * *", cooldown="24h", onDrift=True)
    loop.now = dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC)
    loop.drift(checks=2, consecutive=2)
    loop.reconcile()
    loop.finish(loop.runs()[0], "Failed")
    loop.now = dt.datetime(2026, 11, 24, 3, 0, 1, tzinfo=dt.UTC)
    status = loop.reconcile()
    assert len(loop.runs()) == 1
    assert _condition(status)["reason"] == "Cooldown"


# --------------------------------------------------------------------- drift streaks


class Watched(Loop):
    """A Loop whose drift results come from real check Jobs."""

    def __init__(self, **retraining: Any) -> None:
        super().__init__(**retraining)
        self.kube.put(_version("v1", "1"))
        body = _deployment(self)
        body["spec"]["monitoring"] = {"predictionLogs": LOGS, "interval": "5m", "window": "1h"}
        self.body = body
        self.storage: Any = self.svc.storage
        self.done: set[str] = set()

    def check(self, result: str) -> dict[str, Any]:
        """Run the next drift check to the end: `drifted`, `clean` or `failed`."""
        self.reconcile(301)
        (job,) = [j for j in self.kube.jobs()
                  if jobs.DRIFT_CHECK_LABEL in j["metadata"]["labels"]
                  and j["metadata"]["name"] not in self.done]  # fmt: skip
        name = job["metadata"]["name"]
        self.done.add(name)
        failed = result == "failed"
        ended = {"type": "Failed" if failed else "Complete", "status": "True",
                 "reason": "BackoffLimitExceeded"}  # fmt: skip
        job["status"] = {"conditions": [ended]}
        drifted = result == "drifted"
        feature = {"name": "tenure", "method": "psi", "score": 0.4 if drifted else 0.01,
                   "threshold": 0.1, "drifted": drifted, "rows": 3000}  # fmt: skip
        self.storage.documents[f"{LOGS}drift-results/deployment={NS}.churn/{name}.json"] = {
            "drift": {"score": feature["score"], "drifted": drifted,
                      "driftShare": float(drifted), "driftedFeatures": int(drifted),
                      "checkedFeatures": 1, "modelVersion": self.stable(),
                      "windowRows": 3000, "features": [feature]},
        }  # fmt: skip
        return self.reconcile(5)

    def stable(self) -> str:
        return str(self.kube.current(self.body)["status"].get("stableVersion", "v1"))


def test_a_failed_check_does_not_let_a_stale_streak_retrain() -> None:
    loop = Watched(onDrift=True, cooldown="1m")
    loop.check("drifted")
    loop.check("drifted")
    (first,) = loop.runs()  # two drifted checks in a row: one retraining
    loop.finish(first, "Failed")
    status = loop.check("failed")
    assert len(loop.runs()) == 1  # nothing new was found, so nothing new is retrained
    assert status["drift"]["consecutive"] == 0
    loop.check("drifted")
    assert len(loop.runs()) == 1  # drifted, failed, drifted is not two in a row


def test_the_previous_versions_drift_never_retrains_the_version_just_promoted() -> None:
    loop = Loop(onDrift=True, cooldown="1h")
    loop.annotate("by-hand")
    loop.reconcile()
    loop.finish(loop.runs()[0], "Failed")
    loop.drift(checks=2, consecutive=2)  # v1 drifted, but the cooldown holds it
    loop.reconcile(60)
    assert len(loop.runs()) == 1
    loop.kube.put(_version("v2", "2"))
    body = _deployment(loop)
    body["spec"]["modelVersion"] = "v2"
    body["status"]["stableVersion"] = "v2"  # v2 was promoted a minute ago
    body["status"]["promoted"] = [{"version": "v2", "promotedAt": loop.now.isoformat()}]
    loop.reconcile(3600)  # the cooldown is over
    assert len(loop.runs()) == 1


# --------------------------------------------------------------------- concurrency and deadline


def test_max_concurrent_runs_above_what_status_keeps_is_enforced() -> None:
    loop = Loop(maxConcurrentRuns=16)
    for request in range(25):
        loop.annotate(f"request-{request}")
        loop.reconcile(60)
    assert len(loop.runs()) == 16
    assert loop.kube.current(loop.body)["status"]["handledRetrain"] == "request-15"
    for run in loop.runs():
        loop.finish(run, "Failed")
    loop.reconcile(60)
    assert len(loop.runs()) == 17  # the last request, held, now runs


def test_a_run_whose_version_never_settles_is_closed_at_its_deadline() -> None:
    loop = Loop(runDeadline="6h")
    loop.annotate("a")
    loop.reconcile()
    (run,) = loop.runs()
    run["status"] = {"phase": "Succeeded", "modelVersion": "churn-v2"}
    loop.kube.put(_version("churn-v2", "2", phase="Registered"))  # its gate never ran
    loop.annotate("b")
    loop.reconcile(3600)
    assert len(loop.runs()) == 1  # "b" waits for the limit
    status = loop.reconcile(5 * 3600 + 1)
    record = status["retrainings"][0]
    assert record["phase"] == "Failed"
    assert "6h" in record["message"]
    assert len(loop.runs()) == 2  # no longer in the way of "b"
    warnings = [m for reason, m in loop.kube.warnings if reason == "RetrainingFailed"]
    assert any("spec.retraining.runDeadline" in m for m in warnings)


def test_a_training_that_never_ends_is_suspended_at_the_deadline() -> None:
    loop = Loop()  # the default deadline
    loop.annotate("a")
    loop.reconcile()
    (run,) = loop.runs()
    run["status"] = {"phase": "Pending"}  # e.g. no GPU node, ever
    status = loop.reconcile(23 * 3600)
    assert status["retrainings"][0]["phase"] == "Running"
    status = loop.reconcile(3600 + 1)
    assert status["retrainings"][0]["phase"] == "Failed"
    assert loop.runs()[0]["spec"]["suspend"] is True


# --------------------------------------------------------------------- reaching traffic


class Policed(Loop):
    def __init__(self, policy: dict[str, Any], **retraining: Any) -> None:
        super().__init__(**retraining)
        self.kube.put(_version("v1", "1", track="retrained"))
        body = _deployment(self)
        body["spec"].pop("modelVersion")
        body["spec"]["versionPolicy"] = policy
        body["spec"]["retraining"]["template"] = {**TEMPLATE, "register": {}}
        self.body = body

    def registered(self, run: dict[str, Any], registry: str) -> dict[str, Any]:
        """The ModelVersion the TrainingRun's registration makes, once Validated."""
        spec = TrainingRunSpec.model_validate(run["spec"])
        status = TrainingRunStatus.model_validate({"mlflow": {"runId": "r1"}})
        owner = Owner(run["metadata"]["name"], NS, "uid-run")
        made = build_model_version(owner, spec, status)
        name = made["metadata"]["name"]
        version = _version(name, registry)
        version["metadata"]["labels"] = made["metadata"]["labels"]
        run["status"] = {"phase": "Succeeded", "modelVersion": name}
        self.kube.put(version)
        return version


def test_a_retrained_version_carries_the_policys_labels_and_rolls_out() -> None:
    loop = Policed({"latest": "Validated", "matchLabels": {"track": "retrained"}})
    assert loop.reconcile()["stableVersion"] == "v1"
    loop.annotate("go")
    loop.reconcile()
    (run,) = loop.runs()
    assert run["spec"]["register"]["labels"] == {"track": "retrained"}
    version = loop.registered(run, "2")
    assert version["metadata"]["labels"]["track"] == "retrained"
    status = loop.reconcile(10)
    status = loop.reconcile(10)
    assert status["canaryVersion"] == version["metadata"]["name"]
    assert "rolls out" in _condition(status)["message"]


def test_under_an_alias_policy_the_validated_retrained_version_gets_the_alias() -> None:
    loop = Policed({"latest": "Validated", "alias": "champion"})
    tracking = loop.svc.tracking
    tracking.aliases[("churn", "champion")] = "1"  # type: ignore[attr-defined]
    assert loop.reconcile()["stableVersion"] == "v1"
    loop.annotate("go")
    loop.reconcile()
    version = loop.registered(loop.runs()[0], "2")
    status = loop.reconcile(10)
    assert tracking.aliases[("churn", "champion")] == "2"  # type: ignore[attr-defined]
    assert "champion" in _condition(status)["message"]
    status = loop.reconcile(10)
    assert status["canaryVersion"] == version["metadata"]["name"]


def test_an_alias_a_person_moved_meanwhile_is_left_and_the_condition_says_what_to_do() -> None:
    loop = Policed({"latest": "Validated", "alias": "champion"})
    tracking = loop.svc.tracking
    tracking.aliases[("churn", "champion")] = "1"  # type: ignore[attr-defined]
    loop.reconcile()
    loop.annotate("go")
    loop.reconcile()
    loop.kube.put(_version("v3", "3"))
    tracking.aliases[("churn", "champion")] = "3"  # type: ignore[attr-defined]
    version = loop.registered(loop.runs()[0], "4")
    status = loop.reconcile(10)
    assert tracking.aliases[("churn", "champion")] == "3"  # type: ignore[attr-defined]
    message = _condition(status)["message"]
    assert "champion" in message
    assert "set the MLflow alias champion of churn to version 4" in message
    assert status.get("canaryVersion") != version["metadata"]["name"]


# --------------------------------------------------------------------- time zone


def test_a_time_zone_typo_is_an_invalid_spec_naming_the_field_once() -> None:
    loop = Loop(schedule="0 3 * * *", timeZone="Europe/Berln")
    status = loop.reconcile()
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "spec.retraining.timeZone" in ready["message"]
    loop.reconcile(60)
    assert [reason for reason, _ in loop.kube.warnings].count("InvalidSpec") == 1


def test_the_crd_refuses_a_time_zone_the_tz_database_does_not_know() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "trailboss.dev_deployments.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    zone = schema["properties"]["spec"]["properties"]["retraining"]["properties"]["timeZone"]
    rules = [rule["rule"] for rule in zone.get("x-kubernetes-validations", [])]
    assert any("getHours(self)" in rule for rule in rules)  # the API server's tz database
    assert any("Local" in rule for rule in rules)  # a name, not the server's own zone


# --------------------------------------------------------------------- reference profile


def _profiled() -> tuple[Any, Any, Any, dict[str, Any]]:
    svc, kube, _, storage = services()
    clock = {"now": NOW}
    svc.clock = lambda: clock["now"]
    artifact = "s3://mlflow/runs/abc/model"
    storage.objects[f"{artifact}/MLmodel"] = "e1"
    storage.objects[f"{artifact}/model.pkl"] = "e2"
    body = kube.put({
        "apiVersion": "trailboss.dev/v1alpha1", "kind": "ModelVersion",
        "metadata": {"name": "v1", "namespace": NS, "uid": "mv-1", "generation": 1},
        "spec": {"model": "churn", "artifactUri": artifact, "metrics": {"accuracy": 0.9},
                 "referenceData": "s3://datasets/ref.parquet"},
    })  # fmt: skip
    modelversion.forget("mv-1")
    return svc, kube, clock, body


def _fail(kube: Any, job: dict[str, Any]) -> None:
    stored = kube.objects[("Job", NS, job["metadata"]["name"])]
    stored["status"] = {"conditions": [{"type": "Failed", "status": "True",
                                        "reason": "BackoffLimitExceeded"}]}  # fmt: skip


def test_a_failed_reference_profile_is_retried_with_backoff_and_says_when() -> None:
    svc, kube, clock, body = _profiled()
    modelversion.reconcile(body, svc)
    (first,) = kube.jobs()
    _fail(kube, first)
    modelversion.reconcile(kube.current(body), svc)
    condition = next(c for c in kube.current(body)["status"]["conditions"]
                     if c["type"] == "ReferenceProfileReady")  # fmt: skip
    assert condition["status"] == "False"
    assert "retrying at" in condition["message"]
    clock["now"] += dt.timedelta(seconds=30)
    modelversion.reconcile(kube.current(body), svc)
    assert len(kube.jobs()) == 1  # not at once: the backoff
    names = {first["metadata"]["name"]}
    for _ in range(10):
        clock["now"] += dt.timedelta(hours=2)
        modelversion.reconcile(kube.current(body), svc)
        for job in kube.jobs():
            if job["metadata"]["name"] not in names:
                names.add(job["metadata"]["name"])
                _fail(kube, job)
                modelversion.reconcile(kube.current(body), svc)
    assert 2 < len(names) < 10  # retried, each attempt its own Job, and bounded
    condition = next(c for c in kube.current(body)["status"]["conditions"]
                     if c["type"] == "ReferenceProfileReady")  # fmt: skip
    assert "retrying" not in condition["message"]
    assert "attempts" in condition["message"]
    deployment.forget("dep-1")
