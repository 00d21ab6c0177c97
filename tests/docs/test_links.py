"""Every relative link in README.md and docs/*.md points at a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`[^`]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """Return the lines outside fenced code blocks, with inline code spans removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def links(text: str) -> list[str]:
    """Return the link targets of a markdown text, outside code."""
    found = []
    for line in _prose_lines(text):
        found += _LINK.findall(_CODE_SPAN.sub("", line))
    return found


def anchors(text: str) -> set[str]:
    """Return the heading anchors GitHub generates for a markdown text."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2))  # a link's text
        slug = re.sub(r"[^\w\- ]", "", title.replace("`", "").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto: ...


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in filter(_relative, links(page.read_text(encoding="utf-8"))):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_checks_find_links_and_anchors():
    text = "# A `b` c\n\n## A b c\n\nsee [x](y.md#a-b-c-1) `[no](z.md)`\n```\n[no](w.md)\n```\n"
    assert links(text) == ["y.md#a-b-c-1"]
    assert anchors(text) == {"a-b-c", "a-b-c-1"}


def test_every_docs_page_is_linked_from_the_readme():
    targets = links((ROOT / "README.md").read_text(encoding="utf-8"))
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in targets}
    unlinked = [p.name for p in PAGES[1:] if p not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"
