"""Hypothesis strategies drawn from the API models' own JSON Schema: what the
schema admits, small enough to stay inside the total-length rules."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

_MATCHES = re.compile(r"^self\.matches\(r(.)(.*)\1\)$")
SMALL = 3  # items per list or map
TEXT = 12  # characters of free text


def from_model(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Instances of ``model``; the few drawn values that break a cross-field rule
    (which JSON Schema cannot say) are filtered out by the model itself."""
    schema = model.model_json_schema(by_alias=True)

    def parse(raw: Any) -> Any:
        try:
            return model.model_validate(raw)
        except ValidationError:
            return None

    return from_schema(schema, schema.get("$defs", {})).map(parse).filter(lambda m: m is not None)


def from_schema(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        return from_schema(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node:
        return st.one_of([from_schema(option, defs) for option in node["anyOf"]])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if node.get("x-kubernetes-int-or-string"):
        return st.integers(0, 10**6) | st.from_regex(node["pattern"], fullmatch=True)
    kind = node.get("type")
    if kind == "string":
        return _string(node)
    if kind == "integer":
        return st.integers(node.get("minimum", -(10**6)), node.get("maximum", 10**6))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(node["items"], defs)
        return st.lists(items, min_size=node.get("minItems", 0), max_size=SMALL)
    if kind == "object":
        return _object(node, defs)
    raise ValueError(f"no strategy for {node}")


def _pattern(node: dict[str, Any]) -> str | None:
    """The schema's pattern, or the one a CEL rule matches the value against."""
    if "pattern" in node:
        return str(node["pattern"])
    for rule in node.get("x-kubernetes-validations", []):
        if found := _MATCHES.match(rule["rule"]):
            return found[2]
    return None


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    if pattern := _pattern(node):
        longest = node.get("maxLength", 10**6)
        return st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= longest)
    shortest = node.get("minLength", 0)
    longest = max(min(node.get("maxLength", TEXT), TEXT), shortest)
    return st.text(min_size=shortest, max_size=longest)


def _object(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    if "properties" in node:
        required = set(node.get("required", []))
        fields = {name: from_schema(sub, defs) for name, sub in node["properties"].items()}
        return st.fixed_dictionaries(
            {n: s for n, s in fields.items() if n in required},
            optional={n: s for n, s in fields.items() if n not in required},
        )
    if "patternProperties" in node:
        ((pattern, values),) = node["patternProperties"].items()
        longest = node.get("propertyNames", {}).get("maxLength", 10**6)
        keys = st.from_regex(pattern, fullmatch=True).filter(lambda k: len(k) <= longest)
    else:
        values, keys = node.get("additionalProperties", {}), st.text(min_size=1, max_size=TEXT)
    return st.dictionaries(keys, from_schema(values, defs), max_size=SMALL)
