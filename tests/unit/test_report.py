"""The test report `make test` prints: time per tier and the slowest tests."""

from __future__ import annotations

from pathlib import Path

from tests import report

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="{errors}" failures="{failures}" skipped="1"
 tests="{tests}" time="{time}">{cases}</testsuite></testsuites>"""


def write(folder: Path, tier: str, time: float, cases: dict[str, float], failures: int = 0) -> None:
    body = "".join(
        f'<testcase classname="e2e.test_x" name="{name}" time="{seconds}"/>'
        for name, seconds in cases.items()
    )
    text = JUNIT.format(errors=0, failures=failures, tests=len(cases), time=time, cases=body)
    (folder / f"{tier}.xml").write_text(text)


def test_prints_each_tiers_wall_time_and_the_slowest_tests_across_tiers(tmp_path: Path) -> None:
    write(tmp_path, "unit", 61.5, {f"test_u{i}": 0.1 * i for i in range(20)})
    write(tmp_path, "e2e", 540.0, {"test_slow": 200.0, "test_fast": 1.0}, failures=1)
    tiers, cases = [], []
    for path in sorted(tmp_path.glob("*.xml")):
        tier, found = report.read(path)
        tiers.append(tier)
        cases.extend(found)
    text = report.render(tiers, cases)
    assert "  unit                   61.5 s     20 tests  0 failed  1 skipped" in text
    assert "  e2e                   540.0 s      2 tests  1 failed  1 skipped" in text
    assert "  total                 601.5 s" in text
    slowest = text.split("slowest tests")[1].splitlines()[1:]
    assert len(slowest) == report.SLOWEST
    assert slowest[0] == "     200.0 s  [e2e] e2e.test_x::test_slow"
    assert slowest[1] == "       1.9 s  [unit] e2e.test_x::test_u19"


def test_no_results_is_an_error(tmp_path: Path) -> None:
    assert report.main([str(tmp_path)]) == 1
