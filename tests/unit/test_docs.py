"""The documentation a newcomer reads: the README and the site built from docs/.

The site must build with `mkdocs build --strict` and no warning, so a broken link
between pages, to a heading, or to a file of the repository fails here. The
Markdown files outside the site (the README, the chart's and the examples') are
read on GitHub only, so their links are checked here the same way.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# Markdown read on GitHub, outside the site.
READMES = sorted(
    {README, ROOT / "charts" / "trailboss" / "README.md", ROOT / "e2e" / "stack" / "README.md"}
    | set((ROOT / "examples").rglob("README.md"))
)

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\((?P<target>[^)\s#]*)(?:#(?P<anchor>[^)\s]*))?\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def _prose(markdown: str) -> str:
    """The text outside fenced code, where links are links."""
    return FENCE.sub("", markdown)


def _anchors(markdown: str) -> set[str]:
    return {slugify(title, "-") for title in HEADING.findall(_prose(markdown))}


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    """Missing mkdocs is a failure too: `pip install -e '.[dev]'` installs it."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "rollouts" / "index.html").is_file()


@pytest.mark.parametrize("markdown", READMES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_outside_the_site_resolves(markdown: Path) -> None:
    broken = []
    for link in LINK.finditer(_prose(markdown.read_text())):
        target, anchor = link["target"], link["anchor"]
        if re.match(r"^[a-z]+:", target):
            continue  # https://, mailto:
        path = (markdown.parent / target).resolve() if target else markdown
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text()):
            broken.append(f"{target}#{anchor}: no such heading")
    assert not broken, f"{markdown.relative_to(ROOT)}: {broken}"


def test_the_readme_stays_short_and_keeps_the_two_commands() -> None:
    """CI runs the test command the README names (.ci/run runs `make test`)."""
    text = README.read_text()
    assert len(text.splitlines()) <= 400
    two = text[text.index("## Two commands") :]
    two = two[: two.index("\n## ")]
    assert "make demo   # the main job" in two
    assert "make test   # unit, integration, then end-to-end tests" in two
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_links_to_every_page_of_the_site() -> None:
    """Its table of pages is the site's index, on GitHub."""
    text = _prose(README.read_text())
    linked = {Path(link["target"]).name for link in LINK.finditer(text)}
    pages = {page.name for page in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= linked, sorted(pages - linked)
