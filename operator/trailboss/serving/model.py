"""Load the served model, warm it up, and wrap it so every prediction is logged.

MLflow's scoring app calls ``predict`` on whatever model object it is given;
handing it a :class:`ServedModel` instead of the bare pyfunc model is how the
server sees each request's parsed inputs and outputs, in every input format
MLflow accepts, without re-implementing any of MLflow's parsing.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from packaging.requirements import InvalidRequirement, Requirement

from trailboss.serving.predlog import PredictionLogger
from trailboss.serving.records import ERROR, OK, PredictionRecord, row_count
from trailboss.serving.request import CURRENT_REQUEST, RequestState
from trailboss.serving.signature import InputSignature

log = logging.getLogger(__name__)


class ServedModel:
    """A pyfunc model whose predictions are recorded for the prediction log."""

    def __init__(self, model: Any, logger: PredictionLogger | None) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

        self.pyfunc = model
        self.metadata = model.metadata
        self.signature = InputSignature.of(model.metadata.get_input_schema())
        self._log = None if logger is None else logger.record
        # Resolved once here, not by an import statement in every prediction.
        self._input_error: type[Exception] = MlflowException
        self._refused = functools.partial(MlflowException, error_code=INVALID_PARAMETER_VALUE)
        self._model_error = functools.partial(MlflowException, error_code=INTERNAL_ERROR)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The model's prediction; the log gets references to ``data`` and the outputs only
        (their rows are built in the logging thread)."""
        state = CURRENT_REQUEST.get() or RequestState()
        state.rows = row_count(data)
        state.predicted = True
        try:
            outputs = self._call(data, params)
        except Exception:
            self._record(state, data, ERROR, None)
            raise
        self._record(state, data, OK, outputs)
        return outputs

    def _call(self, data: Any, params: dict[str, Any] | None) -> Any:
        try:
            if params:
                return self.pyfunc.predict(data, params=params)
            return self.pyfunc.predict(data)
        except self._input_error:
            raise  # schema enforcement and other input errors stay client errors (400)
        except Exception as error:
            # MLflow answers 400 for any exception. A model failing on input its signature
            # forbids is the client's mistake (400); on input it allows, the version's fault,
            # which canary analysis must see as a 500.
            refusal = self.signature.refusal(data)
            if refusal is not None:
                raise self._refused(f"input the model does not take: {refusal}") from error
            raise self._model_error(
                f"the model failed to predict: {type(error).__name__}: {error}"
            ) from error

    def _record(self, state: RequestState, data: Any, outcome: str, outputs: Any) -> None:
        if self._log is not None:
            self._log(
                PredictionRecord(
                    state.request_id, state.arrived_us, outcome, data, outputs, state.rows
                )
            )


@dataclass(frozen=True)
class LoadedModel:
    pyfunc: Any
    seconds: float
    warmed_up: bool
    faulty: bool


def load(model_uri: str) -> LoadedModel:
    """Download and load the model, then pass one warm-up prediction before reporting ready.
    The download goes to the process's temporary directory (``server.confined_writes``)."""
    import mlflow.artifacts
    import mlflow.pyfunc

    started = time.monotonic()
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=model_uri, dst_path=tempfile.mkdtemp(prefix="model-")
    )
    # MLflow's own requirements check maps every installed distribution's files to
    # modules first: about 1.7 s of CPU on every start. `unmet_requirements` asks
    # only for the packages the model names.
    model = mlflow.pyfunc.load_model(local, suppress_warnings=True)
    unmet = unmet_requirements(Path(local))
    if unmet:
        log.warning("the model's requirements this server does not meet: %s", "; ".join(unmet))
    example = warmup_input(model, local)
    if example is None:
        log.warning("no input example or signature: ready without a warm-up prediction")
    else:
        model.predict(example)
    return LoadedModel(model, time.monotonic() - started, example is not None, _is_faulty(model))


def unmet_requirements(model_dir: Path) -> list[str]:
    """The lines of the model's requirements.txt this environment does not meet (a
    package missing, or installed at a version outside the requirement's range)."""
    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    unmet = []
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):  # options such as -r, -c, --index-url
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue  # a URL or a local path: nothing to compare a version with
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{text} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{text} (installed: {installed})")
    return unmet


def warmup_input(model: Any, local_path: str) -> Any:
    """The model's saved input example, else one row built from its signature, else None."""
    try:
        example = model.metadata.load_input_example(local_path)
    except Exception:  # a broken example falls back to the signature
        example = None
    if example is not None:
        return example
    schema = model.metadata.get_input_schema()
    return None if schema is None else input_from_schema(schema)


def input_from_schema(schema: Any) -> Any:
    """One row of harmless values (zeros, empty strings) that satisfies ``schema``."""
    try:
        if schema.is_tensor_spec():
            spec = schema.inputs[0]
            return np.zeros(tuple(1 if d == -1 else d for d in spec.shape), dtype=spec.type)
        return pd.DataFrame({spec.name: _zero_column(spec.type) for spec in schema.inputs})
    except Exception:  # nested types (arrays, objects): no synthetic row
        return None


def _zero_column(kind: Any) -> pd.Series:
    dtype = kind.to_numpy()
    if dtype.kind in "OSU":
        return pd.Series([""], dtype=object)
    return pd.Series(np.zeros(1, dtype=dtype))


def _is_faulty(model: Any) -> bool:
    from trailboss.serving.faults import FaultInjectingModel

    try:
        return isinstance(model.unwrap_python_model(), FaultInjectingModel)
    except Exception:  # flavors other than python_function models
        return False
