"""e2e tests run side by side on one stack: stopping what they share needs the mark."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.cluster import Operator, SharedComponents, stack_command


@pytest.fixture
def enforced() -> Iterator[None]:
    SharedComponents.enforced, SharedComponents.allowed = True, False
    yield
    SharedComponents.enforced, SharedComponents.allowed = False, False


@pytest.mark.usefixtures("enforced")
@pytest.mark.parametrize("args", [("stop", "mlflow"), ("start", "s3"), ("down",), ("up",)])
def test_a_stack_command_that_changes_what_runs_fails_an_unmarked_test(
    args: tuple[str, ...],
) -> None:
    with pytest.raises(AssertionError, match=r"Mark the test @pytest.mark.disruptive"):
        stack_command(*args)


@pytest.mark.usefixtures("enforced")
@pytest.mark.parametrize("action", ["kill", "stop", "start"])
def test_stopping_or_restarting_the_operator_fails_an_unmarked_test(
    action: str, tmp_path: Path
) -> None:
    operator = Operator({}, tmp_path)
    with pytest.raises(AssertionError, match=r"the operator: every e2e test shares it"):
        getattr(operator, action)()


@pytest.mark.usefixtures("enforced")
def test_the_runs_own_set_up_and_clean_up_may(tmp_path: Path) -> None:
    operator = Operator({}, tmp_path)  # never started: stop and kill have nothing to do
    with SharedComponents.restoring():
        operator.stop()
        operator.kill()
    with pytest.raises(AssertionError):
        operator.stop()


def test_benchmarks_and_the_demo_own_their_stack_and_are_never_checked(tmp_path: Path) -> None:
    assert not SharedComponents.enforced
    Operator({}, tmp_path).stop()


def test_a_worker_uses_the_runs_operator_through_a_handle(tmp_path: Path) -> None:
    owner = Operator({"KUBECONFIG": "k"}, tmp_path)
    owner.starts, owner.pid = 2, 1  # pid 1 is always alive
    handle = Operator.attach(owner.shared())
    assert (handle.metrics_port, handle.liveness_port) == (owner.metrics_port, owner.liveness_port)
    assert (handle.log_dir, handle.starts, handle.env) == (tmp_path, 2, {"KUBECONFIG": "k"})
    assert handle.alive
    assert handle.proc is None
