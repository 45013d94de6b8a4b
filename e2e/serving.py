"""Models to serve and a bounded client that records which version answered.

The models are real MLflow models (scikit-learn) uploaded to the stack's S3;
the bad one wraps the good one with the model server's fault injection, so
it fails a share of requests exactly as a subtly broken model would.
"""

from __future__ import annotations

import collections
import functools
import io
import json
import math
import random
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster, wait_for
from e2e.lifecycle import s3, split

FEATURES = ["f0", "f1", "f2", "f3"]
ROW = [[0.1, -0.4, 1.2, 0.3]]
SHIFTED = ("f1", "f2")
"""The features `Inputs.shift()` moves."""


def publish_model(env: dict[str, str], uri: str, error_share: float = 0.0) -> None:
    """Upload to ``uri`` a tiny classifier saved as an MLflow model (wrapped with
    faults when ``error_share`` > 0). Every test gets its own copy in S3; the
    directories are built once per process, since building one takes seconds."""
    _upload(env, _built_model(error_share), uri)


_BUILT = tempfile.TemporaryDirectory(prefix="trailboss-e2e-models-")
"""Model directories built by this process, removed when it exits."""


@functools.cache
def _built_model(error_share: float) -> Path:
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from trailboss.serving.faults import Faults, save_faulty_model

    base = Path(_BUILT.name) / "base"
    if not base.exists():
        rng = np.random.default_rng(7)
        frame = pd.DataFrame(rng.normal(size=(200, len(FEATURES))), columns=FEATURES)
        model = LogisticRegression().fit(frame, (frame["f0"] + frame["f1"] > 0).astype(int))
        # Named requirements: MLflow's own inference imports the model in a
        # subprocess, most of the time a save takes.
        mlflow.sklearn.save_model(model, str(base), input_example=frame.head(2),
                                  pip_requirements=["scikit-learn", "mlflow"])  # fmt: skip
    if error_share <= 0:
        return base
    faulty = Path(_BUILT.name) / f"faulty-{error_share}"
    save_faulty_model(str(faulty), str(base), Faults(error_share=error_share))
    return faulty


def _upload(env: dict[str, str], directory: Path, uri: str) -> None:
    client = s3(env)
    bucket, prefix = split(uri)
    for path in directory.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(directory)}")


def model_version(name: str, model: str, uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "artifactUri": uri,
            "metrics": {"accuracy": 0.9},
            "validation": {"minimums": {"accuracy": 0.5}},
        },
    }


@dataclass
class Answer:
    at: float
    version: str | None
    ok: bool
    error: str | None = None
    """Why a request failed: the HTTP status and body, or the connection error."""


@dataclass
class Load:
    """Requests to one URL at a steady pace from a thread, at most ``limit`` of
    them and never past ``deadline`` seconds: a client that keeps using the model
    while it is rolled out."""

    url: str
    host: str | None = None
    per_second: float = 15.0
    limit: int = 6000
    deadline: float = 300.0
    rows: Callable[[], list[list[float]]] | None = None
    """A batch of rows for each request (default: the one fixed ROW)."""
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    """The name of each row's values, in order."""
    answers: list[Answer] = field(default_factory=list)
    error: BaseException | None = None
    """Why the client stopped early (a bug in ``rows``, say): reading answers raises it."""
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        try:
            self._send()
        except Exception as error:
            self.error = error

    def _send(self) -> None:
        started = time.monotonic()
        fixed = None if self.rows else v2_request(ROW, self.features).encode()
        while (
            not self._stop.is_set()
            and len(self.answers) < self.limit
            and time.monotonic() - started < self.deadline
        ):
            body = v2_request(self.rows(), self.features).encode() if self.rows else fixed
            assert body is not None
            self.answers.append(self._ask(body))
            self._stop.wait(1.0 / self.per_second)

    def _ask(self, body: bytes) -> Answer:
        headers = {"Content-Type": "application/json", **({"Host": self.host} if self.host else {})}
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                version = json.load(reply).get("model_version")
                return Answer(time.monotonic(), version, True)
        except urllib.error.HTTPError as error:
            detail = f"HTTP {error.code}: {error.read()[:200]!r}"
            return Answer(time.monotonic(), None, False, detail)
        except (urllib.error.URLError, OSError, ValueError) as error:
            return Answer(time.monotonic(), None, False, f"{type(error).__name__}: {error}")

    def since(self, start: float, end: float | None = None) -> list[Answer]:
        self._raise()
        return [a for a in list(self.answers) if a.at >= start and (end is None or a.at < end)]

    def failures(self, since: float = 0.0) -> int:
        self._raise()
        return sum(not a.ok for a in list(self.answers) if a.at >= since)

    def errors(self, since: float = 0.0) -> list[tuple[float, str | None]]:
        """When and why each request since then failed, for assertion messages."""
        return [(round(a.at - since, 1), a.error) for a in self.since(since) if not a.ok]

    def answering(self, timeout: float = 60.0) -> float:
        """When the first request succeeded, waiting for it: a Service answers
        a moment after its pods are ready, once kube-proxy has its endpoints."""

        def first() -> float | None:
            return next((a.at for a in self.since(0.0) if a.ok), None)

        return wait_for(f"{self.url} to answer", first, timeout)

    def _raise(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the client stopped: {self.error!r}") from self.error


def served_versions(cluster: Cluster, namespace: str, deployment: str = "churn") -> set[str]:
    """The ModelVersions that have model server Deployments (apps/v1) right now."""
    found = cluster.apps.list_namespaced_deployment(
        namespace, label_selector=f"trailboss.dev/deployment={deployment}"
    ).items
    return {(d.metadata.labels or {})["trailboss.dev/model-version"] for d in found}


def ready_pods(cluster: Cluster, namespace: str, version: str, deployment: str = "churn") -> int:
    """Ready pods of one version's model server, as its Deployment (apps/v1) reports
    them: what the operator decides from, where status.traffic is written a moment
    after the decision acts."""
    found = cluster.apps.list_namespaced_deployment(
        namespace,
        label_selector=f"trailboss.dev/deployment={deployment},trailboss.dev/model-version={version}",
    ).items
    ready = 0
    for d in found:
        ready += d.status.ready_replicas or 0
    return ready


def v2_request(rows: list[list[float]], features: list[str] = FEATURES) -> str:
    """An Open Inference Protocol request: one named input tensor per feature."""
    return json.dumps(
        {
            "inputs": [
                {"name": f, "shape": [len(rows)], "datatype": "FP64",
                 "data": [row[i] for row in rows]}
                for i, f in enumerate(features)
            ]
        }
    )  # fmt: skip


def share(answers: list[Answer], version: str) -> float:
    """Share of the successful answers that came from ``version``."""
    counted = collections.Counter(a.version for a in answers if a.ok)
    total = sum(counted.values())
    return counted[version] / total if total else 0.0


ROUTING_ERROR = 0.05  # what a step may miss by: replica rounding, the router's own balancing
FEWEST_ANSWERS = 30  # below this a share says little about the weight


def near_weight(observed: float, weight: int, answers: int) -> bool:
    """Whether ``observed`` (a share of ``answers``) is what canary ``weight`` gives.

    kube-proxy and the Gateway pick a backend per connection at random, so a step
    of n answers varies by sqrt(p(1-p)/n): a fixed tolerance fails a fair step of 50
    answers one time in five. Allowed: the routing error plus three standard errors.
    """
    expected = weight / 100
    noise = 3 * math.sqrt(expected * (1 - expected) / answers)
    return answers >= FEWEST_ANSWERS and abs(observed - expected) <= ROUTING_ERROR + noise


def reference_csv(rows: int = 5000) -> bytes:
    """Reference data for the published models: standard normal features."""
    rng = random.Random(1)
    out = io.StringIO()
    out.write(",".join(FEATURES) + "\n")
    for _ in range(rows):
        out.write(",".join(f"{rng.gauss(0, 1):.6f}" for _ in FEATURES) + "\n")
    return out.getvalue().encode()


class Inputs:
    """Batches of rows drawn like the reference; `shift()` moves the SHIFTED
    features by 1.5 standard deviations."""

    def __init__(self) -> None:
        self.rng = random.Random(2)
        self.offset = dict.fromkeys(FEATURES, 0.0)

    def shift(self) -> None:
        for name in SHIFTED:
            self.offset[name] = 1.5

    def __call__(self) -> list[list[float]]:
        return [[self.rng.gauss(self.offset[f], 1) for f in FEATURES] for _ in range(10)]
