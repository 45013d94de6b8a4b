"""The base of every API model: camelCase JSON, documented fields, and errors
told in the user's field paths."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base for every API object: camelCase JSON, field docstrings become
    descriptions, unknown fields ignored so an older operator reads newer objects."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        use_enum_values=True,
        loc_by_alias=True,
    )

    def to_json(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def explain(error: ValidationError, prefix: str = "") -> str:
    """A validation error as one line per field, in the user's camelCase paths:
    `spec.workers: Input should be greater than or equal to 1`."""
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        lines.append(f"{path}: {item['msg']}" if path else str(item["msg"]))
    return "; ".join(lines)
