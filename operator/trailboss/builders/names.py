"""Deterministic child names: ``<parent>-<role>-<hash5>``, at most 63 characters.

The hash covers the parent's UID, so a parent deleted and created again under
the same name never collides with children still being garbage collected.
"""

from __future__ import annotations

import hashlib

MAX_NAME = 63


def child_name(parent: str, role: str, uid: str, limit: int = MAX_NAME) -> str:
    digest = hashlib.sha256(f"{uid}/{role}".encode()).hexdigest()[:5]
    suffix = f"-{role}-{digest}"
    head = parent[: max(1, limit - len(suffix))].rstrip("-.")
    return f"{head}{suffix}"
