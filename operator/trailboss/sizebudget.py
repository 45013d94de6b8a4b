"""The largest a spec can be once the API server's bounds hold, as the bytes it
takes in an object's annotations.

Why it matters: the API server caps all annotations of an object together at
256 KiB, and kopf keeps the last handled spec in
``trailboss.dev/last-handled-configuration`` as JSON with every non-ASCII
character escaped (``\\uXXXX``, twelve bytes for a character outside the BMP).
A spec the schema admits must fit that copy with room left for the user's own
labels and annotations (kopf copies those too). Client-side ``kubectl apply``
adds a copy of its own (``last-applied-configuration``), so very large specs are
best applied server-side (``kubectl apply --server-side``).

The estimate walks the CRD's structural schema: ``maxLength``, ``maxItems`` and
``maxProperties`` bound each part, and the total-length CEL rules
(``self.map(s, size(s)).sum() <= N``) bound lists and maps of free text as a
whole. A string whose pattern admits only plain ASCII costs a byte a
character; any other costs twelve.
"""

from __future__ import annotations

import re
from typing import Any

ANNOTATIONS_LIMIT = 256 * 1024
SPEC_BUDGET = 224 * 1024
"""What a spec may take, leaving an eighth of the limit to the user's labels and
annotations (kopf copies those too): a Deployment holds a whole TrainingRun spec
as its retraining template, pod template included."""
ASCII_CHAR = 1
ANY_CHAR = 12
NUMBER = 24
_TOTAL = re.compile(
    r"^self(?:\.filter\(\w+, has\([\w.]+\)\))?\.map\((\w+), (.+)\)\.sum\(\) <= (\d+)$"
)
_KEY_RULE = re.compile(r"^self\.all\(k, size\(k\) <= (\d+) && k\.matches\(r(.)(.*)\2\)\)$")
_MATCHES = re.compile(r"^self\.matches\(r(.)(.*)\1\)$")
_UNSAFE_IN_PATTERN = re.compile(r"\[\^|\\[A-Za-z]|[\"<>&]|(?<!\\)\.(?![^\[]*\])")


def ascii_only(pattern: str) -> bool:
    """Whether every string ``pattern`` matches is plain ASCII that neither copy
    escapes: only positive character classes and literals, no wildcard."""
    unescaped = re.sub(r"\\[-.+*?()\[\]{}/$^|]", "", pattern)
    return pattern.isascii() and not _UNSAFE_IN_PATTERN.search(unescaped)


def worst_case_bytes(schema: dict[str, Any]) -> int:
    """Bytes the value of ``schema`` can take in the two annotations together."""
    if "enum" in schema:
        return ASCII_CHAR * (2 + max(len(str(v)) for v in schema["enum"]))
    if schema.get("x-kubernetes-int-or-string"):
        return _string(schema)
    kind = schema.get("type")
    if kind == "string":
        return _string(schema)
    if kind in ("number", "integer", "boolean"):
        return NUMBER
    if kind == "array":
        return _array(schema)
    if kind == "object":
        return _object(schema)
    raise ValueError(f"cannot bound a schema without a type: {schema}")


def _per_char(schema: dict[str, Any]) -> int:
    patterns = [schema.get("pattern", "")] + [
        match[2]
        for rule in schema.get("x-kubernetes-validations", [])
        if (match := _MATCHES.match(rule["rule"]))
    ]
    return ASCII_CHAR if any(p and ascii_only(p) for p in patterns) else ANY_CHAR


def _string(schema: dict[str, Any], chars: int | None = None) -> int:
    if chars is None:
        if "maxLength" not in schema:
            raise ValueError(f"string without maxLength: {schema.get('description', schema)}")
        chars = int(schema["maxLength"])
    return ASCII_CHAR * 2 + chars * _per_char(schema)


def _totals(schema: dict[str, Any]) -> list[tuple[str, int]]:
    """(what is summed, limit) of each total-length rule on this node."""
    found = []
    for rule in schema.get("x-kubernetes-validations", []):
        if match := _TOTAL.match(rule["rule"]):
            found.append((re.sub(rf"\b{match[1]}\b", "x", match[2]), int(match[3])))
    return found


def _array(schema: dict[str, Any]) -> int:
    items, count = schema["items"], int(schema["maxItems"])
    totals = dict(_totals(schema))
    if "size(x)" in totals:  # a list of strings bounded as a whole
        chars = min(totals["size(x)"], count * int(items["maxLength"]))
        return count * (_string(items, 0) + ASCII_CHAR) + chars * _per_char(items)
    for summed, limit in totals.items():
        field = re.fullmatch(r"size\(x\.(\w+)\)", summed)
        if field:  # one string field of every item bounded as a whole
            sub = items["properties"][field[1]]
            unbounded = {**items, "properties": {**items["properties"], field[1]: {**sub}}}
            unbounded["properties"][field[1]]["maxLength"] = 0
            chars = min(limit, count * int(sub["maxLength"]))
            return count * (worst_case_bytes(unbounded) + ASCII_CHAR) + chars * _per_char(sub)
    return count * (worst_case_bytes(items) + ASCII_CHAR)


def _object(schema: dict[str, Any]) -> int:
    if "properties" in schema:
        fields = {
            name: ASCII_CHAR * (len(name) + 4) + worst_case_bytes(sub)
            for name, sub in schema["properties"].items()
        }
        if one_of := _exactly_one(schema):
            fields = {n: b for n, b in fields.items() if n not in one_of} | {
                "one of": max(fields[n] for n in one_of)
            }
        return ASCII_CHAR * 2 + sum(fields.values())
    values, count = schema["additionalProperties"], int(schema["maxProperties"])
    key = _map_key(schema)
    totals = dict(_totals(schema))
    entry = ASCII_CHAR * 4
    if "size(x) + size(self[x])" in totals:  # keys and string values bounded as a whole
        chars = min(totals["size(x) + size(self[x])"], count * (key + int(values["maxLength"])))
        per_char = max(ASCII_CHAR, _per_char(values))
        return ASCII_CHAR * 2 + count * (entry + _string(values, 0)) + chars * per_char
    return ASCII_CHAR * 2 + count * (entry + key * ASCII_CHAR + worst_case_bytes(values))


def _exactly_one(schema: dict[str, Any]) -> list[str]:
    """Fields of which a rule ``(has(self.a) ? 1 : 0) + ... == 1`` admits only one."""
    for rule in schema.get("x-kubernetes-validations", []):
        if rule["rule"].endswith("== 1") and "? 1 : 0" in rule["rule"]:
            return re.findall(r"has\(self\.(\w+)\) \? 1 : 0", rule["rule"])
    return []


def _map_key(schema: dict[str, Any]) -> int:
    """Longest key: from the key rule ``self.all(k, size(k) <= N && k.matches(...))``.
    Keys are checked to be ASCII by the same rule's pattern."""
    for rule in schema.get("x-kubernetes-validations", []):
        match = _KEY_RULE.match(rule["rule"])
        if match and ascii_only(match[3]):
            return int(match[1])
    raise ValueError(f"map without a bounded ASCII key: {schema.get('description', schema)}")
