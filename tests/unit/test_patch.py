"""Status writes as merge patches: what changed, and nulls for what went away."""

from __future__ import annotations

from typing import Any

import pytest

from trailboss.builders.patch import apply_merge_patch, merge_patch

CASES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ({"a": 1}, {"a": 1}, {}),
    ({"a": 1}, {"a": 2}, {"a": 2}),
    ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
    (
        {"x": {"canary": "v2", "weight": 10}},
        {"x": {"weight": 0}},
        {"x": {"canary": None, "weight": 0}},
    ),
    ({"x": {"y": 1}}, {}, {"x": None}),
    ({}, {"x": {"y": 1}}, {"x": {"y": 1}}),
    ({"l": [1, 2]}, {"l": [1]}, {"l": [1]}),
    ({"x": 1}, {"x": {"y": 1}}, {"x": {"y": 1}}),
]


@pytest.mark.parametrize(("old", "new", "patch"), CASES)
def test_patch_carries_changes_and_removals(
    old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert merge_patch(old, new) == patch
    assert apply_merge_patch(old, merge_patch(old, new)) == new
