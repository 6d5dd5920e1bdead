"""reStructuredText: the text is kept, less the title adornments; sections split at section titles.

A title is a line of text under a blank line (or at the start), followed by an underline of one repeated
punctuation character at least as long as the text, optionally with a matching overline. As in docutils,
heading levels are not fixed by the character: the first adornment style met is level 1, the next new
one level 2, and so on; "=" with an overline is a different style from "=" without.

The underline and overline of a title are dropped from the text (the title line stays, as a paragraph of
its own): a reader should not be shown "~~~~~~~~", and a line of tildes or backquotes reads as a code
fence to Markdown-minded code downstream, which then took the section's sentences for code.
"""

from __future__ import annotations

import re
from pathlib import Path

from ragcli.loaders.text import decode_document, sections_from_headings, shorten
from ragcli.models import ParsedDocument

# Any one non-alphanumeric printable ASCII character, repeated: docutils' adornment alphabet.
_ADORNMENT = re.compile(r"""^([!-/:-@\[-`{-~])\1+[ \t]*$""")


class RstLoader:
    name = "rst"
    # 2: title adornment lines ("~~~~") dropped.
    version = 2

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        raw, metadata = decode_document(path, data)
        text, headings = _headings(raw)
        title = headings[0][2] if headings else path.name
        return ParsedDocument(
            text=text,
            title=shorten(title),
            sections=sections_from_headings(text, headings),
            metadata=metadata,
        )


def _headings(raw: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The text without title adornments, and its (offset, level, title) headings."""
    lines = raw.splitlines(keepends=True)
    stripped = [line.rstrip() for line in lines]
    kept: list[str] = []
    offset = 0

    def keep(line: str) -> None:
        nonlocal offset
        kept.append(line)
        offset += len(line)

    styles: list[tuple[str, bool]] = []
    headings: list[tuple[int, int, str]] = []
    i, after_blank = 0, True
    while i < len(lines):
        found = _title_at(stripped, i) if after_blank else None
        if found is None:
            after_blank = not stripped[i]
            keep(lines[i])
            i += 1
            continue
        title, char, overlined, consumed = found
        if (char, overlined) not in styles:
            styles.append((char, overlined))
        headings.append((offset, styles.index((char, overlined)) + 1, title))
        keep(f"{title}\n")
        if i + consumed < len(lines) and stripped[i + consumed]:
            keep("\n")  # a paragraph may follow a title directly: keep them apart
        i += consumed
        after_blank = True
    return "".join(kept), headings


def _title_at(lines: list[str], i: int) -> tuple[str, str, bool, int] | None:
    """(title, adornment char, has overline, lines used) if a section title starts at line i."""
    over = _ADORNMENT.match(lines[i])
    if over and i + 2 < len(lines):
        title = lines[i + 1].strip()
        under = _ADORNMENT.match(lines[i + 2])
        if (
            title
            and under
            and under.group(1) == over.group(1)
            and len(lines[i + 2]) >= len(title)
            and not _ADORNMENT.match(lines[i + 1])
        ):
            return title, over.group(1), True, 3
        return None
    if i + 1 >= len(lines) or not lines[i] or lines[i][0] in " \t" or over:
        return None
    under = _ADORNMENT.match(lines[i + 1])
    if under and len(lines[i + 1]) >= len(lines[i]):
        return lines[i].strip(), under.group(1), False, 2
    return None
