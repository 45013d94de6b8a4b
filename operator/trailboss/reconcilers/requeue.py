"""Come back at time T: a reconciler asks for its object to be reconciled again
after a delay (a backoff, a rollout pause, an analysis interval, a schedule).

One thread keeps the due times of every object in a heap and hands due work to
a small pool, so waiting objects cost a heap entry rather than a timer task."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class Requeue:
    """Due times by object key; the latest request for a key replaces the earlier one."""

    def __init__(self, workers: int = 4, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, tuple[float, Callable[[], None]]] = {}
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="requeue")
        self._thread: threading.Thread | None = None

    def schedule(self, key: str, delay: float, work: Callable[[], None]) -> None:
        due = self._clock() + max(0.0, delay)
        with self._wake:
            self._due[key] = (due, work)
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._start()
            self._wake.notify()

    def cancel(self, key: str) -> None:
        with self._wake:
            self._due.pop(key, None)

    def pending(self, key: str) -> float | None:
        """Seconds until the key is due, or None when nothing is scheduled."""
        with self._wake:
            entry = self._due.get(key)
        return None if entry is None else entry[0] - self._clock()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="requeue", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            work = self._next_due()
            try:
                self._pool.submit(work)
            except RuntimeError:  # the pool is shut down: the process is exiting
                return

    def _next_due(self) -> Callable[[], None]:
        with self._wake:
            while True:
                if not self._heap:
                    self._wake.wait()
                    continue
                due, _, key = self._heap[0]
                wait = due - self._clock()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                entry = self._due.get(key)
                if entry is not None and entry[0] == due:
                    del self._due[key]
                    return entry[1]
