"""What every reconciler shares: the I/O it may use, per-object locks, backoff."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from trailboss.builders.drift import JobContext
from trailboss.clients.protocols import (
    KubeClient,
    MetricsQuery,
    StorageClient,
    TrackingClient,
)
from trailboss.settings import Settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


INVALID_SPEC = "InvalidSpec"


@dataclass
class Services:
    """Clients for the outside world, made once at startup."""

    settings: Settings
    kube: KubeClient
    tracking: TrackingClient
    storage: StorageClient
    prometheus: MetricsQuery
    clock: Callable[[], dt.datetime] = utcnow


def drift_job_context(settings: Settings) -> JobContext:
    """What the operator's settings add to its drift check and profile Jobs."""
    return JobContext(
        image=settings.drift_image,
        s3_endpoint_url=settings.s3_endpoint_url,
        credentials_secret=settings.s3_credentials_secret,
        pod_labels=settings.drift_pod_labels,
        image_pull_policy=settings.drift_image_pull_policy,
        image_pull_secrets=tuple(settings.image_pull_secrets),
    )


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
