"""JSON merge patches (RFC 7386) between two versions of a document. Pure.

A status write sends only what changed, and a field that disappeared is sent
as ``null`` so the API server removes it: a plain dump of the new status would
leave a cleared field (a canary version, a failure) on the server forever.
"""

from __future__ import annotations

from typing import Any


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The patch that turns ``old`` into ``new``; empty when they are equal.

    Lists are replaced whole, as merge patch defines."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch


def apply_merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with ``patch`` applied, as the API server does it."""
    result = dict(doc)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            base = result.get(key)
            result[key] = apply_merge_patch(base if isinstance(base, dict) else {}, value)
        else:
            result[key] = value
    return result
