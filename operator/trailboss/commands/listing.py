"""Objects as `kubectl get` prints them: a table of the CRD's printer columns
(`-o wide` adds the priority-1 ones), names, JSON or YAML.

Pure: it turns objects (dicts as the API server returns them) into text, so
the columns shown here are the ones `kubectl get trun` shows from the CRD.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

import yaml

from trailboss.api import KINDS
from trailboss.api.common import PrinterColumn
from trailboss.commands.kinds import Kind

Obj = dict[str, Any]
FORMATS = ("wide", "name", "json", "yaml")
_COLUMNS = {k.info.kind: k.info.columns for k in KINDS}
_FILTER = re.compile(r'^\[\?\(@\.(\w+)=="([^"]*)"\)\]$')


def columns(kind: Kind, *, wide: bool) -> list[PrinterColumn]:
    return [c for c in _COLUMNS[kind.kind] if wide or c.priority == 0]


def field(obj: Obj, path: str) -> Any:
    """The value at a printer column's JSONPath: `.a.b` and `.a[?(@.k=="v")].b`."""
    value: Any = obj
    for part in re.findall(r'\.\w+|\[\?\(@\.\w+=="[^"]*"\)\]', path):
        if part.startswith("."):
            value = value.get(part[1:]) if isinstance(value, dict) else None
        else:
            key, wanted = _FILTER.match(part).groups()  # type: ignore[union-attr]
            found = [v for v in value or [] if isinstance(v, dict) and v.get(key) == wanted]
            value = found[0] if found else None
        if value is None:
            return None
    return value


def age(created: str | None, now: dt.datetime) -> str:
    """`kubectl`'s short age: 45s, 3m12s, 5h, 12d, 2y."""
    if not created:
        return "<unknown>"
    start = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = max(0, int((now - start).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _cell(obj: Obj, column: PrinterColumn, now: dt.datetime) -> str:
    value = field(obj, column.json_path)
    if column.type == "date":
        return age(value, now)
    return "<none>" if value is None or value == "" else str(value)


def rows(
    kind: Kind,
    objects: Sequence[Obj],
    now: dt.datetime,
    *,
    wide: bool = False,
    namespaces: bool = False,
    qualified: bool = False,
) -> list[list[str]]:
    """A header row, then one row per object."""
    shown = columns(kind, wide=wide)
    header = (["NAMESPACE"] if namespaces else []) + ["NAME"] + [c.name.upper() for c in shown]
    table = [header]
    for obj in objects:
        meta = obj["metadata"]
        name = kind.ref(meta["name"]) if qualified else meta["name"]
        first = [meta.get("namespace") or ""] if namespaces else []
        table.append(first + [name] + [_cell(obj, c, now) for c in shown])
    return table


def align(table: Sequence[Sequence[str]], *, headers: bool = True) -> list[str]:
    """Columns padded as kubectl pads them: three spaces between."""
    shown = table if headers else table[1:]
    if not shown:
        return []
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in shown
    ]


def names(kind: Kind, objects: Sequence[Obj]) -> list[str]:
    """`-o name`: `trainingrun.trailboss.dev/churn`, what kubectl accepts back."""
    return [kind.ref(obj["metadata"]["name"]) for obj in objects]


def document(objects: Sequence[Obj], output: str, *, single: bool) -> str:
    """`-o json|yaml`: one object as itself, several as a List, as kubectl prints them."""
    body: Obj = (
        objects[0] if single else {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    )
    if output == "json":
        return json.dumps(body, indent=4)
    return yaml.safe_dump(body, sort_keys=False).rstrip("\n")
