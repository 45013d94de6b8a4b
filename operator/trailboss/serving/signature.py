"""What the model's signature allows as input: whose fault a failed prediction is, and which
integer and float tensors may be widened to the type the model declares (pure).

A model that fails on input its signature allows is the version's fault (500, the error
rate canary analysis reads); a model that fails on input its signature forbids is the
client's (400, counted as ``bad_input``). The signature forbids, in a column it marks
required (MLflow marks a column required when its training example had no missing
value): a missing value, NaN or ±Infinity; in any column: values of another kind
(text in a number column, a list or an object in a text column); and a request with no
rows at all. These checks run only after the model failed, so a prediction that
succeeds pays nothing for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trailboss.serving.records import row_count

NUMBER_TYPES = frozenset({"double", "float", "long", "integer"})


@dataclass(frozen=True)
class Column:
    """One column of a column-based signature, as far as the checks here need it."""

    name: str
    kind: str  # an MLflow DataType name: double, float, long, integer, boolean, string, ...
    required: bool
    dtype: np.dtype[Any] | None  # numpy's type for numbers and booleans, else None


@dataclass(frozen=True)
class InputSignature:
    """The model's declared input: named columns, or one typed tensor, or nothing."""

    columns: tuple[Column, ...] = ()
    tensor_dtype: np.dtype[Any] | None = None

    @classmethod
    def of(cls, schema: Any) -> InputSignature:
        """From an MLflow input schema (None when the model has no signature)."""
        if schema is None:
            return cls()
        if schema.is_tensor_spec():
            specs = schema.inputs
            return cls(tensor_dtype=np.dtype(specs[0].type) if len(specs) == 1 else None)
        if not schema.has_input_names():
            return cls()
        return cls(columns=tuple(_column(spec) for spec in schema.inputs))

    @property
    def column_names(self) -> list[str] | None:
        return [c.name for c in self.columns] or None

    def dtype_of(self, name: str) -> np.dtype[Any] | None:
        """The numpy type the model declares for a column (None: unknown or not a number)."""
        for column in self.columns:
            if column.name == name:
                return column.dtype
        return None

    def refusal(self, data: Any) -> str | None:
        """Why ``data`` is input the signature forbids, or None when it allows it."""
        try:
            if row_count(data) == 0:
                return "the request holds no rows to predict"
            for column in self.columns:
                values = _values_of(data, column.name, self.columns)
                why = None if values is None else _column_refusal(column, values)
                if why is not None:
                    return why
        except Exception:  # an input of a shape not foreseen here: not provably the client's
            return None
        return None


def widened(array: np.ndarray[Any, Any], declared: np.dtype[Any] | None) -> np.ndarray[Any, Any]:
    """``array`` as :func:`widened_type` says (a view of it when nothing changes)."""
    target = widened_type(array.dtype, declared)
    return array if target == array.dtype else array.astype(target)


def widened_type(sent: np.dtype[Any], declared: np.dtype[Any] | None) -> np.dtype[Any]:
    """The declared number type when numpy converts ``sent`` to it safely (INT64 data for an
    FP64 input, INT16 for FP32, INT32 for INT64), as KServe and Triton widen; else ``sent``,
    for the model's own schema check to accept or refuse (booleans are not numbers here,
    and narrowing would lose values)."""
    if declared is None or declared.kind not in "iuf" or sent.kind not in "iuf":
        return sent
    return declared if np.can_cast(sent, declared, casting="safe") else sent


def _column(spec: Any) -> Column:
    kind = str(getattr(spec.type, "name", spec.type))
    dtype = None
    if kind in NUMBER_TYPES or kind == "boolean":
        dtype = np.dtype(spec.type.to_numpy())
    return Column(spec.name, kind, bool(getattr(spec, "required", True)), dtype)


def _values_of(data: Any, name: str, columns: tuple[Column, ...]) -> np.ndarray[Any, Any] | None:
    """The values the request sent for one column, whatever form MLflow parsed it into."""
    if isinstance(data, pd.DataFrame):
        return data[name].to_numpy() if name in data.columns else None
    if isinstance(data, dict):
        return None if name not in data else np.asarray(data[name], dtype=object).reshape(-1)
    if isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] == len(columns):
        position = next(i for i, c in enumerate(columns) if c.name == name)
        return data[:, position]
    return None


def _column_refusal(column: Column, values: np.ndarray[Any, Any]) -> str | None:
    if column.kind in NUMBER_TYPES:
        return _number_refusal(column, values)
    if column.kind == "string":
        return _typed_refusal(column, values, "US", lambda v: isinstance(v, str), "text")
    if column.kind == "boolean":
        return _typed_refusal(column, values, "b", lambda v: isinstance(v, bool), "booleans")
    return None


def _number_refusal(column: Column, values: np.ndarray[Any, Any]) -> str | None:
    if values.dtype.kind in "biu":
        return None
    if values.dtype.kind != "f":
        why = _typed_refusal(column, values, "f", _is_number, "numbers")
        if why is not None:
            return why
        values = np.array([np.nan if _is_missing(v) else v for v in values], dtype=np.float64)
    if not column.required:
        return None
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size == 0:
        return None
    return _describe(column, "finite numbers", int(bad[0]), float(values[bad[0]]))


def _typed_refusal(
    column: Column, values: np.ndarray[Any, Any], kinds: str, fits: Any, what: str
) -> str | None:
    """The first value not of the column's kind; a missing one only where it is required."""
    if values.dtype.kind in kinds:
        return None
    if values.dtype.kind != "O":
        return _describe(column, what, 0, values[0].item())
    for row, value in enumerate(values.tolist()):
        missing = _is_missing(value)
        if (missing and column.required) or not (missing or fits(value)):
            return _describe(column, what, row, value)
    return None


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _describe(column: Column, what: str, row: int, value: Any) -> str:
    if value is None or value is pd.NA:
        shown = "nothing (null)"
    elif isinstance(value, float) and math.isnan(value):
        shown = "NaN (a missing value)"
    elif isinstance(value, float) and math.isinf(value):
        shown = f"{value} (not a finite number)"
    else:
        shown = repr(value)
    required = " is required by the model's signature and" if column.required else ""
    return f"column '{column.name}'{required} takes {what} ({column.kind}); row {row} holds {shown}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
