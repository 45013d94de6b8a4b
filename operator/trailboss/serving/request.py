"""The state of the prediction request being served, shared by the HTTP layer and the model.

It lives apart from the model wrapper so that anything a model runs (the
fault-injecting test model, for one) can tell a request from the warm-up
without importing the wrapper that loads it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from dataclasses import dataclass, field


@dataclass
class RequestState:
    """What one prediction request did, shared between the HTTP layer and the model wrapper."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    rows: int = 0


# asyncio.to_thread copies the context, so the scoring thread sees the request's state.
CURRENT_REQUEST: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "trailboss_request", default=None
)
