"""When a Deployment trains a new version (`spec.retraining`), and what its
retraining shows (`status.retraining`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from trailboss.api.common import ApiModel, Duration
from trailboss.api.constraints import Rule, checked
from trailboss.api.fields import Cron
from trailboss.api.trainingrun import TrainingRunSpec


def _known_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_KNOWN_TIME_ZONE = Rule(
    # CEL reads the zone with the API server's own tz database (Go's
    # time.LoadLocation) and fails the rule for a name it does not know.
    "timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0",
    "must be a time zone of the IANA tz database, e.g. Europe/Berlin or UTC",
    _known_time_zone,
)


_NOT_LOCAL = Rule(
    "self != 'Local'",
    "must name a time zone: Local would be the operator's own, whatever it is",
    lambda name: name != "Local",
)


class RetrainingSpec(ApiModel):
    """When to train a new version from `template`.

    Triggers: drift (`onDrift`, after `driftChecks` consecutive checks found
    dataset drift), a cron `schedule`, and on demand (set the
    `trailboss.dev/retrain` annotation to a new value, e.g. with
    `kubectl trailboss retrain deployment NAME`). Drift and schedule wait for
    the `cooldown` after the last retraining and, unless `duringRollout`, for
    a rollout in progress to end; no trigger starts more than
    `maxConcurrentRuns` at once, and a run past `runDeadline` is given up.
    The result is a ModelVersion like any other: with a versionPolicy it rolls
    out through the same canary steps and analysis once Validated (it is
    labelled with the policy's matchLabels, and under an alias policy the alias
    is moved to it unless someone moved it while it trained); with a pinned
    modelVersion the Retraining condition says which version to pin."""

    on_drift: bool = False
    """Retrain when drift checks find dataset drift."""
    drift_checks: Annotated[int, Field(ge=1, le=100)] = 2
    """Consecutive drifted checks before a drift retraining."""
    schedule: Cron | None = None
    """Cron schedule for periodic retraining, e.g. `0 3 * * 1`."""
    time_zone: (
        Annotated[
            str,
            Field(pattern=r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$", max_length=64),
            checked(_KNOWN_TIME_ZONE, _NOT_LOCAL),
        ]
        | None
    ) = None
    """IANA time zone of the schedule, e.g. `Europe/Berlin`; empty is UTC. A name
    the tz database does not know is refused, as a CronJob's timeZone is."""
    cooldown: Duration = "24h"
    """Minimum time between two drift or scheduled retrainings. Each is measured at
    the time it was due: a scheduled run at its schedule time (not when the operator
    got to it), others when they started, and two schedule times on the schedule's
    own wall clock. So a daily schedule with a 24h cooldown fires every day, across
    daylight saving changes too."""
    max_concurrent_runs: Annotated[int, Field(ge=1, le=16)] = 1
    """Retraining runs allowed at once: every TrainingRun this Deployment started
    that has not finished, not only those kept in status.retrainings."""
    run_deadline: Duration = "24h"
    """How long a retraining may take, from its TrainingRun's creation until its
    ModelVersion is Validated or Rejected. Past it the retraining is recorded as
    Failed, no longer counts towards maxConcurrentRuns, and a TrainingRun still
    pending or running is suspended (spec.suspend; resume it by hand if wanted)."""
    during_rollout: bool = False
    """Also retrain while a rollout is in progress."""
    template: TrainingRunSpec | None = None
    """The TrainingRun to create; its model must be spec.model."""


class RetrainingStatus(ApiModel):
    """One retraining triggered by this Deployment."""

    training_run: str | None = None
    """TrainingRun created."""
    reason: str | None = None
    """Drift, Schedule or Manual."""
    trigger: str | None = None
    """What fired: the drift check number, the schedule's time or the annotation value."""
    triggered_at: dt.datetime | None = None
    """When it was created."""
    replaces: str | None = None
    """The stable version when it was triggered."""
    drift_score: float | None = None
    """Largest feature drift score of the check that triggered it."""
    phase: str | None = None
    """Running, then the TrainingRun's outcome and its ModelVersion's phase:
    Failed, Validated or Rejected."""
    model_version: str | None = None
    """The ModelVersion it registered."""
    message: str | None = None
    """Why it failed, or how its version reaches traffic."""
