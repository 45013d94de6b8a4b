"""FOR ROLLOUT TESTS AND DEMOS ONLY: a model version that is bad on purpose.

A :class:`FaultInjectingModel` wraps a real model and fails a share of its
predictions and/or adds latency, so a canary of it gives Prometheus analysis
something to reject. The fault lives in the model artifact, not in the server:
a normal server serving a normal model can never inject anything, and a
faulty version is a ModelVersion like any other (which is exactly what a bad
model is in production). The server warns at start and exports
``trailboss_model_fault_injection 1`` when it serves one. Faults hit requests
only, never the server's warm-up prediction, so the version becomes Ready.

Make one with ``examples/serving/bad_version.py`` or :func:`save_faulty_model`.
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass
from typing import Any

import mlflow.artifacts
import mlflow.pyfunc
from mlflow.pyfunc.model import PythonModel

from trailboss.serving.request import CURRENT_REQUEST

ERROR_SHARE = "trailboss.fault.error_share"
ADDED_LATENCY = "trailboss.fault.added_latency_seconds"


class InjectedFault(RuntimeError):
    """The deliberate failure of a fault-injecting test model."""


@dataclass(frozen=True)
class Faults:
    error_share: float = 0.0
    added_latency_seconds: float = 0.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Faults:
        faults = cls(float(config.get(ERROR_SHARE, 0.0)), float(config.get(ADDED_LATENCY, 0.0)))
        if not 0.0 <= faults.error_share <= 1.0:
            raise ValueError(f"{ERROR_SHARE} must be within [0, 1], got {faults.error_share}")
        if faults.added_latency_seconds < 0:
            raise ValueError(f"{ADDED_LATENCY} must be >= 0, got {faults.added_latency_seconds}")
        return faults

    def apply(self, draw: float) -> None:
        """Sleep the added latency, then fail when ``draw`` falls in the error share."""
        if self.added_latency_seconds:
            time.sleep(self.added_latency_seconds)
        if draw < self.error_share:
            raise InjectedFault(f"deliberate fault (error share {self.error_share:g})")


class FaultInjectingModel(PythonModel):
    """A real model (artifact ``model``) with the faults of its model config."""

    # Inputs are whatever the wrapped model takes; MLflow must not derive a schema from hints.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        # The server checks the outer model's requirements; the inner one shares them.
        self.inner = mlflow.pyfunc.load_model(context.artifacts["model"], suppress_warnings=True)
        self.faults = Faults.from_config(dict(context.model_config or {}))

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        # Only requests suffer: the warm-up passes, so the version becomes Ready and takes
        # traffic, as a subtly bad model would.
        if CURRENT_REQUEST.get() is not None:
            self.faults.apply(random.random())
        return self.inner.predict(model_input)


def save_faulty_model(path: str, base_model_uri: str, faults: Faults) -> None:
    """Save at ``path`` ``base_model_uri`` wrapped with ``faults``, same signature and example."""
    local = mlflow.artifacts.download_artifacts(base_model_uri)
    with warnings.catch_warnings():
        # The signature is the base model's; MLflow need not guess one from type hints.
        warnings.simplefilter("ignore", UserWarning)
        _save(path, local, faults)


def _save(path: str, local: str, faults: Faults) -> None:
    from mlflow.models import Model

    base = Model.load(local)
    mlflow.pyfunc.save_model(
        path,
        python_model=FaultInjectingModel(),
        artifacts={"model": local},
        model_config={ERROR_SHARE: faults.error_share, ADDED_LATENCY: faults.added_latency_seconds},
        signature=base.signature,
        input_example=base.load_input_example(local),
        # The wrapper's code is trailboss's own; skip MLflow's slow import sniffing.
        pip_requirements=["trailboss[serve]"],
    )
