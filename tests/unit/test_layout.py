"""The repository's layout: tests, benchmarks, the demo and the local stack apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("operator", "tests", "e2e", "bench", "demo", "docs")
EDITS_SYS_PATH = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+]?=")


def python_files() -> list[Path]:
    return [p for top in PACKAGES for p in (ROOT / top).rglob("*.py")]


def test_no_module_edits_sys_path() -> None:
    # Benchmarks and the demo run as modules (`python -m bench.burst`), the stack's scripts
    # import the package next to them: the interpreter's own rules, nothing patched.
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in python_files()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if EDITS_SYS_PATH.search(line) and p != Path(__file__).resolve()
    ]
    assert offenders == []


def test_benchmarks_and_the_demo_live_outside_the_test_folders() -> None:
    for tier in ("tests", "e2e"):
        found = [p.name for p in (ROOT / tier).rglob("*.py") if re.match(r"bench|demo", p.name)]
        assert found == [], f"{tier}/ holds {found}: benchmarks go to bench/, the demo to demo/"
