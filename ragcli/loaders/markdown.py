"""Markdown: the raw text is kept; sections split at ATX (`## x`) and setext (`x` over `===`) headings.

Headings inside fenced code blocks (``` or ~~~) and in YAML front matter are not headings. A `title:`
in front matter wins over the first heading as the document title.
"""

from __future__ import annotations

import re
from pathlib import Path

from ragcli.loaders.text import decode_document, sections_from_headings, shorten
from ragcli.models import ParsedDocument

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# Lines that cannot be the text of a setext heading: list items, quotes, tables, fences, indented code.
_NOT_SETEXT_TEXT = re.compile(r"^(?: {4}|\t| {0,3}(?:[-+*>|]|\d+[.)])(?:[ \t]|$))")
_FRONT_MATTER_TITLE = re.compile(r"""^title:[ \t]*["']?(.*?)["']?[ \t]*$""", re.MULTILINE)
_INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")


class MarkdownLoader:
    name = "markdown"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        text, metadata = decode_document(path, data)
        front_matter_end, front_title = _front_matter(text)
        headings = _headings(text, front_matter_end)
        title = front_title or (headings[0][2] if headings else None) or path.name
        return ParsedDocument(
            text=text,
            title=shorten(title),
            sections=sections_from_headings(text, headings),
            metadata=metadata,
        )


def _front_matter(text: str) -> tuple[int, str | None]:
    """Offset where YAML front matter ends (0 if there is none) and its `title:` value."""
    if not text.startswith("---\n"):
        return 0, None
    close = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], re.MULTILINE)
    if close is None:
        return 0, None
    end = 4 + close.end()
    found = _FRONT_MATTER_TITLE.search(text, 4, 4 + close.start())
    return end, (found.group(1).strip() or None) if found else None


def _headings(text: str, start: int) -> list[tuple[int, int, str]]:
    """(offset, level, text) of every heading after `start`, skipping fenced code."""
    headings: list[tuple[int, int, str]] = []
    fence: str | None = None
    previous: tuple[int, str] | None = None  # offset and text of the line before, if it can be a title
    after_break = True  # the previous line was blank, a heading, a fence, or there was none
    offset = 0
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        if line_start < start:
            continue
        content = line.rstrip("\n")
        if fence is not None:
            if _closes(fence, content):
                fence = None
            previous, after_break = None, True
            continue
        fence_match = _FENCE.match(content)
        if fence_match:
            fence = fence_match.group(1)
            previous = None
            continue

        atx = _ATX.match(content)
        if atx:
            headings.append((line_start, len(atx.group(1)), _clean(atx.group(2) or "")))
            previous, after_break = None, True
            continue
        underline = _SETEXT_UNDERLINE.match(content)
        if underline and previous is not None:
            level = 1 if underline.group(1)[0] == "=" else 2
            headings.append((previous[0], level, _clean(previous[1])))
            previous, after_break = None, True
            continue
        # Only the first line of a paragraph may be a setext title: a `---` under running text is far
        # more often meant as a rule than as a heading made of the whole paragraph.
        starts_paragraph = after_break
        after_break = not content.strip()
        if content.strip() and starts_paragraph and not _NOT_SETEXT_TEXT.match(content):
            previous = (line_start, content)
        else:
            previous = None
    return [h for h in headings if h[2]]


def _closes(fence: str, line: str) -> bool:
    """A closing fence uses the opening's character, at least as many times, and nothing else."""
    match = _FENCE.match(line)
    return bool(match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
                and not line.strip().strip(fence[0]))


def _clean(heading: str) -> str:
    heading = _INLINE_LINK.sub(r"\1", heading)
    heading = _EMPHASIS.sub("", heading)
    return " ".join(heading.split())
