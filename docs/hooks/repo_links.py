"""Links from the documentation to the repository's own files.

The pages link to code, examples and charts with relative paths (``../demo/__main__.py``),
which GitHub follows as they are. The site has only the pages, so such a link becomes
the file's address on GitHub (``repo_url``). A link to a file that does not exist, or to
a heading a Markdown file lacks (``../README.md#no-such-heading``), is a warning, which
``mkdocs build --strict`` turns into a failure, as it does for a broken link between pages.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify

log = logging.getLogger("mkdocs.hooks.repo_links")

# A Markdown link or image target: ](target) or ](target#anchor), no spaces, no title.
LINK = re.compile(r"\]\((?P<target>\.\./[^)\s#]*)(?P<anchor>#[^)\s]*)?\)")
# Fenced code is shown as it is written, links and all.
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def anchors(markdown: str) -> set[str]:
    """The anchors of a Markdown file's headings, as GitHub and the site name them."""
    return {slugify(title, "-") for title in HEADING.findall(FENCE.sub("", markdown))}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    repo = Path(config["config_file_path"]).resolve().parent
    page_dir = (docs / page.file.src_uri).parent
    base = str(config["repo_url"]).rstrip("/")

    def to_github(match: re.Match[str]) -> str:
        target = (page_dir / match["target"]).resolve()
        if target.is_relative_to(docs):
            return match[0]  # a page or a file of the site: mkdocs checks it
        if not target.is_relative_to(repo) or not target.exists():
            log.warning(
                "Doc file '%s' links to '%s', which is not a file of the repository.",
                page.file.src_uri,
                match["target"],
            )
            return match[0]
        anchor = (match["anchor"] or "#")[1:]
        if anchor and target.suffix == ".md" and anchor not in anchors(target.read_text()):
            log.warning(
                "Doc file '%s' links to '%s#%s', but that file has no such heading.",
                page.file.src_uri,
                match["target"],
                anchor,
            )
        kind = "tree" if target.is_dir() else "blob"
        path = target.relative_to(repo).as_posix()
        return f"]({base}/{kind}/main/{path}{match['anchor'] or ''})"

    parts, last = [], 0
    for fence in FENCE.finditer(markdown):
        parts.append(LINK.sub(to_github, markdown[last : fence.start()]))
        parts.append(fence[0])
        last = fence.end()
    parts.append(LINK.sub(to_github, markdown[last:]))
    return "".join(parts)
