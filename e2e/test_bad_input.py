"""Hostile and careless input, refused by the real API server at admission.

Every manifest of ``e2e/badinput/`` is sent as a server-side dry run (nothing is
stored) and must come back 422 Invalid with the field it names in the message.
The same manifest without its one bad field is admitted, so each refusal is
about that field. No operator is needed: this is the API server's own schema
and CEL validation of the committed CRDs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.unit.badinput import BadManifest, load

from e2e.cluster import GROUP, VERSION, Cluster, unique

# The module-scoped set-up below is built once: one worker runs the whole file.
pytestmark = pytest.mark.xdist_group("bad-input")

CASES = load()
GOOD_SPECS: dict[str, dict[str, Any]] = {
    "TrainingRun": {"model": "churn", "image": "trainer:1", "command": ["python", "train.py"]},
    "ModelVersion": {"model": "churn", "artifactUri": "s3://models/churn/model"},
    "Deployment": {"model": "churn", "modelVersion": "churn-v1"},
}


@pytest.fixture(scope="module")
def scratch(cluster: Cluster, crds: list[str]) -> Iterator[str]:
    """A namespace of its own; dry runs store nothing in it."""
    name = unique("e2e-badinput")
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    cluster.core.delete_namespace(name)


def _dry_run_create(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> str | None:
    """None when admitted, else the API server's message."""
    plural = manifest["kind"].lower() + "s"
    try:
        cluster.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, manifest, dry_run="All"
        )
    except ApiException as error:
        body = json.loads(error.body or "{}")
        return f"{error.status} {body.get('reason')}: {body.get('message', error.body)}"
    return None


def _refusals(cluster: Cluster, namespace: str, cases: list[BadManifest]) -> list[str | None]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda c: _dry_run_create(cluster, namespace, c.manifest), cases))


def test_every_bad_manifest_is_refused_naming_its_field(cluster: Cluster, scratch: str) -> None:
    refusals = _refusals(cluster, scratch, CASES)
    admitted = [c.id for c, why in zip(CASES, refusals, strict=True) if why is None]
    assert admitted == [], f"admitted {len(admitted)} of {len(CASES)}: {admitted}"
    unnamed = [
        f"{c.id}: expected {c.field!r} in {why}"
        for c, why in zip(CASES, refusals, strict=True)
        if why is not None and (not why.startswith("422 Invalid") or c.field not in why)
    ]
    assert unnamed == [], "\n".join(unnamed)


def test_each_manifest_is_admitted_without_its_bad_field(cluster: Cluster, scratch: str) -> None:
    fixed: list[BadManifest] = []
    for case in CASES:
        manifest = copy.deepcopy(case.manifest)
        manifest["metadata"]["name"] = f"good-{len(fixed)}"
        manifest["spec"] = GOOD_SPECS[manifest["kind"]]
        fixed.append(BadManifest(manifest, case.field, case.why, case.admission_only))
    refused = [
        f"{c.id}: {why}"
        for c, why in zip(fixed, _refusals(cluster, scratch, fixed), strict=True)
        if why is not None
    ]
    assert refused == [], "\n".join(refused)


@pytest.mark.parametrize(
    ("kind", "plural", "change", "allowed"),
    [
        ("TrainingRun", "trainingruns", {"image": "trainer:2"}, False),
        ("TrainingRun", "trainingruns", {"hyperparameters": {"lr": "0.2"}}, False),
        ("TrainingRun", "trainingruns", {"suspend": False}, True),
        ("ModelVersion", "modelversions", {"artifactUri": "s3://models/churn/other"}, False),
        ("ModelVersion", "modelversions", {"validation": {"minimums": {"f1": 0.1}}}, False),
    ],
)
def test_edits_of_immutable_fields_are_refused_naming_spec(
    cluster: Cluster, scratch: str, kind: str, plural: str, change: dict[str, Any], allowed: bool
) -> None:
    name = unique(kind.lower())
    spec: dict[str, Any] = {**GOOD_SPECS[kind]}
    if kind == "TrainingRun":
        spec["suspend"] = True
    manifest = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}}
    cluster.create(scratch, {**manifest, "spec": spec})
    try:
        # A merge patch: no resourceVersion to race the operator's own writes with.
        cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, scratch, plural, name, {"spec": change}, dry_run="All"
        )
        refusal = None
    except ApiException as error:
        refusal = json.loads(error.body or "{}").get("message", "")
    if allowed:
        assert refusal is None
    else:
        assert refusal is not None
        assert "spec: Invalid value" in refusal
        assert "immutable" in refusal
