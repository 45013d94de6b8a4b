"""Generate structural CustomResourceDefinitions from the pydantic API models.

The API server accepts only a subset of JSON Schema: no ``$ref``, no
``type: null``, no ``const``, no ``additionalProperties: false`` next to
``properties``. This module turns pydantic's JSON Schema into that subset:
``$defs`` are inlined, ``Optional[X]`` becomes ``X`` with ``nullable: true``,
constants become one-value enums, and titles are dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from trailboss.api import KINDS
from trailboss.api.common import GROUP, VERSION, Resource
from trailboss.api.constraints import cel_string

CATEGORY = "trailboss"
_DROP_KEYS = {"title", "$defs", "discriminator"}


def crd_for(kind: type[Resource]) -> dict[str, Any]:
    """The CustomResourceDefinition for one kind."""
    info = kind.info
    spec_model = kind.model_fields["spec"].annotation
    status_model = kind.model_fields["status"].annotation
    if not (isinstance(spec_model, type) and isinstance(status_model, type)):
        raise TypeError(f"{kind.__name__} needs concrete spec and status models")
    spec_schema = structural(spec_model.model_json_schema(by_alias=True))
    if info.spec_rules:
        rules = spec_schema.setdefault("x-kubernetes-validations", [])
        rules.extend(dict(rule) for rule in info.spec_rules)
    status_schema = structural(status_model.model_json_schema(by_alias=True))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "trailboss"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [_column(c) for c in info.columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (kind.__doc__ or "").strip(),
                            "required": ["spec"],
                            "x-kubernetes-validations": [info.name_rule.cel(info.kind)],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def _column(column: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": column.name, "type": column.type, "jsonPath": column.json_path}
    if column.description:
        out["description"] = column.description
    if column.priority:
        out["priority"] = column.priority
    return out


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a pydantic JSON Schema into a Kubernetes structural schema."""
    rewritten: dict[str, Any] = _rewrite(schema, schema.get("$defs", {}))
    return rewritten


SYNTAX = "x-syntax"
"""What a constrained type admits, in words: appended to field descriptions and
used as the message of map-key rules."""


def _rewrite(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = _resolve(node, defs)
    node = _collapse_optional(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties" or key == "patternProperties":
            out[key] = {name: _rewrite(sub, defs) for name, sub in value.items()}
        elif key == "default" and value in ([], {}):
            continue  # pydantic fills empty collections; the stored object stays tidy
        elif key in ("default", "examples", "enum", "x-kubernetes-validations", "propertyNames"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _rewrite(value, defs)
    return _fix_keywords(out)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline a ``$ref``, keeping sibling keys such as ``description``."""
    if "$ref" not in node:
        return node
    target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    if "description" in target and "description" in siblings:
        target.pop("description")
    rules = target.get("x-kubernetes-validations", []) + siblings.get(
        "x-kubernetes-validations", []
    )
    merged = {**target, **siblings}
    if rules:
        merged["x-kubernetes-validations"] = rules
    return _resolve(merged, defs)


def _collapse_optional(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` becomes ``X`` with ``nullable: true``."""
    options = node.get("anyOf")
    if not options:
        return node
    non_null = [o for o in options if o.get("type") != "null"]
    if len(non_null) == len(options):
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if rest.get("default", 0) is None:
        rest.pop("default")
    if len(non_null) == 1:
        inner = _resolve(non_null[0], defs)
        merged = {**inner, **rest, "nullable": True}
    else:
        merged = {**rest, "anyOf": non_null, "nullable": True}
    return merged


def _key_rules(node: dict[str, Any]) -> dict[str, Any]:
    """Map keys with a syntax: the API server has no ``patternProperties`` or
    ``propertyNames``, so their pattern and length become a CEL rule on the map."""
    patterns = node.pop("patternProperties", None)
    names = node.pop("propertyNames", None)
    if not patterns and not names:
        return node
    names = names or {}
    if patterns:
        (pattern, values), *_ = patterns.items()
        node["additionalProperties"] = values
    else:
        pattern = names.get("pattern", "")
    checks = [f"size(k) <= {names['maxLength']}"] if "maxLength" in names else []
    if pattern:
        checks.append(f"k.matches({cel_string(pattern)})")
    message = names.get(SYNTAX) or f"keys must match {pattern}"
    rule = {"rule": f"self.all(k, {' && '.join(checks)})", "message": message}
    node["x-kubernetes-validations"] = [rule, *node.get("x-kubernetes-validations", [])]
    return node


def _fix_keywords(node: dict[str, Any]) -> dict[str, Any]:
    node = _key_rules(node)
    syntax = node.pop(SYNTAX, None)
    if syntax:  # a type's syntax follows the field's own description
        node["description"] = f"{node.get('description', '').rstrip('.')}. Syntax: {syntax}."
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"] = node["exclusiveMinimum"]
        node["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node and not isinstance(node["exclusiveMaximum"], bool):
        node["maximum"] = node["exclusiveMaximum"]
        node["exclusiveMaximum"] = True
    if node.get("additionalProperties") is False or (
        "properties" in node and isinstance(node.get("additionalProperties"), dict)
    ):
        node.pop("additionalProperties")
    if "anyOf" in node and node.get("x-kubernetes-int-or-string"):
        node.pop("anyOf")
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
    if (
        node.get("type") == "object"
        and "properties" not in node
        and "additionalProperties" not in node
    ):
        node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def all_crds() -> list[dict[str, Any]]:
    return [crd_for(kind) for kind in KINDS]


def render(crd: dict[str, Any]) -> str:
    header = "# Generated by `trailboss crds` from the pydantic models. Do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)


def file_name(crd: dict[str, Any]) -> str:
    return f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"


def write(directory: Path, crds: Iterable[dict[str, Any]] | None = None) -> list[Path]:
    """Write one YAML file per CRD into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for crd in crds if crds is not None else all_crds():
        path = directory / file_name(crd)
        path.write_text(render(crd))
        paths.append(path)
    return paths


def stale(directory: Path) -> list[str]:
    """Files in ``directory`` that differ from a fresh generation."""
    problems = []
    for crd in all_crds():
        path = directory / file_name(crd)
        if not path.exists() or path.read_text() != render(crd):
            problems.append(str(path))
    return problems
