"""Every example a user would copy is valid; bad manifests fail naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests.unit.schema import MODELS, schema_errors
from trailboss.api.common import explain

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def _load(name: str) -> dict[str, Any]:
    path = next(p for p in EXAMPLES if p.name == name)
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    return manifest


def _model_errors(manifest: dict[str, Any]) -> str:
    try:
        MODELS[manifest["kind"]].model_validate(manifest)
    except ValidationError as error:
        return explain(error)
    return ""


def test_there_is_an_example_of_every_kind() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in EXAMPLES}
    assert kinds == set(MODELS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "trailboss.dev/v1alpha1"
    assert schema_errors(manifest) == []
    assert _model_errors(manifest) == ""


def _with(name: str, path: str, value: Any) -> dict[str, Any]:
    """The example ``name`` with ``path`` (dotted) set to ``value`` (None deletes)."""
    manifest = copy.deepcopy(_load(name))
    *parents, leaf = path.split(".")
    node = manifest
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is None:
        node.pop(leaf)
    elif isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return manifest


TR = "trainingrun-churn.yaml"
QUEUED = "trainingrun-queued-gpu.yaml"
MV = "modelversion-import.yaml"
DEP = "deployment-pinned.yaml"

# (manifest, what the API server's schema says, what the operator's model says)
BAD = {
    "workers below one": (
        _with(TR, "spec.workers", 0),
        "spec.workers: 0 is less than the minimum of 1",
        "spec.workers: Input should be greater than or equal to 1",
    ),
    "no image": (
        _with(TR, "spec.image", None),
        "spec: 'image' is a required property",
        "spec.image: Field required",
    ),
    "dataset not in s3": (
        _with(TR, "spec.dataset.uri", "/data/churn.csv"),
        "spec.dataset.uri: '/data/churn.csv' does not match",
        "spec.dataset.uri: String should match pattern",
    ),
    "hyperparameter not quoted": (
        _with(TR, "spec.hyperparameters.n_estimators", 100),
        "spec.hyperparameters.n_estimators: 100 is not of type 'string'",
        "spec.hyperparameters.n_estimators: Input should be a valid string",
    ),
    "bad memory quantity": (
        _with(TR, "spec.resources.requests.memory", "lots"),
        "spec.resources.requests.memory: 'lots' does not match",
        "",
    ),
    "a label in the operator's own prefix": (
        _with(QUEUED, "spec.podTemplate.metadata.labels", {"trailboss.dev/model": "other"}),
        "",  # a CEL rule on the API server; see e2e
        "spec.podTemplate.metadata.labels: keys under trailboss.dev/ and app.kubernetes.io/",
    ),
    "a hostPath volume": (
        _with(QUEUED, "spec.podTemplate.volumes.0", {"name": "host", "hostPath": {"path": "/"}}),
        "",
        "spec.podTemplate.volumes.0: Value error, a volume takes exactly one of emptyDir",
    ),
    "a mount of an undeclared volume": (
        _with(QUEUED, "spec.podTemplate.volumeMounts.0.name", "datasets"),
        "",
        "spec.podTemplate.volumeMounts: each mount's name is the name of one of volumes",
    ),
    "a second /dev/shm": (
        _with(QUEUED, "spec.podTemplate.volumeMounts.0.mountPath", "/dev/shm"),
        "",
        "spec.podTemplate.volumeMounts: shmSize mounts a volume at /dev/shm already",
    ),
    "a queued run suspended": (
        _with(QUEUED, "spec.suspend", True),
        "",
        "spec.suspend: a run with the label kueue.x-k8s.io/queue-name starts when Kueue",
    ),
    "an unknown affinity operator": (
        _with(
            QUEUED,
            "spec.podTemplate.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms.0.matchExpressions.0.operator",
            "Matches",
        ),
        "spec.podTemplate.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms.0.matchExpressions.0.operator: 'Matches' is not one of",
        "matchExpressions.0.operator: Input should be 'In', 'NotIn', 'Exists', 'DoesNotExist'",
    ),
    "artifact not s3 or runs": (
        _with(MV, "spec.artifactUri", "gs://bucket/model"),
        "",  # a CEL rule on the API server; see e2e
        "spec.artifactUri: the artifact is `s3://<bucket>/<path>` or `runs:/<run-id>",
    ),
    "unknown deletion policy": (
        _with(MV, "spec.deletionPolicy", "Archive"),
        "spec.deletionPolicy: 'Archive' is not one of ['Retain', 'Delete']",
        "spec.deletionPolicy: Input should be 'Retain' or 'Delete'",
    ),
    "canary weight over 100": (
        _with(DEP, "spec.rollout.steps.2", {"weight": 150}),
        "spec.rollout.steps.2.weight: 150 is greater than the maximum of 100",
        "spec.rollout.steps.2.weight: Input should be less than or equal to 100",
    ),
    "canary weights decrease": (
        _with(DEP, "spec.rollout.steps.1", {"weight": 5}),
        "",  # a CEL rule on the API server; see e2e
        "spec.rollout.steps: weights must strictly increase",
    ),
    "both a pinned version and a policy": (
        _with(DEP, "spec.versionPolicy", {"latest": "Validated"}),
        "",  # a CEL rule on the API server; see e2e
        "spec: Value error, set exactly one of spec.modelVersion",
    ),
    "neither a pinned version nor a policy": (
        _with(DEP, "spec.modelVersion", None),
        "",
        "spec: Value error, set exactly one of spec.modelVersion",
    ),
    "pause not a duration": (
        _with(DEP, "spec.rollout.steps.0.pause", "five minutes"),
        "spec.rollout.steps.0.pause: 'five minutes' does not match",
        "spec.rollout.steps.0.pause: String should match pattern",
    ),
    "unknown strategy": (
        _with(DEP, "spec.rollout.strategy", "BlueGreen"),
        "spec.rollout.strategy: 'BlueGreen' is not one of ['Canary', 'Replace', 'Shadow']",
        "spec.rollout.strategy: Input should be 'Canary', 'Replace' or 'Shadow'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifest_is_rejected_naming_the_field(case: str) -> None:
    manifest, schema_message, model_message = BAD[case]
    errors = schema_errors(manifest)
    if schema_message:
        assert any(e.startswith(schema_message) for e in errors), errors
    else:
        assert errors == []
    if model_message:
        assert model_message in _model_errors(manifest)


# --------------------------------------------------------------------- GitOps

GITOPS = Path(__file__).resolve().parents[2] / "examples" / "gitops"
ROOT = GITOPS.parents[1]


def _application() -> dict[str, Any]:
    app: dict[str, Any] = yaml.safe_load((GITOPS / "application.yaml").read_text())
    return app


def _synced() -> list[dict[str, Any]]:
    """What the Application applies: every manifest under its source path."""
    folder = ROOT / _application()["spec"]["source"]["path"]
    return [
        doc
        for path in sorted(folder.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_the_gitops_application_syncs_a_model_s_objects_server_side() -> None:
    app = _application()
    assert app["kind"] == "Application"
    assert (ROOT / app["spec"]["source"]["path"]).is_dir()
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert {m["kind"] for m in _synced()} == {"TrainingRun", "Deployment"}


@pytest.mark.parametrize(
    "manifest", _synced(), ids=lambda m: f"{m['kind']}-{m['metadata']['name']}"
)
def test_every_gitops_manifest_is_valid(manifest: dict[str, Any]) -> None:
    assert manifest["apiVersion"] == "trailboss.dev/v1alpha1"
    assert "namespace" not in manifest["metadata"]  # the Application's destination decides
    assert schema_errors(manifest) == []
    assert _model_errors(manifest) == ""


def test_the_gitops_deployment_serves_what_its_runs_register() -> None:
    """The policy picks the first run's version and every retrained one."""
    by_kind = {m["kind"]: m for m in _synced()}
    deployment, run = by_kind["Deployment"]["spec"], by_kind["TrainingRun"]["spec"]
    wanted = deployment["versionPolicy"]["matchLabels"].items()
    template = deployment["retraining"]["template"]
    for spec in (run, template):
        assert spec["model"] == deployment["model"]
        assert wanted <= spec["register"]["labels"].items()
        assert "validation" in spec["register"]  # only Validated versions are served


def test_the_gitops_readme_names_every_action_it_walks_through() -> None:
    readme = (GITOPS / "README.md").read_text()
    for action in ("retrain", "promote", "promote-full", "abort", "pause", "resume"):
        assert f"`{action}`" in readme, action
    assert "argocd-cm-patch.yaml" in readme
