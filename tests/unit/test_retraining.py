"""The retraining loop against in-memory fakes: drift, schedule and on-demand
triggers, the bounds that keep them from storming, and the outcome of a run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.unit.fakes import NOW, services
from trailboss.reconcilers import deployment

NS = "ml"
TEMPLATE = {"model": "churn", "image": "trainer:1", "command": ["python", "train.py"],
            "dataset": {"uri": "s3://datasets/churn.csv"}}  # fmt: skip


def _served(name: str, phase: str = "Validated") -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {"model": "churn", "artifactUri": f"s3://mlflow/{name}/model"},
        "status": {"phase": phase, "registryVersion": "1", "artifact": {"uri": f"s3://m/{name}"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip


class Loop:
    def __init__(self, pinned: bool = True, **retraining: Any) -> None:
        self.svc, self.kube, _, _ = services()
        self.now = NOW
        self.svc.clock = lambda: self.now
        self.kube.put(_served("v1"))
        version = {"modelVersion": "v1"} if pinned else {"versionPolicy": {"latest": "Validated"}}
        self.body = self.kube.put({
            "apiVersion": "trailboss.dev/v1alpha1",
            "kind": "Deployment",
            "metadata": {"name": "churn", "namespace": NS, "uid": "dep-1", "generation": 1,
                         "creationTimestamp": "2026-11-01T00:00:00Z"},
            "spec": {"model": "churn", **version,
                     "retraining": {"template": TEMPLATE, **retraining}},
        })  # fmt: skip
        deployment.forget("dep-1")

    def reconcile(self, after: float = 0.0) -> dict[str, Any]:
        self.now += dt.timedelta(seconds=after)
        deployment.reconcile(self.kube.current(self.body), self.svc)
        status: dict[str, Any] = self.kube.current(self.body)["status"]
        return status

    def drift(self, checks: int, consecutive: int, score: float = 0.4) -> None:
        """As if drift check ``checks`` just recorded its result."""
        body = self.kube.objects[("Deployment", NS, "churn")]
        body.setdefault("status", {})["drift"] = {
            "checks": checks, "consecutive": consecutive, "drifted": consecutive > 0,
            "score": score, "modelVersion": "v1",
            "checkedAt": self.now.isoformat().replace("+00:00", "Z"),
        }  # fmt: skip

    def annotate(self, value: str) -> None:
        body = self.kube.objects[("Deployment", NS, "churn")]
        body["metadata"].setdefault("annotations", {})["trailboss.dev/retrain"] = value

    def runs(self) -> list[dict[str, Any]]:
        return [o for (k, _, _), o in self.kube.objects.items() if k == "TrainingRun"]

    def finish(self, run: dict[str, Any], phase: str, version: str | None = None) -> None:
        run["status"] = {"phase": phase, **({"modelVersion": version} if version else {})}
        if version:
            self.kube.put(_served(version, "Validated" if phase == "Succeeded" else phase))


def _condition(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Retraining")


def test_two_drifted_checks_start_one_run_with_its_lineage() -> None:
    loop = Loop(onDrift=True)
    loop.drift(checks=1, consecutive=1)
    loop.reconcile()
    assert loop.runs() == []  # one drifted check is not enough (driftChecks: 2)
    loop.drift(checks=2, consecutive=2, score=0.42)
    status = loop.reconcile()
    (run,) = loop.runs()
    assert run["spec"] == loop.kube.current(loop.body)["spec"]["retraining"]["template"]
    meta = run["metadata"]
    assert meta["labels"]["trailboss.dev/retrained-by"] == "churn"
    assert meta["labels"]["trailboss.dev/retraining-reason"] == "Drift"
    assert meta["annotations"]["trailboss.dev/replaces"] == "v1"
    assert meta["annotations"]["trailboss.dev/drift-score"] == "0.42"
    assert meta["ownerReferences"][0]["uid"] == "dep-1"
    assert status["lastRetraining"]["trainingRun"] == meta["name"]
    assert status["retrainings"][0]["phase"] == "Running"
    assert _condition(status)["reason"] == "RetrainingRunning"
    sample = REGISTRY.get_sample_value(
        "trailboss_retraining_triggers_total",
        {"namespace": NS, "deployment": "churn", "reason": "Drift"},
    )
    assert sample is not None
    assert sample >= 1


def test_a_restart_before_the_status_write_finds_the_same_run() -> None:
    loop = Loop(onDrift=True)
    loop.drift(checks=2, consecutive=2)
    before = loop.kube.current(loop.body)
    loop.reconcile()
    # The status write is lost: the next operator sees the object as it was.
    loop.kube.objects[("Deployment", NS, "churn")] = before
    deployment.forget("dep-1")
    status = loop.reconcile()
    assert len(loop.runs()) == 1
    assert status["retrainingCount"] == 1


def test_drift_that_does_not_go_away_retrains_once_per_cooldown() -> None:
    loop = Loop(onDrift=True, cooldown="1h")
    for check in range(2, 40):  # a check every 5 minutes for over three hours
        loop.drift(checks=check, consecutive=check)
        loop.reconcile(300)
        for run in loop.runs():
            if not run.get("status"):
                loop.finish(run, "Failed")  # a crash-looping training
    assert len(loop.runs()) == 4  # at 0, 1, 2 and 3 hours
    status = loop.kube.current(loop.body)["status"]
    assert [r["phase"] for r in status["retrainings"]] == ["Failed"] * 4
    assert _condition(status)["reason"] == "Cooldown"


def test_max_concurrent_runs_holds_every_trigger_including_on_demand() -> None:
    loop = Loop(onDrift=True, cooldown="1m")
    loop.drift(checks=2, consecutive=2)
    loop.reconcile()
    loop.annotate("now")
    loop.drift(checks=3, consecutive=3)
    status = loop.reconcile(120)
    assert len(loop.runs()) == 1
    assert status.get("handledRetrain") is None  # the request waits, it is not dropped
    loop.finish(loop.runs()[0], "Failed")
    loop.reconcile(10)
    assert len(loop.runs()) == 2
    assert loop.kube.current(loop.body)["status"]["handledRetrain"] == "now"


def test_on_demand_skips_the_cooldown_and_acts_once_per_value() -> None:
    loop = Loop(cooldown="24h")
    loop.annotate("a")
    loop.reconcile()
    loop.finish(loop.runs()[0], "Failed")
    loop.reconcile(10)
    loop.annotate("b")
    loop.reconcile(10)
    assert len(loop.runs()) == 2
    loop.reconcile(10)
    assert len(loop.runs()) == 2


def test_no_automatic_retraining_during_a_rollout_unless_asked() -> None:
    loop = Loop(onDrift=True)
    loop.kube.objects[("Deployment", NS, "churn")]["status"] = {
        "stableVersion": "v1", "canaryVersion": "v2", "canaryWeight": 25, "currentStep": 0
    }  # fmt: skip
    loop.kube.put(_served("v2"))
    loop.kube.objects[("Deployment", NS, "churn")]["spec"]["modelVersion"] = "v2"
    loop.drift(checks=2, consecutive=2)
    status = loop.reconcile()
    assert loop.runs() == []
    assert _condition(status)["reason"] == "RolloutInProgress"


def test_a_validated_result_tells_a_pinned_deployment_what_to_pin() -> None:
    loop = Loop()
    loop.annotate("go")
    loop.reconcile()
    loop.finish(loop.runs()[0], "Succeeded", version="churn-v2")
    status = loop.reconcile(10)
    assert status["lastRetraining"]["phase"] == "Validated"
    assert status["lastRetraining"]["modelVersion"] == "churn-v2"
    condition = _condition(status)
    assert condition["reason"] == "NewVersionValidated"
    assert "set spec.modelVersion: churn-v2" in condition["message"]
    assert status["stableVersion"] == "v1"  # the spec is never written


def test_a_rejected_result_is_recorded_and_never_served() -> None:
    loop = Loop(pinned=False)
    loop.annotate("go")
    loop.reconcile()
    loop.finish(loop.runs()[0], "Succeeded", version="churn-v2")
    loop.kube.objects[("ModelVersion", NS, "churn-v2")]["status"]["phase"] = "Rejected"
    status = loop.reconcile(10)
    assert status["lastRetraining"]["phase"] == "Rejected"
    assert _condition(status)["reason"] == "NewVersionRejected"
    assert status["stableVersion"] == "v1"
    assert status.get("canaryVersion") is None
    assert "RetrainingFailed" in [reason for reason, _ in loop.kube.events]


@pytest.mark.parametrize(("zone", "fires_at_utc"), [(None, 3), ("Europe/Berlin", 2)])
def test_a_schedule_fires_once_per_time_in_its_time_zone(
    zone: str | None, fires_at_utc: int
) -> None:
    extra: dict[str, Any] = {"timeZone": zone} if zone else {}
    loop = Loop(schedule="0 3 * * *", cooldown="1h", **extra)
    start = NOW.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    loop.now = start
    fired: list[int] = []
    for _ in range(6 * 12):  # six hours, every five minutes
        before = len(loop.runs())
        loop.reconcile(300)
        if len(loop.runs()) > before:
            fired.append(loop.now.hour)
    assert fired == [fires_at_utc]


# --------------------------------------------------------------------------- pure rules


def _spec(**fields: Any) -> Any:
    from trailboss.api.retraining import RetrainingSpec

    return RetrainingSpec.model_validate({"template": TEMPLATE, **fields})


def test_the_cooldown_compares_schedule_times_not_when_they_were_acted_on() -> None:
    from trailboss.api.deployment import DeploymentStatus
    from trailboss.api.retraining import RetrainingStatus
    from trailboss.policies import retraining as rules

    slot = dt.datetime(2026, 11, 23, 3, tzinfo=dt.UTC)
    late = slot + dt.timedelta(seconds=2)
    last = RetrainingStatus(
        reason=rules.SCHEDULE, trigger=slot.isoformat(), triggered_at=late, phase="Failed"
    )
    status = DeploymentStatus(last_retraining=last, retrainings=[last])
    following = slot + dt.timedelta(days=1)
    trigger = rules.Trigger(rules.SCHEDULE, following.isoformat(), slot=following)
    now = following + dt.timedelta(seconds=1)
    assert rules.hold(_spec(), status, trigger, now, running=0) is None
    drift = rules.Trigger(rules.DRIFT, "check-9")
    held = rules.hold(_spec(), status, drift, slot + dt.timedelta(hours=23), running=0)
    assert held is not None
    assert held.reason == "Cooldown"  # a drift trigger counts from when it is acted on


def test_only_an_unbroken_streak_of_the_stable_version_counts() -> None:
    from trailboss.api.deployment import DeploymentStatus
    from trailboss.api.monitoring import DriftStatus
    from trailboss.policies.retraining import drift_streak

    at = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    drift = DriftStatus(model_version="v1", consecutive=3, checked_at=at)
    assert drift_streak(DeploymentStatus(stable_version="v1", drift=drift)) == 3
    assert drift_streak(DeploymentStatus(stable_version="v2", drift=drift)) == 0
    failed = drift.model_copy(update={"failed_at": at + dt.timedelta(minutes=5)})
    assert drift_streak(DeploymentStatus(stable_version="v1", drift=failed)) == 0


def test_reference_profile_retries_back_off_and_end() -> None:
    from trailboss.policies.drift import PROFILE_ATTEMPTS, profile_retry_delay

    delays = [profile_retry_delay(n) for n in range(1, PROFILE_ATTEMPTS + 1)]
    assert delays == [300.0, 600.0, 1200.0, None]
