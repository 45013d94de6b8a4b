"""One reconcile of one object, as a kind's steps see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from trailboss.api.common import Resource
from trailboss.api.conditions import set_condition, set_ready
from trailboss.reconcilers.common import Services

R = TypeVar("R", bound=Resource)


@dataclass
class Turn(Generic[R]):
    """One reconcile of one object: the object as read, the status being built,
    and what to announce once that status is written."""

    body: dict[str, Any]
    svc: Services
    obj: R
    status: Any
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    requeue_after: float | None = None
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Children by kind as the watch event behind this turn delivered them: as
    fresh as a read, since every later change of them asks for another turn."""

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.body["metadata"]
        return meta

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def namespace(self) -> str:
        return str(self.meta["namespace"])

    @property
    def uid(self) -> str:
        return str(self.meta["uid"])

    @property
    def generation(self) -> int | None:
        generation: int | None = self.meta.get("generation")
        return generation

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        """Post a Kubernetes Event once the status is written."""
        self.events.append((reason, message, warning))

    def after_write(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a metric, say) once the status is written."""
        self.on_commit.append(action)

    def requeue(self, after: float) -> None:
        """Reconcile again in ``after`` seconds (the earliest request wins)."""
        if self.requeue_after is None or after < self.requeue_after:
            self.requeue_after = after

    def set_condition(self, type_: str, status: bool, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason, message, self.generation
        )

    def set_ready(self, ready: bool, reason: str, message: str) -> None:
        self.status.conditions = set_ready(
            self.status.conditions, ready, reason, message, self.generation
        )
