"""How a Deployment rolls a new version out: the canary steps, the traffic router,
the analysis gating each step (`spec.rollout`, `spec.trafficRouter`), and what a
rollout shows (`status.traffic`, `status.analysis`, promotions and retiring versions)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from itertools import pairwise
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from trailboss.api.common import ApiModel, Duration, Name
from trailboss.api.constraints import Rule, checked, enforce, finite, model_rules
from trailboss.api.corev1 import LocalObjectReference
from trailboss.api.durations import duration_seconds


class RolloutStrategy(StrEnum):
    CANARY = "Canary"
    REPLACE = "Replace"
    SHADOW = "Shadow"


class TrafficRouterKind(StrEnum):
    REPLICA_RATIO = "ReplicaRatio"
    HTTP_ROUTE = "HTTPRoute"


class RolloutStep(ApiModel):
    """Send `weight` percent of traffic to the new version, then wait."""

    weight: Annotated[int, Field(ge=0, le=100)]
    """Percent of traffic for the canary, 0 to 100."""
    pause: Duration | None = None
    """How long to hold this step while analysis runs, e.g. `5m`. It counts from
    when the step's pods are ready, so the weight is really served that long. With
    analysis, a step holds at least one full analysis interval (a pause shorter than
    spec.rollout.analysis.interval is extended to it), so a measurement always covers
    the weight served rather than only the moment it began."""


_QUERY_MIN_AT_MOST_MAX = Rule(
    "!has(self.min) || !has(self.max) || self.min <= self.max",
    "min must be at most max",
    lambda q: q.min is None or q.max is None or q.min <= q.max,
)


Bound = Annotated[float, AfterValidator(finite)]


class AnalysisQuery(ApiModel):
    """A PromQL query whose result must stay within bounds."""

    model_config = ConfigDict(json_schema_extra=model_rules(_QUERY_MIN_AT_MOST_MAX))

    name: Name
    """Name shown in status, e.g. `error-rate`."""
    query: Annotated[str, Field(min_length=1, max_length=1024)]
    """PromQL returning one number; `{{version}}` is replaced by the canary version."""
    min: Bound | None = None
    """Fail when the result is below this."""
    max: Bound | None = None
    """Fail when the result is above this."""

    @model_validator(mode="after")
    def _min_at_most_max(self) -> AnalysisQuery:
        enforce(self, _QUERY_MIN_AT_MOST_MAX)
        return self


_QUERIES_TOTAL = Rule(
    "self.map(q, size(q.query)).sum() <= 2048",
    "the queries may hold at most 2048 characters of PromQL in all",
    lambda qs: sum(len(q.query) for q in qs) <= 2048,
)


PROMETHEUS_URL = r"^https?://[A-Za-z0-9.:_\[\]-]+(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"


_AT_LEAST_10S = Rule(
    "duration(self) >= duration('10s')",
    "must be at least 10s, so that Prometheus has new samples between measurements",
    lambda interval: duration_seconds(interval) >= 10,
)


_QUERY_TIMEOUT = Rule(
    "duration(self) >= duration('1s') && duration(self) <= duration('60s')",
    "must be between 1s and 60s: long enough for a busy Prometheus, short enough "
    "not to hold up the operator",
    lambda timeout: 1 <= duration_seconds(timeout) <= 60,
)


class PrometheusAuth(ApiModel):
    """Credentials for a Prometheus that requires authentication."""

    secret_ref: LocalObjectReference
    """A Secret in the Deployment's namespace with either the key `token` (sent as a
    bearer token) or the keys `username` and `password` (basic auth), and optionally
    `ca.crt`: PEM certificates that alone are trusted to verify an https
    prometheusUrl. It is read at every analysis interval, so a rotated Secret takes
    effect at the next measurement. A missing Secret or key is recorded as an Error
    measurement naming it. The operator needs `get` on Secrets (the chart grants it unless
    rbac.readSecrets is false)."""


class AnalysisSpec(ApiModel):
    """Prometheus analysis run during each rollout step."""

    prometheus_url: Annotated[str, Field(pattern=PROMETHEUS_URL, max_length=512)]
    """Prometheus base URL, e.g. `http://prometheus.monitoring:9090`. It is never
    followed to a redirect."""
    prometheus_auth: PrometheusAuth | None = None
    """How to authenticate to Prometheus. Without it no credentials are sent, except
    to the platform's Prometheus the operator is installed with (chart value
    `prometheus.url`): a prometheusUrl with its scheme, host and port, under its
    path, is sent the operator's own token and verified with its CA bundle."""
    queries: Annotated[
        list[AnalysisQuery], Field(min_length=1, max_length=8), checked(_QUERIES_TOTAL)
    ]
    """Queries evaluated at every interval."""
    interval: Annotated[Duration, checked(_AT_LEAST_10S)] = "1m"
    """How often the queries run (at least 10s). Every step holds at least this long
    after its pods are ready, so that a measurement covers it."""
    timeout: Annotated[Duration, checked(_QUERY_TIMEOUT)] = "10s"
    """How long one query may take, 1s to 60s: a query Prometheus has not answered by
    then is an Error measurement (and Prometheus is asked to stop evaluating it)."""
    failure_limit: Annotated[int, Field(ge=0, le=100)] = 2
    """Failed measurements tolerated in a rollout; one more aborts it. Lowered
    mid-rollout below the failures already counted, it aborts the rollout at once."""
    consecutive_error_limit: Annotated[int, Field(ge=0, le=100)] = 4
    """Errors in a row of one query (it could not run: Prometheus down, a bad query,
    an answer that is not one number) before the rollout aborts; each query counts
    its own. A query that returns no data is inconclusive: the step holds, and the
    progress deadline decides."""


DEFAULT_STEPS = (
    RolloutStep(weight=10, pause="1m"),
    RolloutStep(weight=50, pause="1m"),
    RolloutStep(weight=100),
)
"""The canary steps of a rollout whose spec.rollout.steps is empty (its description says so)."""


_WEIGHTS_INCREASE = Rule(
    "self.all(s, self.exists_one(t, t.weight == s.weight)) && self.map(s, s.weight).isSorted()",
    "weights must strictly increase, e.g. 10, 50, 100",
    lambda steps: all(a.weight < b.weight for a, b in pairwise(steps)),
)


class RolloutSpec(ApiModel):
    """How a new version replaces the serving one."""

    strategy: RolloutStrategy = RolloutStrategy.CANARY
    """Canary shifts traffic in steps; Replace swaps once the new version's pods are
    ready. Shadow (mirroring a share of requests) needs a router that mirrors; neither
    router here does, so it is refused with UnsupportedConfiguration."""
    steps: Annotated[list[RolloutStep], Field(max_length=20), checked(_WEIGHTS_INCREASE)] = []
    """Canary steps; weights strictly increase. Empty means 10, 50, 100 with 1m pauses.
    A last step below 100 is followed by promotion at 100. Edited mid-rollout (or the
    strategy switched), the rollout goes on from the same step index in the new plan,
    or from its last step when the plan is now shorter; a step whose weight changed
    starts again at its new weight."""

    analysis: AnalysisSpec | None = None
    """Prometheus checks gating each step; without it, steps advance on time."""
    progress_deadline: Duration = "10m"
    """A rollout whose canary pods stay not ready, or whose analysis has no data, this
    long in a row aborts. Each clock starts at the first pass that finds the pods not
    ready or a query without data and stops when they are ready or every query has
    data again; time paused (trailboss.dev/paused) does not count."""
    scale_down_delay: Duration = "30s"
    """How long an aborted canary or a replaced stable version keeps its pods after its
    traffic is gone (in-flight requests finish; an aborted canary can be inspected)."""
    fast_rollback_window: Duration = "1h"
    """Rolling back to a version that was stable at any moment this recently (however
    long ago it became stable; the first version served counts) goes to 100 % at once,
    without steps or analysis: it was serving moments ago."""


_GATEWAY_FOR_ROUTE = Rule(
    "!has(self.kind) || self.kind != 'HTTPRoute' || has(self.gateway)",
    "kind: HTTPRoute needs gateway, the Gateway the route attaches to",
    lambda t: t.kind != TrafficRouterKind.HTTP_ROUTE or t.gateway is not None,
)


class TrafficRouterSpec(ApiModel):
    """How traffic is split between stable and canary."""

    model_config = ConfigDict(json_schema_extra=model_rules(_GATEWAY_FOR_ROUTE))

    kind: TrafficRouterKind = TrafficRouterKind.REPLICA_RATIO
    """ReplicaRatio needs nothing extra; HTTPRoute sets Gateway API backend weights, and
    Ready then also waits until the Gateway has accepted a route that sends all traffic
    to the target. Switching back to ReplicaRatio deletes the HTTPRoute."""
    gateway: Name | None = None
    """Gateway the HTTPRoute attaches to (HTTPRoute only)."""
    gateway_namespace: Name | None = None
    """Namespace of that Gateway, when it is shared from another namespace (its
    listener must allow routes from this one); empty means this namespace."""
    hostnames: Annotated[
        list[
            Annotated[
                str,
                Field(
                    pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                    max_length=253,
                ),
            ]
        ],
        Field(max_length=16),
    ] = []
    """Host names the route answers for; empty answers every request the Gateway
    listener passes to it."""

    @model_validator(mode="after")
    def _gateway_for_route(self) -> TrafficRouterSpec:
        enforce(self, _GATEWAY_FOR_ROUTE)
        return self


class MeasurementPhase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class AnalysisResult(ApiModel):
    """One measurement of one analysis query."""

    name: str
    """Query name."""
    version: str | None = None
    """The canary version measured."""
    step: int | None = None
    """Rollout step the measurement was taken in."""
    value: float | None = None
    """Measured value; empty when the query returned no data or failed."""
    phase: MeasurementPhase = MeasurementPhase.SUCCESSFUL
    """Successful, Failed (out of bounds), Inconclusive (no data) or Error."""
    passed: bool
    """Whether it stayed within bounds."""
    message: str | None = None
    """The bound it broke, or why it could not be measured."""
    measured_at: dt.datetime | None = None
    """When it was measured."""


class TrafficStatus(ApiModel):
    """One served version and its share of traffic."""

    version: str
    """ModelVersion name."""
    role: str
    """`stable` or `canary`."""
    desired_weight: int
    """Percent of traffic it should get."""
    actual_weight: int | None = None
    """Percent it gets now: its share of ready pods (ReplicaRatio), or its weight in
    the HTTPRoute as read back once the Gateway accepted that route (HTTPRoute);
    empty while the Gateway has not yet taken the latest weights."""
    replicas: int = 0
    """Serving pods wanted."""
    ready_replicas: int = 0
    """Serving pods ready."""


class PromotedVersion(ApiModel):
    """A version that reached 100 % of traffic. It stayed stable until the next
    one in the list became stable."""

    version: str
    """ModelVersion name."""
    promoted_at: dt.datetime
    """When it became stable (promoted, or first served)."""


class RetiringVersion(ApiModel):
    """A version whose traffic is gone and whose pods go after the scale-down delay."""

    version: str
    """ModelVersion name."""
    since: dt.datetime
    """When its traffic was removed."""
