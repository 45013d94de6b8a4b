"""What every reconciler shares: the I/O it may use, per-object locks, backoff."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trailboss import metrics
from trailboss.api.common import API_VERSION, READY, CommonStatus, Condition
from trailboss.api.conditions import find, set_ready
from trailboss.clients.kube import Kube
from trailboss.clients.storage import Storage
from trailboss.clients.tracking import Tracking
from trailboss.settings import Settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


INVALID_SPEC = "InvalidSpec"


class Waiting(Exception):
    """A step cannot finish yet; the status says why, and it is retried later."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Services:
    """Clients for the outside world, made once at startup."""

    settings: Settings
    kube: Kube
    tracking: Tracking
    storage: Storage
    clock: Callable[[], dt.datetime] = utcnow


class ObjectLocks:
    """One lock per object UID: a timer tick and a child's event never reconcile
    the same object at the same time, which keeps creations single.

    A reconcile that finds the object busy skips rather than waits: reconciles
    are level-based, so the next tick catches up, and a slow call to MLflow
    never piles up waiting threads until the worker pool is exhausted."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def __call__(self, uid: str) -> Iterator[bool]:
        """Yields True when this caller holds the object, False when it is busy."""
        with self._guard:
            lock = self._locks.setdefault(uid, threading.Lock())
        acquired = lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)


@dataclass
class Backoff:
    """Exponential retry delays per object for outages and missing inputs."""

    base: float = 5.0
    cap: float = 300.0
    _failures: dict[str, int] = field(default_factory=dict)
    _not_before: dict[str, float] = field(default_factory=dict)

    def ready(self, uid: str) -> bool:
        return time.monotonic() >= self._not_before.get(uid, 0.0)

    def failed(self, uid: str) -> float:
        count = self._failures.get(uid, 0)
        self._failures[uid] = count + 1
        delay = float(min(self.cap, self.base * 2**count))
        self._not_before[uid] = time.monotonic() + delay
        return delay

    def succeeded(self, uid: str) -> None:
        self._failures.pop(uid, None)
        self._not_before.pop(uid, None)


@dataclass
class ObjectContext:
    """One reconcile of one object: its raw body and the clients to act with."""

    body: dict[str, Any]
    svc: Services

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.body["metadata"]
        return meta

    @property
    def generation(self) -> int | None:
        generation: int | None = self.meta.get("generation")
        return generation

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.svc.kube.event(self.body, reason, message, warning=warning)


def write_status(svc: Services, body: dict[str, Any], status: CommonStatus) -> None:
    """Replace the object's status with ``status``."""
    meta = body["metadata"]
    svc.kube.patch_status(
        API_VERSION, body["kind"], meta["namespace"], meta["name"], status.to_json()
    )


def reject_invalid(
    svc: Services, body: dict[str, Any], status: CommonStatus, failed: str, problem: str
) -> None:
    """Mark an object the operator cannot run (one the API server let through, e.g.
    written before a CRD upgrade) as failed, naming the field, once."""
    if getattr(status, "phase", None) == failed:
        return
    generation = body["metadata"].get("generation")
    status.phase = failed  # type: ignore[attr-defined]
    status.observed_generation = generation
    status.conditions = set_ready(status.conditions, False, INVALID_SPEC, problem, generation)
    write_status(svc, body, status)
    svc.kube.event(body, INVALID_SPEC, problem, warning=True)
    metrics.RECONCILE_ERRORS.labels(body["kind"]).inc()


class Guard:
    """The frame around every reconcile of one kind: one reconcile per object at
    a time, exponential backoff while waiting, and the reconcile metrics."""

    def __init__(self, kind: str, base_delay: float) -> None:
        self.kind = kind
        self.locks = ObjectLocks()
        self.backoff = Backoff(base=base_delay)

    @contextlib.contextmanager
    def turn(self, uid: str) -> Iterator[bool]:
        """Yields whether this caller may reconcile the object now."""
        with self.locks(uid) as mine, metrics.RECONCILE_SECONDS.labels(self.kind).time():
            yield mine and self.backoff.ready(uid)

    def step(
        self, uid: str, advance: Callable[[], None], waiting: Callable[[Waiting], None]
    ) -> None:
        """Run ``advance``; a Waiting is recorded by ``waiting`` and backs off."""
        try:
            advance()
        except Waiting as wait:
            waiting(wait)
            self.backoff.failed(uid)
        except Exception:
            metrics.RECONCILE_ERRORS.labels(self.kind).inc()
            raise
        else:
            self.backoff.succeeded(uid)
        metrics.RECONCILES.labels(self.kind, "ok").inc()

    def forget(self, uid: str) -> None:
        self.locks.forget(uid)
        self.backoff.succeeded(uid)


def note_waiting(
    conditions: list[Condition], wait: Waiting, generation: int | None
) -> tuple[list[Condition], bool]:
    """Ready=False with the wait's reason; also whether the reason is new (worth an event)."""
    previous = find(conditions, READY)
    updated = set_ready(conditions, False, wait.reason, wait.message, generation)
    return updated, previous is None or previous.reason != wait.reason
