"""Which Trailboss object an event is for, and whether this operator handles it."""

from __future__ import annotations

from typing import Any

from trailboss.api.common import GROUP
from trailboss.builders.labels import handled_by
from trailboss.handlers.services import services


def mine(meta: Any, **_: Any) -> bool:
    """kopf's filter: the object is this operator's (``trailboss.dev/operator-instance``).
    kopf then neither runs handlers nor keeps its finalizer and state on another's."""
    return handled_by(meta, services().settings.operator_instance)


def owner(body: Any, kind: str) -> tuple[str, str, str] | None:
    """(namespace, name, uid) of the trailboss.dev ``kind`` that owns ``body``, if any.
    The group matters: a Deployment owner may also be an apps/v1 one."""
    meta = body.get("metadata", {})
    for ref in meta.get("ownerReferences", []):
        if ref.get("kind") == kind and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return meta["namespace"], ref["name"], ref["uid"]
    return None
