"""The generated CRDs: up to date, structural, and carrying what kubectl users rely on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trailboss import crdgen
from trailboss.cli import main

ROOT = Path(__file__).resolve().parents[2]
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in crdgen.all_crds()}


def test_committed_crds_equal_a_fresh_generation() -> None:
    assert crdgen.stale(ROOT / "crds") == [], "run `make crds` and commit the result"


def test_cli_prints_the_same_crds_as_committed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    committed = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))]
    key = lambda crd: crd["metadata"]["name"]  # noqa: E731
    assert sorted(printed, key=key) == sorted(committed, key=key)


def test_check_flags_a_stale_file(tmp_path: Path) -> None:
    crdgen.write(tmp_path)
    (tmp_path / "trailboss.dev_trainingruns.yaml").write_text("stale: true\n")
    assert main(["crds", "--check", "-o", str(tmp_path)]) == 1
    crdgen.write(tmp_path)
    assert main(["crds", "--check", "-o", str(tmp_path)]) == 0


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in ("default", "enum", "x-kubernetes-validations"):
                continue
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_schema_is_structural(kind: str) -> None:
    schema = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert "$defs" not in node, path
        assert node.get("type") != "null", path
        assert "const" not in node, path
        assert "title" not in node, path
        if "properties" in node:
            assert node.get("type") == "object", path
            assert "additionalProperties" not in node, path
            for name, prop in node["properties"].items():
                typed = "type" in prop or prop.get("x-kubernetes-int-or-string")
                assert typed, f"{path}.{name} has no type"


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_field_is_documented_for_kubectl_explain(kind: str) -> None:
    schema = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    undocumented = [
        f"{path}.{name}"
        for path, node in _walk(schema["properties"]["spec"])
        for name, prop in node.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []
    status = schema["properties"]["status"]
    assert all(p.get("description") for p in status["properties"].values())


@pytest.mark.parametrize(
    ("kind", "short_names", "columns"),
    [
        ("TrainingRun", ["trun"], {"Model", "Phase", "Ready", "Model Version", "Age"}),
        ("ModelVersion", ["mver"], {"Model", "Version", "Phase", "Ready", "Gate", "Age"}),
        (
            "Deployment",
            ["mdeploy"],
            {"Model", "Stable", "Canary", "Weight", "Phase", "Age"},
        ),
    ],
)
def test_kubectl_names_and_columns(kind: str, short_names: list[str], columns: set[str]) -> None:
    spec = CRDS[kind]["spec"]
    assert spec["group"] == "trailboss.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == short_names
    assert spec["names"]["categories"] == ["trailboss"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    assert columns <= {c["name"] for c in version["additionalPrinterColumns"]}


# Short names and resource names that kubectl would resolve to another kind
# (it warns and picks one) when both are installed.
CLAIMED = {
    "apps/v1": {"deploy", "deployment", "deployments"},
    "Tekton": {"tr", "trs", "pr", "prs", "taskrun", "pipelinerun"},
    "Argo Workflows": {"wf", "cwf", "cronwf", "wftmpl", "cwftmpl", "clusterwftmpl", "wfeb"},
    "Argo Rollouts / CD": {"ro", "ar", "at", "cat", "exp", "app", "apps", "appproj", "appset"},
    "Knative": {"ksvc", "kservice", "rt", "rev", "config", "cfg", "kpa", "pa", "sks", "img"},
    "KServe": {"isvc", "tm", "ig"},
    "Kubeflow / KubeDL": {"mv", "tfjob", "pytorchjob", "truntime", "ctruntime"},
    "cert-manager": {"cert", "certs", "cr", "crs"},
}


@pytest.mark.parametrize("project", sorted(CLAIMED))
def test_short_names_are_not_claimed_by_widely_used_crd_sets(project: str) -> None:
    ours = {n for crd in CRDS.values() for n in crd["spec"]["names"]["shortNames"]}
    assert not ours & CLAIMED[project]


def _rules(kind: str) -> list[str]:
    schema = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return [
        rule["rule"]
        for _, node in _walk(schema)
        for rule in node.get("x-kubernetes-validations", [])
    ]


def test_cel_rules_for_what_the_schema_cannot_say() -> None:
    assert "self == oldSelf" in _rules("ModelVersion")
    immutable = [rule for rule in _rules("TrainingRun") if "oldSelf" in rule]
    assert len(immutable) == 1
    assert "self.image == oldSelf.image" in immutable[0]
    assert "suspend" not in immutable[0]
    deployment = _rules("Deployment")
    assert "has(self.modelVersion) != has(self.versionPolicy)" in deployment
    assert any("isSorted()" in rule for rule in deployment)


def test_conditions_are_a_list_map_keyed_by_type() -> None:
    for crd in CRDS.values():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        conditions = status["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert set(conditions["items"]["required"]) == {"type", "status"}


def test_optional_fields_are_nullable_not_type_null() -> None:
    spec = CRDS["TrainingRun"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    assert spec["properties"]["experiment"]["type"] == "string"
    assert spec["properties"]["experiment"]["nullable"] is True
    assert spec["required"] == ["model", "image"]


def test_api_reference_is_up_to_date() -> None:
    from trailboss import apidocs

    assert not apidocs.stale(ROOT / "docs" / "api.md"), "run `make crds` and commit the result"
