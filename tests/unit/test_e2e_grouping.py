"""The e2e tier runs side by side with `--dist loadgroup`: the tests of one
`xdist_group` (a module sharing one Helm release, one published model…) must all
run in one worker, or its module-scoped fixtures are made twice at once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group("release")


@pytest.mark.parametrize("i", range(6))
def test_one_of_a_group(i):
    pass
"""


def test_an_xdist_group_runs_in_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v",
         "-p", "no:cacheprovider", "test_grouped.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    workers = set(re.findall(r"\[(gw\d+)\].*PASSED", run.stdout))
    assert len(workers) == 1, run.stdout[-2000:]
