"""The state of the prediction request being served, shared by the HTTP layer and the model.

It lives apart from the model wrapper so that anything a model runs (the
fault-injecting test model, for one) can tell a request from the warm-up
without importing the wrapper that loads it.

Everything here runs once per request, so it is kept to a few hundred
nanoseconds: the arrival time is an integer (the logging thread turns it into
a timestamp), and a request id is a random per-process prefix and a counter
rather than a fresh ``uuid4`` (a system call for random bytes each time).
"""

from __future__ import annotations

import contextvars
import itertools
import os
import re
import time
import uuid

REQUEST_ID = re.compile(r"^[!-~]{1,128}$")  # printable ASCII, no spaces, bounded


class _RequestIds:
    """32 hex digits, as a uuid4's: 16 random per process, 16 counting its requests."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_IDS = _RequestIds()
# A forked child (a test runner, a worker) must not repeat its parent's ids.
os.register_at_fork(after_in_child=_IDS.reset)


def new_request_id() -> str:
    """A request id unique to this process and request."""
    return _IDS.next()


def is_valid_request_id(text: str) -> bool:
    """Whether a client's request id can be used as it is: as a header value and a log key."""
    return REQUEST_ID.match(text) is not None


def now_us() -> int:
    """Microseconds since the epoch (UTC), the resolution of the log's ``timestamp``."""
    return time.time_ns() // 1000


class RequestState:
    """What one prediction request did, shared between the HTTP layer and the model wrapper."""

    __slots__ = ("arrived_us", "predicted", "request_id", "rows")

    def __init__(self, request_id: str | None = None) -> None:
        self.request_id = request_id or new_request_id()
        self.arrived_us = now_us()
        self.rows = 0
        # Whether the request got as far as the model: an error before it is the request's.
        self.predicted = False


# asyncio.to_thread copies the context, so the scoring thread sees the request's state.
CURRENT_REQUEST: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "trailboss_request", default=None
)
