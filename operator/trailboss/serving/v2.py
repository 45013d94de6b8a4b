"""Open Inference Protocol (v2, REST) on top of the served MLflow model.

KServe, Seldon and Triton clients send named, typed tensors
(``{"inputs": [{"name", "shape", "datatype", "data"}]}``). They become what the
pyfunc model expects: columns of a DataFrame when the model has a column
signature (one tensor per column, or one ``[rows, columns]`` tensor in the
signature's column order), otherwise the bare array. Integer and float data of a
narrower type than the signature declares (INT64 data for an FP64 input) is widened, as
KServe and Triton do; anything the protocol does not allow is a
:class:`BadInferenceRequest` naming the field. The conversions here are pure;
:mod:`trailboss.serving.routes` mounts the routes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from trailboss.serving.signature import InputSignature, widened, widened_type

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
    if not isinstance(shape, list) or not all(_is_dimension(d) for d in shape):
        raise BadInferenceRequest(f"{where}.shape must be a list of non-negative integers")
    if datatype not in NUMPY_TYPES:
        raise BadInferenceRequest(f"{where}.datatype must be one of {', '.join(NUMPY_TYPES)}")
    if not isinstance(spec.get("data"), list):
        raise BadInferenceRequest(f"{where}.data must be a list of {datatype} values")
    flat = _values(spec["data"], datatype, where)
    expected = math.prod(shape)
    if flat.size != expected:
        raise BadInferenceRequest(
            f"{where}: shape {shape} needs {expected} values, got {flat.size}"
        )
    return name, flat.reshape(shape)


def _is_dimension(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _values(data: list[Any], datatype: str, where: str) -> np.ndarray[Any, Any]:
    """The data as a flat array of the datatype; integers and booleans must fit exactly
    (numpy alone would turn 1.5 into 1 and 300 into 44 for UINT8)."""
    wanted = np.dtype(NUMPY_TYPES[datatype])
    try:
        if wanted.kind not in "biu":
            return np.asarray(data, dtype=wanted).reshape(-1)
        sent = np.asarray(data).reshape(-1)
        if sent.dtype.kind not in "biuf":
            raise ValueError(f"not numbers: {sent[:1].tolist()}")
        values = sent.astype(wanted)
    except (TypeError, ValueError, OverflowError) as error:
        raise BadInferenceRequest(
            f"{where}.data does not hold {datatype} values: {error}"
        ) from None
    exact = values == sent
    if not exact.all():
        first = sent[np.flatnonzero(~exact)[0]].item()
        raise BadInferenceRequest(f"{where}.data holds {first!r}, which {datatype} cannot hold")
    return values


def model_input(body: Any, signature: InputSignature) -> Any:
    """The pyfunc input for a v2 request body, given the model's declared input."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadInferenceRequest("the body must be a JSON object with a non-empty 'inputs' list")
    tensors = [tensor(spec, i) for i, spec in enumerate(body["inputs"])]
    column_names = signature.column_names
    if len(tensors) == 1:
        name, array = tensors[0]
        if column_names and array.ndim == 2 and name not in column_names:
            return _matrix(name, array, signature)
        if not column_names:
            return widened(array, signature.tensor_dtype)
    return _columns(tensors, signature)


def _matrix(name: str, array: np.ndarray[Any, Any], signature: InputSignature) -> pd.DataFrame:
    """One ``[rows, columns]`` tensor: its columns in the signature's order."""
    names = signature.column_names or []
    if array.shape[1] != len(names):
        raise BadInferenceRequest(
            f"inputs[0] '{name}' has {array.shape[1]} columns; "
            f"the model takes {len(names)}: {', '.join(names)}"
        )
    types = [widened_type(array.dtype, signature.dtype_of(n)) for n in names]
    if all(t == array.dtype for t in types):
        return pd.DataFrame(array, columns=names)
    return pd.DataFrame(
        {n: array[:, i].astype(t) for i, (n, t) in enumerate(zip(names, types, strict=True))}
    )


def _columns(
    tensors: list[tuple[str, np.ndarray[Any, Any]]], signature: InputSignature
) -> pd.DataFrame:
    """One tensor per column, each of ``[rows]`` or ``[rows, 1]``."""
    for name, array in tensors:
        if array.ndim == 0 or array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
            raise BadInferenceRequest(f"input '{name}' must be of shape [rows] or [rows, 1]")
    known = signature.column_names
    unknown = [name for name, _ in tensors if known and name not in known]
    if unknown:
        raise BadInferenceRequest(
            f"inputs {unknown} are not inputs of this model; it takes: {', '.join(known or [])}"
        )
    if len({len(array) for _, array in tensors}) != 1:
        raise BadInferenceRequest("every input must have the same number of rows (shape[0])")
    return pd.DataFrame(
        {name: widened(array.reshape(-1), signature.dtype_of(name)) for name, array in tensors}
    )


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
    if requested is None or requested == []:
        return tensors
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise BadInferenceRequest("'outputs' must be a list of objects, each with a 'name'")
    names = [o["name"] for o in requested]
    unknown = sorted(set(names) - {t["name"] for t in tensors})
    if unknown:
        have = ", ".join(t["name"] for t in tensors)
        raise BadInferenceRequest(f"outputs {unknown} do not exist; this model returns: {have}")
    return [t for t in tensors if t["name"] in names]


def input_metadata(schema: Any) -> list[dict[str, Any]]:
    """v2 metadata (name, datatype, shape) of an MLflow signature's inputs."""
    return _metadata(schema, lambda i, _: f"input-{i}")


def output_metadata(schema: Any) -> list[dict[str, Any]]:
    """v2 metadata of the outputs, named as :func:`outputs` names them in an answer: a lone
    unnamed output is ``prediction``, several unnamed ones are numbered from 0."""
    return _metadata(schema, lambda i, count: UNNAMED_OUTPUT if count == 1 else str(i))


def _metadata(schema: Any, unnamed: Callable[[int, int], str]) -> list[dict[str, Any]]:
    if schema is None:
        return []
    specs = schema.inputs
    tensors = schema.is_tensor_spec()
    return [
        {
            "name": spec.name or unnamed(i, len(specs)),
            "datatype": datatype_of(np.dtype(spec.type))
            if tensors
            else MLFLOW_TYPES.get(str(getattr(spec.type, "name", spec.type)), "BYTES"),
            "shape": list(spec.shape) if tensors else [-1],
        }
        for i, spec in enumerate(specs)
    ]
