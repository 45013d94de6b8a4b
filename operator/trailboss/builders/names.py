"""Deterministic child names: ``<parent>-<role>-<hash5>``, at most 63 characters.

The hash covers the parent's UID, so a parent deleted and created again under
the same name never collides with children still being garbage collected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from trailboss.api.common import API_VERSION
from trailboss.builders.labels import owner_reference

MAX_NAME = 63


def child_name(parent: str, role: str, uid: str, limit: int = MAX_NAME) -> str:
    digest = hashlib.sha256(f"{uid}/{role}".encode()).hexdigest()[:5]
    suffix = f"-{role}-{digest}"
    head = parent[: max(1, limit - len(suffix))].rstrip("-.")
    return f"{head}{suffix}"


@dataclass(frozen=True)
class Owner:
    """A Trailboss object as the owner of the children built for it."""

    kind: ClassVar[str]
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, object]:
        return owner_reference(API_VERSION, self.kind, self.name, self.uid)
