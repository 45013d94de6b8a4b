"""Retraining on the real stack: the whole loop from a trained version to a
retrained one in production, and the guards that keep a drift that does not go
away from becoming a storm of runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.cluster import Cluster, Operator, own_labels, wait_for
from e2e.lifecycle import TRAINER, s3, split
from e2e.loop import Loop, LoopFailed, Outcome, Setting
from e2e.serving import (
    SHIFTED,
    Inputs,
    Load,
    model_version,
    near_weight,
    publish_model,
    reference_csv,
    served_versions,
)
from e2e.traffic import promql
from trailboss.api.durations import TIME_SCALE_ANNOTATION

pytestmark = pytest.mark.usefixtures("running_operator")
RETRAINED_BY = "trailboss.dev/retrained-by"


def _prometheus(cluster: Cluster) -> str:
    url = cluster.env.get("TRAILBOSS_PROMETHEUS_URL")
    if not url:
        pytest.fail("the stack exports no TRAILBOSS_PROMETHEUS_URL: no Prometheus to analyse")
    return url


def _retraining_runs(cluster: Cluster, namespace: str, deployment: str) -> list[dict[str, Any]]:
    return [
        run
        for run in cluster.list(namespace, "trainingruns")
        if (run["metadata"].get("labels") or {}).get(RETRAINED_BY) == deployment
    ]


@pytest.mark.long(510)
def test_drift_retrains_and_the_new_version_rolls_out_by_canary(
    cluster: Cluster, namespace: str
) -> None:
    setting = Setting(
        namespace=namespace,
        model=f"loop-{namespace}",
        dataset=f"s3://datasets/e2e/{namespace}/train.csv",
        predictions=f"s3://mlflow/e2e/{namespace}/predictions/",
        prometheus=_prometheus(cluster),
    )
    said: list[str] = []
    loop = Loop(cluster, setting, said.append)
    try:
        outcome = loop.run()
    except LoopFailed as error:
        pytest.fail(f"{error}\nwhat happened:\n" + "\n".join(said[-60:]))
    timeline, load = loop.timeline, loop.load
    assert load is not None
    status = cluster.status(namespace, "deployments", "churn")

    # Unshifted traffic, checked several times, triggered nothing.
    before = [c for c in timeline.checks if outcome.shifted_at and c.at < outcome.shifted_at]
    decided = [c for c in before if c.drifted is not None]
    assert len(decided) >= 2, before
    assert not any(c.drifted for c in decided), before
    assert status["retrainingCount"] == 1, status["retrainings"]
    record = status["retrainings"][0]
    assert record["reason"] == "Drift"
    assert int(record["trigger"].removeprefix("check-")) > max(c.number for c in before)

    _lineage(cluster, namespace, outcome, record)

    # Both new versions went through the canary steps: the client got each step's
    # weight, Prometheus analysis measured them, nothing was dropped.
    for version in (outcome.candidate, outcome.retrained):
        shares = {s.weight: s for s in timeline.steps if s.version == version}
        assert {25, 50} <= set(shares), timeline.steps
        for weight in (25, 50):
            step = shares[weight]
            assert near_weight(step.observed, weight, step.answers), timeline.steps
    phases = [a["phase"] for a in status["analysis"] if a["version"] == outcome.retrained]
    assert "Successful" in phases, status["analysis"]
    assert "Failed" not in phases, status["analysis"]
    promoted = [p["version"] for p in status["promoted"]]
    # The first version was served at once (nothing to canary against), then each promoted.
    assert promoted[-2:] == [outcome.candidate, outcome.retrained], promoted
    after = [c for c in timeline.checks if c.version == outcome.retrained and c.drifted is not None]
    assert after, timeline.checks
    assert after[-1].drifted is False, after  # trained on the new data: no drift
    answering = load.answering(timeout=5)  # the Service answers once kube-proxy has its endpoints
    assert load.failures(since=answering) == 0, load.errors(since=answering)
    events = [e.reason for e in cluster.events(namespace, "churn")]
    assert events.count("RetrainingTriggered") == 1, events
    wait_for(
        "the replaced versions' pods to go",
        lambda: served_versions(cluster, namespace) == {outcome.retrained},
        60,
    )
    _servers_reported_to_prometheus_and_s3(cluster, setting, outcome)
    waited = cluster.kubectl(
        "-n",
        namespace,
        "wait",
        "--for=condition=Ready",
        "deployments.trailboss.dev/churn",
        "--timeout=30s",
        check=False,
    )
    assert waited.returncode == 0, waited.stderr


def _servers_reported_to_prometheus_and_s3(
    cluster: Cluster, setting: Setting, outcome: Outcome
) -> None:
    """Every version's servers reached Prometheus through its Kubernetes discovery,
    labelled with their version, and wrote Parquet prediction logs partitioned
    by deployment, version, date and hour."""
    versions = [outcome.first, outcome.candidate, str(outcome.retrained)]
    query = (
        "sum by (version) (max_over_time("
        f'trailboss_model_requests_total{{model="{setting.model}"}}[15m]))'
    )
    counted = {
        r["metric"]["version"]: float(r["value"][1])
        for r in promql(cluster.env["TRAILBOSS_PROMETHEUS_URL"], query)
    }
    assert all(counted.get(v, 0) > 0 for v in versions), counted
    bucket, prefix = split(setting.predictions)
    for version in versions:
        under = f"{prefix.rstrip('/')}/deployment={setting.namespace}.churn/version={version}/"
        listed = s3(cluster.env).list_objects_v2(Bucket=bucket, Prefix=under)
        keys = [o["Key"] for o in listed.get("Contents", [])]
        assert keys, f"no prediction logs under s3://{bucket}/{under}"
        assert all(k.endswith(".parquet") and "/date=" in k and "/hour=" in k for k in keys)


def _lineage(cluster: Cluster, namespace: str, outcome: Outcome, record: dict[str, Any]) -> None:
    """Deployment -> TrainingRun -> MLflow run -> ModelVersion, each naming the next."""
    run = cluster.get(namespace, "trainingruns", str(outcome.retraining_run))
    assert run is not None
    meta = run["metadata"]
    assert meta["labels"][RETRAINED_BY] == "churn"
    assert meta["annotations"]["trailboss.dev/replaces"] == outcome.candidate
    assert float(meta["annotations"]["trailboss.dev/drift-score"]) > 0
    assert [o["kind"] for o in meta["ownerReferences"]] == ["Deployment"]
    first = cluster.status(namespace, "trainingruns", outcome.first)
    # The retraining pinned the data as it was when it ran: the new data.
    assert run["status"]["dataset"]["etag"] != first["dataset"]["etag"]
    version = cluster.get(namespace, "modelversions", str(outcome.retrained))
    assert version is not None
    assert run["status"]["modelVersion"] == outcome.retrained == record["modelVersion"]
    assert run["status"]["mlflow"]["runId"] in version["spec"]["artifactUri"]
    assert version["status"]["phase"] == "Validated"


def test_a_rejected_retraining_is_never_served_and_drift_starts_no_second_run(
    cluster: Cluster, namespace: str, own_operator: Operator
) -> None:
    """Drift that does not go away, a retrained version that fails its gate and
    kill -9 of the operator while it trains (the test's own operator, so the others
    run on): one run, nothing new served."""
    model, base = f"storm-{namespace}", f"s3://mlflow/e2e/{namespace}"
    publish_model(cluster.env, f"{base}/v1/model")
    bucket, key = split(f"{base}/reference.csv")
    s3(cluster.env).put_object(Bucket=bucket, Key=key, Body=reference_csv())
    version = model_version("v1", model, f"{base}/v1/model")
    version["spec"]["referenceData"] = f"{base}/reference.csv"
    cluster.create(namespace, version)
    wait_for(
        "the reference profile",
        lambda: cluster.status(namespace, "modelversions", "v1").get("referenceProfile"),
        180,
    )
    template = {
        "model": model,
        "image": "ghcr.io/trailboss-dev/trainer-sklearn:0.1.0",
        "command": ["python", TRAINER],  # the bundled data: no dataset to seed
        "register": {"validation": {"minimums": {"accuracy": 0.9999}}},
    }
    cluster.create(
        namespace,
        {
            "apiVersion": "trailboss.dev/v1alpha1",
            "kind": "Deployment",
            # Drift checks twice as often: what this test checks is what the
            # checks decide, not their interval (the loop above keeps the
            # intervals users get).
            "metadata": {
                "name": "churn",
                "labels": own_labels(namespace),
                "annotations": {TIME_SCALE_ANNOTATION: "0.5"},
            },
            "spec": {
                "model": model,
                "modelVersion": "v1",
                "monitoring": {
                    "predictionLogs": f"{base}/predictions",
                    "interval": "10s",
                    "window": "30s",
                    "minSamples": 300,
                },
                "retraining": {
                    "onDrift": True,
                    "driftChecks": 1,
                    "cooldown": "30m",
                    "template": template,
                },
            },
        },
    )
    cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
    service = cluster.core.read_namespaced_service("churn", namespace)
    inputs = Inputs()
    inputs.shift()
    url = f"http://{service.spec.cluster_ip}:8080/v2/models/{model}/infer"
    with Load(url, rows=inputs, per_second=10, limit=4000, deadline=360) as load:
        answering = load.answering()
        runs = wait_for(
            "a retraining run", lambda: _retraining_runs(cluster, namespace, "churn"), 180
        )
        own_operator.kill()  # right after it created the run
        own_operator.start()
        wait_for(
            "the run to train",
            lambda: (
                cluster.status(namespace, "trainingruns", runs[0]["metadata"]["name"]).get("phase")
                in ("Running", "Succeeded")
            ),
            120,
        )
        own_operator.kill()  # while it trains
        own_operator.start()

        def rejected() -> dict[str, Any] | None:
            status = cluster.status(namespace, "deployments", "churn")
            last = (status.get("retrainings") or [{}])[-1]
            return status if last.get("phase") == "Rejected" else None

        status = wait_for("the retrained version to be rejected", rejected, 240)
        checks = status["drift"]["checks"]
        _drift_is_reported(cluster, namespace)
        wait_for(
            "three more drifted checks",
            lambda: (
                (cluster.status(namespace, "deployments", "churn")["drift"].get("checks") or 0)
                >= checks + 3
            ),
            120,
        )
        assert load.failures(since=answering) == 0, load.errors(since=answering)

    status = cluster.status(namespace, "deployments", "churn")
    assert status["drift"]["consecutive"] >= 4, status["drift"]
    assert len(_retraining_runs(cluster, namespace, "churn")) == 1
    assert status["retrainingCount"] == 1
    rejected_version = status["retrainings"][0]["modelVersion"]
    condition = next(c for c in status["conditions"] if c["type"] == "Retraining")
    assert (condition["status"], condition["reason"]) == ("False", "Cooldown"), condition
    assert served_versions(cluster, namespace) == {"v1"}
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v1", None)
    assert rejected_version
    assert rejected_version not in json.dumps(status["traffic"])
    events = [e.reason for e in cluster.events(namespace, "churn")]
    # Events follow the status write they announce: a kill in between may lose one,
    # a restart never repeats one.
    assert events.count("RetrainingTriggered") <= 1, events


def _drift_is_reported(cluster: Cluster, namespace: str) -> None:
    """Exactly the shifted features drifted: in status, the condition, an event
    and Prometheus."""
    status = cluster.status(namespace, "deployments", "churn")
    drift = status["drift"]
    assert drift["drifted"] is True, drift
    assert sorted(f["name"] for f in drift["features"] if f["drifted"]) == list(SHIFTED)
    assert drift["windowRows"] >= 300
    condition = next(c for c in status["conditions"] if c["type"] == "DriftMonitoring")
    assert (condition["status"], condition["reason"]) == ("True", "DriftDetected")
    events = [e for e in cluster.events(namespace, "churn") if e.reason == "DriftDetected"]
    assert events
    assert all(name in events[-1].message for name in SHIFTED)
    selector = f'namespace="{namespace}",deployment="churn"'

    def exported() -> list[str] | None:
        series = promql(
            cluster.env["TRAILBOSS_PROMETHEUS_URL"], f"trailboss_drift_detected{{{selector}}} == 1"
        )
        names = sorted(s["metric"]["feature"] for s in series)
        return names if names == list(SHIFTED) else None

    assert wait_for("Prometheus to hold the drifted features", exported, 60) == list(SHIFTED)
    share = promql(cluster.env["TRAILBOSS_PROMETHEUS_URL"], f"trailboss_drift_share{{{selector}}}")
    assert share
    assert float(share[0]["value"][1]) >= 0.5
