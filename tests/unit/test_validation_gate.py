"""The validation gate names each failing metric, its value and its bound."""

from __future__ import annotations

import pytest

from trailboss.api.common import ValidationGate
from trailboss.policies.validation import evaluate

GATE = ValidationGate(minimums={"accuracy": 0.9}, maximums={"log_loss": 0.3})


@pytest.mark.parametrize(
    ("metrics", "passed", "message"),
    [
        ({"accuracy": 0.95, "log_loss": 0.2}, True, "accuracy=0.95 >= 0.9; log_loss=0.2 <= 0.3"),
        ({"accuracy": 0.9, "log_loss": 0.3}, True, "accuracy=0.9 >= 0.9; log_loss=0.3 <= 0.3"),
        ({"accuracy": 0.85, "log_loss": 0.2}, False, "accuracy=0.85 below minimum 0.9"),
        (
            {"accuracy": 0.5, "log_loss": 0.7},
            False,
            "accuracy=0.5 below minimum 0.9; log_loss=0.7 above maximum 0.3",
        ),
        ({"accuracy": 0.95}, False, "log_loss missing (needs maximum 0.3)"),
    ],
)
def test_gate(metrics: dict[str, float], passed: bool, message: str) -> None:
    result = evaluate(GATE, metrics)
    assert result.passed is passed
    assert result.message == message
    assert len(result.checks) == 2


def test_no_gate_passes() -> None:
    assert evaluate(None, {}).passed is True
    assert evaluate(ValidationGate(), {"accuracy": 0.1}).passed is True
