"""Open Inference Protocol (v2, REST) on top of the served MLflow model.

KServe, Seldon and Triton clients send named, typed tensors
(``{"inputs": [{"name", "shape", "datatype", "data"}]}``). They become what the
pyfunc model expects: columns of a DataFrame when the model has a column
signature (one tensor per column, or one ``[rows, columns]`` tensor in the
signature's column order), otherwise the bare array. The conversions here are
pure; :mod:`trailboss.serving.app` mounts the routes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

UNNAMED_OUTPUT = "prediction"
NUMPY_TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
MLFLOW_TYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
}


class BadInferenceRequest(ValueError):
    """The request does not follow the protocol; the message names the field (HTTP 400)."""


def tensor(spec: Any, index: int) -> tuple[str, np.ndarray[Any, Any]]:
    """One request input as a named array of its declared shape and type."""
    where = f"inputs[{index}]"
    if not isinstance(spec, dict):
        raise BadInferenceRequest(f"{where} must be an object with name, shape, datatype, data")
    name, shape, datatype = spec.get("name"), spec.get("shape"), spec.get("datatype")
    if not isinstance(name, str) or not name:
        raise BadInferenceRequest(f"{where}.name must be a non-empty string")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadInferenceRequest(f"{where}.shape must be a list of non-negative integers")
    if datatype not in NUMPY_TYPES:
        raise BadInferenceRequest(f"{where}.datatype must be one of {', '.join(NUMPY_TYPES)}")
    try:
        flat: np.ndarray[Any, Any] = np.asarray(
            spec.get("data"), dtype=NUMPY_TYPES[datatype]
        ).reshape(-1)
    except (TypeError, ValueError) as error:
        raise BadInferenceRequest(
            f"{where}.data does not hold {datatype} values: {error}"
        ) from None
    expected = int(np.prod(shape)) if shape else 1
    if flat.size != expected:
        raise BadInferenceRequest(
            f"{where}: shape {shape} needs {expected} values, got {flat.size}"
        )
    return name, flat.reshape(shape)


def model_input(body: Any, column_names: list[str] | None) -> Any:
    """The pyfunc input for a v2 request body, given the model's column names (if any)."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadInferenceRequest("the body must be a JSON object with a non-empty 'inputs' list")
    tensors = [tensor(spec, i) for i, spec in enumerate(body["inputs"])]
    if len(tensors) == 1:
        name, array = tensors[0]
        if column_names and array.ndim == 2 and name not in column_names:
            if array.shape[1] != len(column_names):
                raise BadInferenceRequest(
                    f"inputs[0] '{name}' has {array.shape[1]} columns; "
                    f"the model takes {len(column_names)}: {', '.join(column_names)}"
                )
            return pd.DataFrame(array, columns=column_names)
        if not column_names:
            return array
    return _columns(tensors)


def _columns(tensors: list[tuple[str, np.ndarray[Any, Any]]]) -> pd.DataFrame:
    """One tensor per column, each of ``[rows]`` or ``[rows, 1]``."""
    rows = {len(array) for _, array in tensors}
    if len(rows) != 1:
        raise BadInferenceRequest("every input must have the same number of rows (shape[0])")
    columns = {}
    for name, array in tensors:
        if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
            raise BadInferenceRequest(f"input '{name}' must be of shape [rows] or [rows, 1]")
        columns[name] = array.reshape(-1)
    return pd.DataFrame(columns)


def outputs(predictions: Any) -> list[dict[str, Any]]:
    """Model output as v2 output tensors: one per DataFrame column or dict key, else one."""
    if isinstance(predictions, pd.DataFrame):
        return [output(str(c), predictions[c].to_numpy()) for c in predictions.columns]
    if isinstance(predictions, pd.Series):
        return [output(str(predictions.name or UNNAMED_OUTPUT), predictions.to_numpy())]
    if isinstance(predictions, dict):
        return [output(str(k), np.asarray(v)) for k, v in predictions.items()]
    return [output(UNNAMED_OUTPUT, np.asarray(predictions))]


def output(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    datatype = datatype_of(array.dtype)
    data = array.reshape(-1).tolist()
    if datatype == "BYTES":
        data = [v if isinstance(v, str) else str(v) for v in data]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def datatype_of(dtype: np.dtype[Any]) -> str:
    for name, numpy_type in NUMPY_TYPES.items():
        if name != "BYTES" and dtype == np.dtype(numpy_type):
            return name
    return "BYTES"


def select(tensors: list[dict[str, Any]], requested: Any) -> list[dict[str, Any]]:
    """Only the outputs the request names (all when it names none)."""
    if not requested:
        return tensors
    names = [str(o.get("name")) for o in requested if isinstance(o, dict)]
    unknown = sorted(set(names) - {t["name"] for t in tensors})
    if unknown:
        have = ", ".join(t["name"] for t in tensors)
        raise BadInferenceRequest(f"outputs {unknown} do not exist; this model returns: {have}")
    return [t for t in tensors if t["name"] in names]


def tensor_metadata(schema: Any) -> list[dict[str, Any]]:
    """v2 metadata (name, datatype, shape) of an MLflow signature's inputs or outputs."""
    if schema is None:
        return []
    if schema.is_tensor_spec():
        return [
            {
                "name": spec.name or f"input-{i}",
                "datatype": datatype_of(np.dtype(spec.type)),
                "shape": list(spec.shape),
            }
            for i, spec in enumerate(schema.inputs)
        ]
    return [
        {
            "name": spec.name or UNNAMED_OUTPUT,
            "datatype": MLFLOW_TYPES.get(str(getattr(spec.type, "name", spec.type)), "BYTES"),
            "shape": [-1],
        }
        for spec in schema.inputs
    ]
