"""Constrained values the API server and the operator check alike.

Each constraint is written once and becomes both a CEL rule in the CRD (with a
message saying what is wrong and how to fix it; the API server prefixes it with
the field's path) and the same check in pydantic, so an object the API server
admits is one the operator can run, and the other way round.

Regular expressions here are read by three engines (Go RE2 in the API server,
Rust in pydantic, Python in the unit tests), so they keep to the syntax all
three share: no ``\\d``/``\\w`` (Unicode-aware in some), no look-arounds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError, core_schema


@dataclass(frozen=True)
class Rule:
    """One check: a CEL expression over ``self`` and the same check in Python.

    ``field`` names the child field the errors point at, for a rule on an object
    about one of its fields."""

    cel: str
    message: str
    holds: Callable[[Any], bool]
    field: str | None = None

    def as_cel(self) -> dict[str, str]:
        rule = {"rule": self.cel, "message": self.message}
        if self.field:
            rule["fieldPath"] = f".{self.field}"
        return rule


@dataclass(frozen=True)
class Checked:
    """``Annotated`` metadata adding rules to a field: CEL in the schema, checks in pydantic."""

    rules: tuple[Rule, ...]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: Callable[[Any], core_schema.CoreSchema]
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        rules = json_schema.setdefault("x-kubernetes-validations", [])
        rules.extend(rule.as_cel() for rule in self.rules)
        return json_schema

    def _check(self, value: Any) -> Any:
        for rule in self.rules:
            if value is not None and not rule.holds(value):
                raise PydanticCustomError("invalid", rule.message)
        return value


def checked(*rules: Rule) -> Checked:
    return Checked(tuple(rules))


def cel_string(text: str) -> str:
    """A CEL raw string literal for ``text`` (a regular expression)."""
    quote = '"' if '"' not in text else "'"
    if quote in text:
        raise ValueError(f"cannot quote {text!r} for CEL")
    return f"r{quote}{text}{quote}"


def python_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` for Python's ``re``, where ``$`` also matches before a final newline
    (RE2 and Rust match only at the very end)."""
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def matches(pattern: str, message: str) -> Rule:
    compiled = python_pattern(pattern)
    return Rule(
        f"self.matches({cel_string(pattern)})",
        message,
        lambda v: compiled.search(v) is not None,
    )


def excludes(pattern: str, message: str) -> Rule:
    compiled = re.compile(pattern)
    return Rule(
        f"!self.matches({cel_string(pattern)})",
        message,
        lambda v: compiled.search(v) is None,
    )


MOVE_TO_CONFIG = "move long configuration into a file in the image or a ConfigMap"


def total_length(limit: int, what: str, fix: str = MOVE_TO_CONFIG) -> Rule:
    """The characters of every string in a list together stay within ``limit``, which
    bounds the object's size (and the operator's own annotations) as a whole."""
    return Rule(
        f"self.map(s, size(s)).sum() <= {limit}",
        f"{what} may hold at most {limit} characters in all: {fix}",
        lambda v: sum(len(s) for s in v) <= limit,
    )


def total_map_length(limit: int, what: str) -> Rule:
    """Keys and values of a string map together stay within ``limit`` characters."""
    return Rule(
        f"self.map(k, size(k) + size(self[k])).sum() <= {limit}",
        f"{what} may hold at most {limit} characters of keys and values in all",
        lambda v: sum(len(k) + len(x) for k, x in v.items()) <= limit,
    )


def finite(value: float) -> float:
    """JSON has no NaN or infinity; the API server would store neither."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return value


def model_rules(*rules: Rule) -> dict[str, Any]:
    """``json_schema_extra`` for a model: its rules as CEL on the object."""
    return {"x-kubernetes-validations": [rule.as_cel() for rule in rules]}


def enforce(model: Any, *rules: Rule) -> None:
    """The same rules in pydantic (call from a ``model_validator(mode="after")``). A
    rule with a ``field`` is reported on that field, as the API server reports it."""
    for rule in rules:
        if rule.holds(model):
            continue
        if rule.field is None:
            raise ValueError(rule.message)
        error = InitErrorDetails(
            type=PydanticCustomError("invalid", rule.message), loc=(rule.field,), input=model
        )
        raise ValidationError.from_exception_data(type(model).__name__, [error])


@dataclass(frozen=True)
class ObjectNameRule:
    """What a kind's metadata.name must look like, because of what it becomes."""

    max_length: int
    why: str
    pattern: str = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

    def message(self, kind: str) -> str:
        return (
            f"metadata.name: a {kind} name must be at most {self.max_length} characters of "
            f"lowercase letters, digits and '-', starting with a letter and ending with a "
            f"letter or digit, because {self.why}; choose a shorter name"
        )

    def cel(self, kind: str) -> dict[str, str]:
        name = "self.metadata.name"
        return {
            "rule": f"!has(self.metadata.name) || size({name}) <= {self.max_length} && "
            f"{name}.matches({cel_string(self.pattern)})",
            "message": self.message(kind),
        }

    def holds(self, name: str) -> bool:
        return (
            len(name) <= self.max_length and python_pattern(self.pattern).search(name) is not None
        )
