"""The whole model lifecycle on one cluster, as `make demo` shows it and the
e2e suite checks it.

Train v1 with the example trainer, validate it and serve it behind a
Deployment that follows the newest Validated version. A bounded client sends
requests all along. A candidate v2 is trained and rolled out by canary, gated
by Prometheus. Then the client's inputs shift (a new scanner reports every
measurement 30 % larger) and fresh labelled data in the new units lands where
the training data lives; drift checks find it, the Deployment retrains from its
template on the new data, and the retrained version is validated and rolled
out by the same canary. Its drift checks find no drift: the loop is closed.
"""

from __future__ import annotations

import csv
import io
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from e2e.cluster import ROOT, Cluster, ready, wait_for
from e2e.lifecycle import s3, seed_dataset, split
from e2e.serving import Load, share

EXAMPLE = ROOT / "examples" / "trainingrun-churn.yaml"
LABEL = "target"
CALIBRATION = 1.3
"""The shift: every measurement the client sends after it is 30 % larger."""
CANDIDATE = {"n_estimators": "200", "max_depth": "8"}
"""Hyperparameters of v2 and of the retraining template."""


class LoopFailed(AssertionError):
    """A stage of the loop did not happen in time; the message says which."""


@dataclass(frozen=True)
class Setting:
    """Where the loop runs and how fast it goes."""

    namespace: str
    model: str
    dataset: str
    """Training CSV, s3://bucket/key.csv: the example data, then the new data."""
    predictions: str
    prometheus: str
    deployment: str = "churn"
    interval: int = 15
    """Seconds between drift checks."""
    window: int = 30
    """Seconds of predictions each check compares."""
    steps: tuple[tuple[int, int], ...] = ((25, 20), (50, 20))
    """Canary steps: (weight %, pause seconds)."""
    replicas: int = 4
    requests_per_second: float = 10.0
    rows_per_request: int = 10
    deadline: float = 900.0
    """The client stops by itself after this many seconds."""


# ----------------------------------------------------------------------------- data


@dataclass
class ExampleData:
    """The example training data (read back from S3) and the client's inputs."""

    header: list[str]
    rows: list[list[float]]
    shifted: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(3))

    @classmethod
    def seed(cls, env: dict[str, str], uri: str) -> ExampleData:
        seed_dataset(env, uri)
        bucket, key = split(uri)
        body = s3(env).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        header, *rows = list(csv.reader(io.StringIO(body)))
        return cls(header, [[float(v) for v in row] for row in rows])

    @property
    def features(self) -> list[str]:
        return [name for name in self.header if name != LABEL]

    def batch(self, size: int) -> list[list[float]]:
        """Rows like the training rows, in the client's current units."""
        label = self.header.index(LABEL)
        factor = CALIBRATION if self.shifted else 1.0
        picked = (self.rng.choice(self.rows) for _ in range(size))
        return [[v * factor for i, v in enumerate(row) if i != label] for row in picked]

    def new_units_csv(self) -> bytes:
        """The same labelled rows, measured in the new units."""
        label = self.header.index(LABEL)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow(
                [v if i == label else round(v * CALIBRATION, 6) for i, v in enumerate(row)]
            )
        return out.getvalue().encode()


# ------------------------------------------------------------------------ manifests


def training_spec(setting: Setting, hyperparameters: dict[str, str]) -> dict[str, Any]:
    """The example TrainingRun's spec, for this setting's model and data."""
    spec: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())["spec"]
    spec["model"] = setting.model
    spec["experiment"] = setting.model
    spec["dataset"] = {"uri": setting.dataset}
    spec["hyperparameters"] = hyperparameters
    return spec


def training_run(setting: Setting, name: str, hyperparameters: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name, "namespace": setting.namespace},
        "spec": training_spec(setting, hyperparameters),
    }


def error_rate(model: str) -> str:
    selector = f'model="{model}",version="{{{{version}}}}"'
    return (
        f'sum(rate(trailboss_model_requests_total{{{selector},outcome="error"}}[20s])) / '
        f"sum(rate(trailboss_model_requests_total{{{selector}}}[20s]))"
    )


def deployment(setting: Setting, retrain: dict[str, str]) -> dict[str, Any]:
    """Serve the newest Validated version, roll out by canary gated on the error
    rate, check drift every interval and retrain after two drifted checks."""
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": setting.deployment, "namespace": setting.namespace},
        "spec": {
            "model": setting.model,
            "versionPolicy": {"latest": "Validated"},
            "replicas": setting.replicas,
            "rollout": {
                "steps": [{"weight": w, "pause": f"{p}s"} for w, p in setting.steps],
                "scaleDownDelay": "5s",
                "analysis": {
                    "prometheusUrl": setting.prometheus,
                    "interval": "10s",
                    "failureLimit": 1,
                    "queries": [
                        {"name": "error-rate", "query": error_rate(setting.model), "max": 0.05}
                    ],
                },
            },
            "monitoring": {
                "predictionLogs": setting.predictions,
                "interval": f"{setting.interval}s",
                "window": f"{setting.window}s",
                "minSamples": 500,
            },
            "retraining": {
                "onDrift": True,
                "driftChecks": 2,
                "cooldown": "30m",
                "maxConcurrentRuns": 1,
                "template": training_spec(setting, retrain),
            },
        },
    }


# ------------------------------------------------------------------------- timeline


@dataclass
class Sample:
    """The Deployment as seen at one moment."""

    at: float
    phase: str | None
    stable: str | None
    canary: str | None
    weight: int | None

    @property
    def state(self) -> tuple[str | None, str | None, str | None, int | None]:
        return (self.phase, self.stable, self.canary, self.weight)


@dataclass
class StepShare:
    """What the client saw during one canary step, once its pods were ready."""

    version: str
    weight: int
    observed: float
    answers: int


@dataclass
class Check:
    """One completed drift check."""

    at: float
    number: int
    version: str | None
    drifted: bool | None
    drift_share: float | None
    drifted_features: int | None
    checked_features: int | None
    score: float | None
    rows: int | None


@dataclass
class Timeline:
    """Watches the namespace once a second and says what changed, with the
    elapsed time; keeps what it saw for the summary, the picture and the tests."""

    cluster: Cluster
    setting: Setting
    say: Callable[[str], None]
    start: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    load: Load | None = None
    _phases: dict[str, str] = field(default_factory=dict)
    steps: list[StepShare] = field(default_factory=list)
    _settled: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def mark(self, text: str) -> None:
        self.marks.append((time.monotonic(), text))
        self.say(text)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.poll()
            except Exception:  # an API hiccup must not end the watch; the next poll sees it all
                continue

    def poll(self) -> None:
        ns = self.setting.namespace
        for plural in ("trainingruns", "modelversions"):
            for item in self.cluster.list(ns, plural):
                self._object(plural[:-1], item)
        status = self.cluster.status(ns, "deployments", self.setting.deployment)
        if status:
            self._deployment(status)
            self._drift(status.get("drift") or {})
            for record in status.get("retrainings") or []:
                self._retraining(record)

    def _changed(self, key: str, value: str) -> bool:
        if self._phases.get(key) == value:
            return False
        self._phases[key] = value
        return True

    def _object(self, kind: str, item: dict[str, Any]) -> None:
        name, status = item["metadata"]["name"], item.get("status") or {}
        phase = status.get("phase")
        if phase and self._changed(f"{kind}/{name}", phase):
            message = ready(status).get("message") or ""
            self.say(f"{kind}/{name}: {phase}" + (f" ({message})" if message else ""))

    def _deployment(self, status: dict[str, Any]) -> None:
        now = time.monotonic()
        sample = Sample(
            now,
            status.get("phase"),
            status.get("stableVersion"),
            status.get("canaryVersion"),
            status.get("canaryWeight"),
        )
        previous = self.samples[-1] if self.samples else None
        self.samples.append(sample)
        traffic = status.get("traffic") or []
        canary = [t for t in traffic if t["version"] == sample.canary]
        at_weight = not sample.canary or (canary and canary[0]["desiredWeight"] == sample.weight)
        if self._settled is None and at_weight and traffic and all(_holds(t) for t in traffic):
            self._settled = now  # the step's pods are all ready: its weight holds from here
        if previous and sample.state == previous.state:
            return
        if previous and previous.canary and previous.weight and self.load is not None:
            self._step_ended(previous.canary, previous.weight, now)
        self._settled = None
        if sample.canary:
            self.say(
                f"deployment/{self.setting.deployment}: {sample.phase}, canary "
                f"{sample.canary} at {sample.weight}% (stable {sample.stable})"
            )
        else:
            self.say(
                f"deployment/{self.setting.deployment}: {sample.phase}, serving "
                f"{sample.stable or 'nothing yet'}"
            )

    def _step_ended(self, canary: str, weight: int, now: float) -> None:
        assert self.load is not None
        seen = self.load.since(self._settled, now) if self._settled else []
        if not seen:
            return  # a step over before its pods were ready (100 %, just before promotion)
        step = StepShare(canary, weight, share(seen, canary), len(seen))
        self.steps.append(step)
        self.say(
            f"  the client got {step.observed:.0%} of {step.answers} answers from {canary} "
            f"at weight {weight}%"
        )

    def decided(self, version: str) -> int:
        """Checks of ``version`` that had enough rows to reach a verdict."""
        return sum(c.version == version and c.drifted is not None for c in self.checks)

    def _drift(self, drift: dict[str, Any]) -> None:
        number = drift.get("checks") or 0
        if not number or (self.checks and self.checks[-1].number >= number):
            return
        check = Check(
            time.monotonic(),
            number,
            drift.get("modelVersion"),
            drift.get("drifted"),
            drift.get("driftShare"),
            drift.get("driftedFeatures"),
            drift.get("checkedFeatures"),
            drift.get("score"),
            drift.get("windowRows"),
        )
        self.checks.append(check)
        if check.drifted is None:
            verdict = f"not enough data yet ({check.rows or 0} rows)"
        else:
            verdict = (
                f"{'DRIFT' if check.drifted else 'no drift'}: {check.drifted_features}/"
                f"{check.checked_features} features drifted, {check.rows} rows"
            )
        self.say(f"drift check {number} on {check.version}: {verdict}")

    def _retraining(self, record: dict[str, Any]) -> None:
        run, phase = record.get("trainingRun"), record.get("phase")
        if not run or not phase or not self._changed(f"retraining/{run}", phase):
            return
        if phase == "Running":
            score = record.get("driftScore")
            self.mark(
                f"retraining: {record.get('reason')} (drift score "
                f"{score:.2f}) created trainingrun/{run}"
                if score is not None
                else f"retraining: {record.get('reason')} created trainingrun/{run}"
            )
        else:
            version = record.get("modelVersion")
            self.say(
                f"retraining {run}: "
                + (
                    f"modelversion/{version} is {phase}"
                    if version
                    else f"trainingrun {phase.lower()}"
                )
            )


def _holds(traffic: dict[str, Any]) -> bool:
    """Whether a version's pods are all ready and it gets the weight it should."""
    ready_pods = traffic["replicas"] == traffic["readyReplicas"]
    return bool(ready_pods and traffic.get("actualWeight") == traffic["desiredWeight"])


# ---------------------------------------------------------------------------- loop


@dataclass
class Outcome:
    """What the loop produced, for the summary and the tests."""

    first: str
    candidate: str
    retrained: str | None = None
    retraining_run: str | None = None
    shifted_at: float | None = None


class Loop:
    """Runs the stages in order; each waits for what a user would see next."""

    def __init__(self, cluster: Cluster, setting: Setting, say: Callable[[str], None]) -> None:
        self.cluster, self.setting, self.say = cluster, setting, say
        self.timeline = Timeline(cluster, setting, say)
        self.data: ExampleData | None = None
        self.load: Load | None = None
        self.outcome = Outcome(
            first=f"{setting.deployment}-v1", candidate=f"{setting.deployment}-v2"
        )

    # The stages -------------------------------------------------------------------

    def run(self) -> Outcome:
        s = self.setting
        self.say(f"uploading the example training data to {s.dataset}")
        self.data = ExampleData.seed(self.cluster.env, s.dataset)
        _ensure_bucket(self.cluster.env, s.predictions)
        with self.timeline:
            self._apply(training_run(s, self.outcome.first, {"n_estimators": "50"}))
            self._wait_version(self.outcome.first)
            self._apply(deployment(s, CANDIDATE))
            self._wait_stable(self.outcome.first, 300)
            with self._client() as load:
                self.timeline.mark(
                    f"client: {s.requests_per_second:g} requests/s of "
                    f"{s.rows_per_request} rows to {self._url()}"
                )
                self._wait(
                    "the client's first answers", lambda: any(a.ok for a in load.since(0)), 60
                )
                self._apply(training_run(s, self.outcome.candidate, CANDIDATE))
                self._wait_version(self.outcome.candidate)
                self.timeline.mark(f"{self.outcome.candidate} Validated: canary starts")
                self._wait_stable(self.outcome.candidate, 300)
                self.timeline.mark(f"{self.outcome.candidate} promoted")
                self._wait_checks(self.outcome.candidate, 2)  # unshifted traffic, watched
                self._shift()
                self._wait_retraining()
                self._wait_stable(str(self.outcome.retrained), 420)
                self.timeline.mark(f"{self.outcome.retrained} promoted")
                self._wait_checks(str(self.outcome.retrained), 1)
                load.stop()
        return self.outcome

    def _client(self) -> Load:
        s, data = self.setting, self.data
        assert data is not None
        load = Load(
            self._url(),
            rows=lambda: data.batch(s.rows_per_request),
            features=data.features,
            per_second=s.requests_per_second,
            limit=int(s.requests_per_second * s.deadline),
            deadline=s.deadline,
        )
        self.timeline.load = load
        self.load = load
        return load

    def _wait_checks(self, version: str, count: int) -> None:
        self._wait(
            f"{count} drift check(s) of {version} with enough rows",
            lambda: self.timeline.decided(version) >= count,
            8 * self.setting.interval,
        )

    def _shift(self) -> None:
        assert self.data is not None
        self.data.shifted = True
        self.outcome.shifted_at = time.monotonic()
        bucket, key = split(self.setting.dataset)
        s3(self.cluster.env).put_object(Bucket=bucket, Key=key, Body=self.data.new_units_csv())
        self.timeline.mark(
            f"inputs shift: every measurement x{CALIBRATION}; new labelled data "
            f"in the new units lands in {self.setting.dataset}"
        )

    def _wait_retraining(self) -> None:
        def retrained() -> dict[str, Any] | None:
            status = self._status()
            done = [r for r in status.get("retrainings") or [] if r.get("phase") != "Running"]
            return done[-1] if done else None

        record = self._wait(
            "the drift to be found and a retrained version to pass its gate",
            retrained,
            10 * self.setting.interval + 300,
        )
        if record.get("phase") != "Validated":
            raise LoopFailed(f"the retrained version did not pass its gate: {record}")
        self.outcome.retrained = str(record["modelVersion"])
        self.outcome.retraining_run = str(record["trainingRun"])
        self.timeline.mark(f"{self.outcome.retrained} Validated: canary starts")

    # Helpers ----------------------------------------------------------------------

    def _apply(self, manifest: dict[str, Any]) -> None:
        kind, name = manifest["kind"].lower(), manifest["metadata"]["name"]
        self.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
        self.timeline.mark(f"kubectl apply {kind}/{name}")

    def _status(self) -> dict[str, Any]:
        return self.cluster.status(self.setting.namespace, "deployments", self.setting.deployment)

    def _url(self) -> str:
        status = self._status()
        service = self.cluster.core.read_namespaced_service(
            status.get("serviceName") or self.setting.deployment, self.setting.namespace
        )
        return f"http://{service.spec.cluster_ip}:8080/v2/models/{self.setting.model}/infer"

    def _wait_version(self, name: str) -> None:
        def final() -> str | None:
            run = self.cluster.status(self.setting.namespace, "trainingruns", name)
            if run.get("phase") == "Failed":
                raise LoopFailed(f"trainingrun/{name} failed: {ready(run).get('message')}")
            version = self.cluster.status(self.setting.namespace, "modelversions", name)
            phase = version.get("phase")
            return phase if phase in ("Validated", "Rejected", "Failed") else None

        phase = self._wait(f"modelversion/{name} to pass or fail its gate", final, 300)
        if phase != "Validated":
            raise LoopFailed(f"modelversion/{name} is {phase}")

    def _wait_stable(self, version: str, timeout: float) -> None:
        def stable() -> bool:
            status = self._status()
            return status.get("stableVersion") == version and status.get("phase") == "Healthy"

        self._wait(f"{version} to serve all traffic", stable, timeout)

    def _wait(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        try:
            return wait_for(what, check, timeout, interval=1)
        except LoopFailed:
            raise
        except AssertionError as error:
            raise LoopFailed(f"{error}; deployment status: {self._status()}") from None


def _ensure_bucket(env: dict[str, str], uri: str) -> None:
    client = s3(env)
    bucket, _ = split(uri)
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
