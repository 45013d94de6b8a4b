"""Validate manifests against the generated CRD schemas the way the API server's
OpenAPI validation would (CEL rules excepted: the e2e suite checks those)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft4Validator

from trailboss import crdgen
from trailboss.api import KINDS
from trailboss.api.common import Resource

MODELS: dict[str, type[Resource]] = {k.info.kind: k for k in KINDS}


def openapi_schema(kind: str) -> dict[str, Any]:
    crd = crdgen.crd_for(MODELS[kind])
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """``field.path: message`` for each schema violation, like kubectl shows."""
    validator = Draft4Validator(openapi_schema(manifest["kind"]))
    return sorted(
        ".".join(str(p) for p in error.absolute_path) + ": " + error.message
        for error in validator.iter_errors(manifest)
    )
