"""No spec the API server admits can push the operator's copy of it in the
`trailboss.dev/last-handled-configuration` annotation past the 256 KiB limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trailboss import crdgen, sizebudget
from trailboss.api.trainingrun import TrainingRunSpec

SPECS = {
    crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]
    for crd in crdgen.all_crds()
}
FACE = "\U0001f600"  # outside the BMP: twelve bytes once kopf escapes it


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_the_largest_spec_fits_the_annotation_budget(kind: str) -> None:
    largest = sizebudget.worst_case_bytes(SPECS[kind])
    assert largest <= sizebudget.SPEC_BUDGET, f"{kind}: {largest} bytes"
    assert sizebudget.SPEC_BUDGET < sizebudget.ANNOTATIONS_LIMIT


def _hostile_training_spec() -> dict[str, Any]:
    """A spec at the bounds, in the characters that cost kopf the most."""
    return {
        "model": "m" * 63,
        "image": "r/" + "i" * 510,
        "command": [FACE * 256, FACE * 256],
        "args": [FACE * 64] * 16,
        "env": [
            {"name": f"V{i}".ljust(128, "_"), "value": FACE * 42}
            if i % 2
            else {
                "name": f"S{i}".ljust(128, "_"),
                "valueFrom": {"secretKeyRef": {"name": "s" * 253, "key": "k" * 253}},
            }
            for i in range(24)
        ],
        "hyperparameters": {f"h{i:02d}": FACE * 12 for i in range(64)},
        "experiment": FACE * 256,
        "nodeSelector": {f"example.com/l{i}": "v" * 63 for i in range(8)},
        "podTemplate": _hostile_pod_template(),
        "register": {
            "validation": {
                "minimums": {f"m{i}".ljust(128, "x"): -1.0e-300 for i in range(16)},
                "maximums": {f"m{i}".ljust(128, "x"): 1.0e300 for i in range(16)},
            }
        },
    }


KEY = f"{'a' * 63}.{'b' * 63}.{'c' * 59}/{'n' * 63}"  # a label key of 251 characters


def _requirement(operator: str = "In") -> dict[str, Any]:
    return {"key": KEY, "operator": operator, "values": [f"v{i}".ljust(16, "x") for i in range(8)]}


def _pod_term() -> dict[str, Any]:
    selector = {
        "matchLabels": {f"k{i}".ljust(40, "k"): "v" * 24 for i in range(4)},
        "matchExpressions": [_requirement("NotIn")] * 2,
    }
    return {"labelSelector": selector, "topologyKey": KEY}


def _hostile_pod_template() -> dict[str, Any]:
    """Every field of spec.podTemplate at its bounds."""
    node_term = {"matchExpressions": [_requirement()] * 4}
    pod_affinity = {
        "requiredDuringSchedulingIgnoredDuringExecution": [_pod_term()] * 2,
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": _pod_term()}
        ] * 2,
    }  # fmt: skip
    return {
        "metadata": {
            "labels": {f"example.com/l{i}".ljust(40, "l"): "v" * 24 for i in range(8)},
            "annotations": {f"example.com/a{i}".ljust(40, "a"): "~" * 88 for i in range(8)},
        },
        "shmSize": "1" * 62 + "Gi",
        "volumes": [
            {"name": f"v{i}".ljust(63, "v"), "configMap": {"name": "c" * 253, "defaultMode": 511}}
            for i in range(8)
        ],
        "volumeMounts": [
            {
                "name": f"v{i}".ljust(63, "v"),
                "mountPath": f"/m{i}".ljust(253, "p"),
                "subPath": "s" * 253,
                "readOnly": True,
            }
            for i in range(8)
        ],
        "imagePullSecrets": [{"name": f"s{i}".ljust(253, "s")} for i in range(4)],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [node_term] * 2
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "preference": node_term}
                ]
                * 2,
            },
            "podAffinity": pod_affinity,
            "podAntiAffinity": pod_affinity,
        },
        "priorityClassName": "p" * 253,
        "schedulerName": "s" * 253,
    }


def test_the_estimate_bounds_a_hostile_spec_as_kopf_writes_it() -> None:
    spec = _hostile_training_spec()
    TrainingRunSpec.model_validate(spec)  # admitted: it is within every bound
    written = len(json.dumps(spec, separators=(",", ":")))  # kopf's encoding
    estimate = sizebudget.worst_case_bytes(SPECS["TrainingRun"])
    assert estimate / 2 < written <= estimate


def test_an_unbounded_string_cannot_be_estimated() -> None:
    with pytest.raises(ValueError, match="maxLength"):
        sizebudget.worst_case_bytes({"type": "string", "description": "free text"})


@pytest.mark.parametrize(
    ("pattern", "plain"),
    [
        (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", True),
        (r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/$@=;:+,-]*)?$", True),
        (r"^[^\x00-\x1f]*$", False),
        (r"^a.b$", False),
        (r"^[a-z<>]+$", False),
    ],
)
def test_only_patterns_of_plain_ascii_count_a_byte_a_character(pattern: str, plain: bool) -> None:
    assert sizebudget.ascii_only(pattern) is plain
