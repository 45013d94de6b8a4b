"""The simulation, run as a test. By default a small, fixed (derandomized)
budget that takes seconds, as part of `make test`; `make simulate` runs many
more sequences with fresh randomness:

    make simulate SEQUENCES=20000 STEPS=50

Environment: TRAILBOSS_SIM_SEQUENCES (sequences, default 20),
TRAILBOSS_SIM_STEPS (steps per sequence, default 50), TRAILBOSS_SIM_RANDOM=1
(new sequences on every run instead of the fixed ones), TRAILBOSS_SIM_DATABASE
(a directory where failing sequences are kept and replayed first)."""

from __future__ import annotations

import logging
import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from tests.sim.machine import DeploymentSimulation


def simulation_settings() -> settings:
    database = os.environ.get("TRAILBOSS_SIM_DATABASE")
    return settings(
        max_examples=int(os.environ.get("TRAILBOSS_SIM_SEQUENCES", "20")),
        stateful_step_count=int(os.environ.get("TRAILBOSS_SIM_STEPS", "50")),
        derandomize=os.environ.get("TRAILBOSS_SIM_RANDOM", "") != "1",
        database=DirectoryBasedExampleDatabase(database) if database else None,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def test_rollouts_and_retraining_keep_their_invariants() -> None:
    quiet = logging.getLogger("trailboss")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # expected waits and failures are status, not noise
    try:
        run_state_machine_as_test(DeploymentSimulation, settings=simulation_settings())
    finally:
        quiet.setLevel(level)
