"""The validation gate: does a model's every metric meet its bounds? Pure."""

from __future__ import annotations

from trailboss.api.common import ValidationGate
from trailboss.api.modelversion import MetricCheck, ValidationStatus


def evaluate(gate: ValidationGate | None, metrics: dict[str, float]) -> ValidationStatus:
    """One check per bound; the message names each failing metric, value and bound."""
    if gate is None or not (gate.minimums or gate.maximums):
        return ValidationStatus(passed=True, message="no validation gate")
    checks = [_check(m, "min", t, metrics.get(m)) for m, t in sorted(gate.minimums.items())]
    checks += [_check(m, "max", t, metrics.get(m)) for m, t in sorted(gate.maximums.items())]
    failing = [c for c in checks if not c.passed]
    return ValidationStatus(
        passed=not failing,
        message="; ".join(_describe(c) for c in (failing or checks)),
        checks=checks,
    )


def _check(metric: str, bound: str, threshold: float, value: float | None) -> MetricCheck:
    if value is None:
        passed = False
    elif bound == "min":
        passed = value >= threshold
    else:
        passed = value <= threshold
    return MetricCheck(metric=metric, bound=bound, threshold=threshold, value=value, passed=passed)


def _describe(check: MetricCheck) -> str:
    limit = "minimum" if check.bound == "min" else "maximum"
    if check.value is None:
        return f"{check.metric} missing (needs {limit} {check.threshold:g})"
    if check.passed:
        op = ">=" if check.bound == "min" else "<="
        return f"{check.metric}={check.value:.4g} {op} {check.threshold:g}"
    side = "below" if check.bound == "min" else "above"
    return f"{check.metric}={check.value:.4g} {side} {limit} {check.threshold:g}"
