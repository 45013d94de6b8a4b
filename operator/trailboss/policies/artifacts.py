"""What makes a directory in S3 an MLflow model. Pure."""

from __future__ import annotations

MLMODEL = "MLmodel"


def model_dir_problem(uri: str, keys: tuple[str, ...]) -> str | None:
    """Why the listing at ``uri`` is not an MLflow model directory, or None when it is:
    an MLflow model has an ``MLmodel`` file at its root."""
    if MLMODEL in keys:
        return None
    return f"{uri} has no {MLMODEL} file: not an MLflow model directory"
