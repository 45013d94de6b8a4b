"""The newest body of each object the operator still works on, so that a requeue
or a child's event reconciles it without reading it from the API server again.

Filled from two sources: the watch (a kind whose handler sees every event of its
objects offers each one) and the operator's own status writes (the API server
answers a write with the object as written). A body here can still be older than
the object on the server, by the time a watch event takes to arrive; the status
write that follows is guarded by the resourceVersion it was computed from, so a
stale body costs a conflict and a read (the driver's retry), never a wrong write.

Only the objects ``keep`` accepts are held: a kind keeps its unfinished objects,
whose bodies are then in memory for as long as something may happen to them, and
no finished one, whatever their number.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Body = dict[str, Any]


class LatestBodies:
    def __init__(self, keep: Callable[[Body], bool]) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._bodies: dict[str, Body] = {}

    def offer(self, body: Body) -> None:
        """Hold ``body`` unless a newer one of the object is held, or ``keep`` refuses it
        (then the object's older body goes too)."""
        uid = str(body["metadata"]["uid"])
        with self._lock:
            if not self._keep(body):
                self._bodies.pop(uid, None)
                return
            held = self._bodies.get(uid)
            if held is None or not _older(body, held):
                self._bodies[uid] = body

    def get(self, uid: str) -> Body | None:
        with self._lock:
            return self._bodies.get(uid)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._bodies.pop(uid, None)

    def __len__(self) -> int:
        return len(self._bodies)


def _older(body: Body, than: Body) -> bool:
    """Whether ``body`` is an older state of the object than ``than``. Kubernetes
    calls resourceVersions opaque; they are etcd's revisions, integers that grow,
    and anything else counts as news."""
    mine = str(body["metadata"].get("resourceVersion") or "")
    theirs = str(than["metadata"].get("resourceVersion") or "")
    if mine.isdigit() and theirs.isdigit():
        return int(mine) < int(theirs)
    return False
