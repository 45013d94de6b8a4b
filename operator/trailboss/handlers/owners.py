"""Which Trailboss object a child's event is for."""

from __future__ import annotations

from typing import Any

from trailboss.api.common import GROUP


def owner(body: Any, kind: str) -> tuple[str, str, str] | None:
    """(namespace, name, uid) of the trailboss.dev ``kind`` that owns ``body``, if any.
    The group matters: a Deployment owner may also be an apps/v1 one."""
    meta = body.get("metadata", {})
    for ref in meta.get("ownerReferences", []):
        if ref.get("kind") == kind and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return meta["namespace"], ref["name"], ref["uid"]
    return None
