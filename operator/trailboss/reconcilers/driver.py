"""The one reconcile loop every kind runs on.

parse -> (settled? stop) -> advance one step with the kind's own logic ->
map any error to wait or fail -> write status only if it changed, guarded by
the resourceVersion it was computed from -> only then post events and count
metrics -> ask to come back later if the kind needs a time.

A write that conflicts (409) means someone else moved the object: the driver
reads it again and starts over, and since events and counters are posted only
after a successful write, a stale view never counts or announces anything twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from trailboss import metrics
from trailboss.api.common import API_VERSION, CommonStatus, Resource, explain
from trailboss.api.conditions import find
from trailboss.api.durations import TIME_SCALE_ANNOTATION, parse_time_scale, time_scale
from trailboss.builders.labels import handled_by
from trailboss.builders.patch import merge_patch
from trailboss.clients.protocols import Conflict
from trailboss.reconcilers.common import INVALID_SPEC, Backoff, ObjectLocks, Services
from trailboss.reconcilers.latest import LatestBodies
from trailboss.reconcilers.outcomes import Outcome, Verdict, Waiting, classify
from trailboss.reconcilers.requeue import Requeue
from trailboss.reconcilers.turn import Turn

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)
MAX_CONFLICT_RETRIES = 3


class Result(StrEnum):
    """How one reconcile ended, as counted in ``trailboss_reconcile_total{result}``."""

    OK = "ok"
    WAIT = "wait"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    CONFLICT = "conflict"


class Kind(Protocol[R]):
    """What a kind tells the driver; everything else is shared."""

    kind: str
    model: type[R]
    failed_phase: str
    phases: tuple[str, ...]
    """Every phase the kind's status can show, exported at 0 in ``trailboss_objects``."""

    def settled(self, obj: R) -> bool:
        """Nothing is left to do for the object as it is."""
        ...

    def advance(self, turn: Turn[R]) -> None:
        """One level-based step; raises Waiting or Failed when it cannot finish."""
        ...

    def failed(self, turn: Turn[R], outcome: Outcome) -> None:
        """The object failed for good (Ready is already False with the reason):
        set the phase and the kind's own fields and counters."""
        ...


@dataclass
class Ended:
    result: Result
    requeue_after: float | None = None


class Driver(Generic[R]):
    """Runs a Kind's reconciles: one at a time per object, with backoff and requeue."""

    def __init__(
        self,
        kind: Kind[R],
        base_delay: float,
        requeue: Requeue | None = None,
        latest: LatestBodies | None = None,
    ) -> None:
        self.kind = kind
        self.locks = ObjectLocks()
        self.backoff = Backoff(base=base_delay)
        self.requeue = requeue
        self.latest = latest
        """Where the kind's handler keeps every watch event's body: then a requeue or a
        child's event needs no read of the object."""
        self._errors_logged: set[str] = set()

    def reconcile(
        self, body: dict[str, Any], svc: Services, seen: dict[str, dict[str, Any]] | None = None
    ) -> Ended:
        """Bring one object one step closer to done. Never raises for a bad object.

        ``seen``: children as the watch event that asked for this reconcile delivered
        them, by kind, so the kind need not read them again."""
        uid = str(body["metadata"]["uid"])
        if not handled_by(body["metadata"], svc.settings.operator_instance):
            return Ended(Result.SKIPPED)  # another operator's (a child's event led here)
        with self.locks(uid) as mine:
            if not mine or body["metadata"].get("deletionTimestamp"):
                ended = Ended(Result.SKIPPED)
            else:
                started = time.monotonic()
                ended = self._until_written_or_retried(body, svc, seen or {})
                seconds = time.monotonic() - started
                metrics.RECONCILE_SECONDS.labels(self.kind.kind).observe(seconds)
        metrics.RECONCILES.labels(self.kind.kind, str(ended.result)).inc()
        self._schedule(uid, body, svc, ended)
        return ended

    def reconcile_latest(
        self,
        namespace: str,
        name: str,
        uid: str,
        svc: Services,
        seen: dict[str, dict[str, Any]] | None = None,
        *,
        read: bool = False,
    ) -> Ended:
        """Reconcile the object as last seen (a requeue, a child's event): from
        ``latest`` where it holds the object, else (or with ``read``) read afresh."""
        held = None if read or self.latest is None else self.latest.get(uid)
        body = held or svc.kube.get(API_VERSION, self.kind.kind, namespace, name)
        if body is None or body["metadata"].get("uid") != uid:
            self.forget(uid)
            return Ended(Result.SKIPPED)
        return self.reconcile(body, svc, seen)

    def forget(self, uid: str) -> None:
        """The object is gone: drop what the driver holds for it."""
        metrics.object_phases.forget(uid)
        self.locks.forget(uid)
        self.backoff.succeeded(uid)
        self._errors_logged.discard(uid)
        if self.requeue is not None:
            self.requeue.cancel(uid)
        if self.latest is not None:
            self.latest.forget(uid)

    def _until_written_or_retried(
        self, body: dict[str, Any], svc: Services, seen: dict[str, dict[str, Any]]
    ) -> Ended:
        """Reconciled, or failed on the way to the API server (a read or the status
        write): then tried again after the object's backoff, by the driver's own
        requeue, since no watch event may ever come to ask for it."""
        try:
            return self._until_written(body, svc, seen)
        except Exception as error:
            meta = body["metadata"]
            delay = self.backoff.failed(str(meta["uid"]))
            log.warning(
                "%s %s/%s: reconcile not finished (%s: %s); trying again in %.0f s",
                self.kind.kind,
                meta.get("namespace"),
                meta.get("name"),
                type(error).__name__,
                error,
                delay,
            )
            return Ended(Result.ERROR, requeue_after=delay)

    def _until_written(
        self, body: dict[str, Any], svc: Services, seen: dict[str, dict[str, Any]]
    ) -> Ended:
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return self._once(body, svc, seen)
            except Conflict:
                meta = body["metadata"]
                fresh = svc.kube.get(API_VERSION, self.kind.kind, meta["namespace"], meta["name"])
                if fresh is None or fresh["metadata"].get("uid") != meta["uid"]:
                    return Ended(Result.SKIPPED)
                body = fresh
        return Ended(Result.CONFLICT, requeue_after=1.0)

    def _once(self, body: dict[str, Any], svc: Services, seen: dict[str, dict[str, Any]]) -> Ended:
        try:
            obj = self.kind.model.model_validate(body)
        except ValidationError as error:
            return self._invalid(body, svc, explain(error))
        if self.kind.settled(obj):
            self.backoff.succeeded(str(body["metadata"]["uid"]))
            self._count_phase(body, obj.status.phase)  # type: ignore[attr-defined]
            return Ended(Result.OK)
        turn: Turn[R] = Turn(body, svc, obj, obj.status.model_copy(deep=True), seen=seen)  # type: ignore[attr-defined]
        before = obj.status.to_json()  # type: ignore[attr-defined]
        result = self._advance(turn)
        self._write(turn, before)
        self._announce(turn)
        self._count_phase(body, turn.status.phase)
        return Ended(result, turn.requeue_after)

    def _advance(self, turn: Turn[R]) -> Result:
        try:
            with time_scale(_time_scale(turn)):
                self.kind.advance(turn)
        except Exception as error:  # every error becomes a condition, never a crash loop
            return self._settle_error(turn, error)
        self.backoff.succeeded(turn.uid)
        return Result.OK

    def _settle_error(self, turn: Turn[R], error: Exception) -> Result:
        outcome = classify(error)
        result = Result.WAIT
        if outcome is None:
            outcome = Outcome(Verdict.WAIT, "ReconcileError", f"{type(error).__name__}: {error}")
            result = Result.ERROR
            self._log_unexpected(turn, error)
        if outcome.verdict == Verdict.FAIL:
            self._fail(turn, outcome)
            return Result.FAILED
        self._wait(turn, outcome, error)
        return result

    def _wait(self, turn: Turn[R], outcome: Outcome, error: Exception) -> None:
        previous = find(turn.status.conditions, "Ready")
        turn.set_ready(False, outcome.reason, outcome.message)
        if previous is None or previous.reason != outcome.reason:
            turn.event(outcome.reason, outcome.message, warning=True)
        retry_after = error.retry_after if isinstance(error, Waiting) else None
        delay = self.backoff.failed(turn.uid) if retry_after is None else retry_after
        turn.requeue(delay)
        log.info(
            "%s %s/%s waiting (%s): %s",
            self.kind.kind,
            turn.namespace,
            turn.name,
            outcome.reason,
            outcome.message,
        )

    def _fail(self, turn: Turn[R], outcome: Outcome) -> None:
        turn.set_ready(False, outcome.reason, outcome.message)
        turn.event(outcome.reason, outcome.message, warning=True)
        self.kind.failed(turn, outcome)
        kind = self.kind.kind
        turn.after_write(lambda: metrics.RECONCILE_ERRORS.labels(kind).inc())
        log.warning(
            "%s %s/%s failed (%s): %s",
            kind,
            turn.namespace,
            turn.name,
            outcome.reason,
            outcome.message,
        )

    def _log_unexpected(self, turn: Turn[R], error: Exception) -> None:
        # A bug, not a bad object: the traceback once per object, then one line.
        first = turn.uid not in self._errors_logged
        self._errors_logged.add(turn.uid)
        log.error(
            "%s %s/%s: unexpected %s: %s",
            self.kind.kind,
            turn.namespace,
            turn.name,
            type(error).__name__,
            error,
            exc_info=first,
        )
        metrics.RECONCILE_ERRORS.labels(self.kind.kind).inc()

    def _invalid(self, body: dict[str, Any], svc: Services, problem: str) -> Ended:
        """An object the API server let through (e.g. written before a CRD upgrade)
        but the operator cannot run: failed, naming the field, once."""
        raw = dict(body.get("status") or {})
        status = _lenient_status(raw)
        turn: Turn[Any] = Turn(body, svc, None, status)
        ready = find(status.conditions, "Ready")
        if raw.get("phase") == self.kind.failed_phase and ready and ready.message == problem:
            self._count_phase(body, self.kind.failed_phase)
            return Ended(Result.FAILED)
        status.observed_generation = turn.generation
        turn.set_ready(False, INVALID_SPEC, problem)
        # A kind that follows the Job convention (TrainingRun) also says Failed=True.
        for condition in getattr(self.kind, "failed_conditions", ()):
            turn.set_condition(condition, True, INVALID_SPEC, problem)
        turn.event(INVALID_SPEC, problem, warning=True)
        kind = self.kind.kind
        turn.after_write(lambda: metrics.RECONCILE_ERRORS.labels(kind).inc())
        after = {**status.to_json(), "phase": self.kind.failed_phase}
        self._patch(turn, merge_patch(raw, {**raw, **after}))
        self._announce(turn)
        self._count_phase(body, self.kind.failed_phase)
        log.warning("%s %s/%s is invalid: %s", kind, turn.namespace, turn.name, problem)
        return Ended(Result.FAILED)

    def _count_phase(self, body: dict[str, Any], phase: str | None) -> None:
        """Only once the status with this phase is on the server, as for every metric."""
        meta, spec = body["metadata"], body.get("spec") or {}
        group = (self.kind.kind, str(meta["namespace"]), str(spec.get("model") or ""))
        metrics.object_phases.observe(str(meta["uid"]), group, phase or "", self.kind.phases)

    def _write(self, turn: Turn[R], before: dict[str, Any]) -> None:
        patch = merge_patch(before, turn.status.to_json())
        if patch:
            self._patch(turn, patch)

    def _patch(self, turn: Turn[Any], patch: dict[str, Any]) -> None:
        version = turn.meta.get("resourceVersion")
        written = turn.svc.kube.patch_status(
            API_VERSION, self.kind.kind, turn.namespace, turn.name, patch, version
        )
        if written is not None:
            turn.meta["resourceVersion"] = written["metadata"].get("resourceVersion")
            if self.latest is not None:
                self.latest.offer(written)

    def _announce(self, turn: Turn[Any]) -> None:
        # The metrics first: they are this process's own and instant, while each Event
        # is a request that a busy API server can hold for seconds, and the metrics
        # should say what the written status says as soon as it says it.
        for action in turn.on_commit:
            action()
        for reason, message, warning in turn.events:
            turn.svc.kube.event(turn.body, reason, message, warning=warning)

    def _schedule(self, uid: str, body: dict[str, Any], svc: Services, ended: Ended) -> None:
        if self.requeue is None or ended.result == Result.SKIPPED:
            return
        if ended.requeue_after is None:
            self.requeue.cancel(uid)
            return
        meta = body["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        self.requeue.schedule(
            uid,
            ended.requeue_after,
            lambda: self._requeued(namespace, name, uid, svc),
        )

    def _requeued(self, namespace: str, name: str, uid: str, svc: Services) -> None:
        try:
            self.reconcile_latest(namespace, name, uid, svc)
        except Exception as error:  # the next event or resync tries again
            log.warning(
                "%s %s/%s: requeued reconcile failed: %s", self.kind.kind, namespace, name, error
            )


def _lenient_status(raw: dict[str, Any]) -> CommonStatus:
    try:
        return CommonStatus.model_validate(raw)
    except ValidationError:
        return CommonStatus()


def _time_scale(turn: Turn[Any]) -> float:
    """The object's ``trailboss.dev/time-scale``, where the operator runs for tests."""
    text = (turn.meta.get("annotations") or {}).get(TIME_SCALE_ANNOTATION)
    if text is None or not turn.svc.settings.time_scale_annotations:
        return 1.0
    try:
        return parse_time_scale(text)
    except ValueError as error:
        log.warning("%s/%s: %s; durations are left as written", turn.namespace, turn.name, error)
        return 1.0
