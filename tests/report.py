"""Time per test tier and the slowest tests, from the JUnit XML files `make test` writes.

Usage: python -m tests.report build/test-results

Printed at the end of every `make test` (and so of CI), so a slow test is seen the day it
arrives rather than when the suite has become slow.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

SLOWEST = 15


@dataclass(frozen=True)
class Case:
    tier: str
    name: str
    seconds: float


@dataclass(frozen=True)
class Tier:
    name: str
    tests: int
    failures: int
    skipped: int
    seconds: float
    """Wall time of the tier's pytest run (with workers, less than the sum of its tests)."""


def read(path: Path) -> tuple[Tier, list[Case]]:
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise ValueError(f"{path}: no <testsuite>")
    tier = path.stem
    cases = [
        Case(tier, f"{c.get('classname', '')}::{c.get('name', '')}", float(c.get("time", 0)))
        for c in suite.iter("testcase")
    ]
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return (
        Tier(
            tier,
            counts["tests"],
            counts["failures"] + counts["errors"],
            counts["skipped"],
            float(suite.get("time", 0)),
        ),
        cases,
    )


def render(tiers: list[Tier], cases: list[Case], slowest: int = SLOWEST) -> str:
    lines = ["", "Time per tier (wall):"]
    for t in tiers:
        lines.append(
            f"  {t.name:<18} {t.seconds:8.1f} s  {t.tests:5d} tests"
            f"  {t.failures} failed  {t.skipped} skipped"
        )
    lines.append(f"  {'total':<18} {sum(t.seconds for t in tiers):8.1f} s")
    lines.append(f"The {slowest} slowest tests (setup + call + teardown):")
    for c in sorted(cases, key=lambda c: c.seconds, reverse=True)[:slowest]:
        lines.append(f"  {c.seconds:8.1f} s  [{c.tier}] {c.name}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "build/test-results")
    tiers, cases = [], []
    for path in sorted(folder.glob("*.xml"), key=lambda p: p.stat().st_mtime):
        tier, found = read(path)
        tiers.append(tier)
        cases.extend(found)
    if not tiers:
        print(f"no test results in {folder}", file=sys.stderr)
        return 1
    print(render(tiers, cases))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
