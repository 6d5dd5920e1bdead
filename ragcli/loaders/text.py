"""Plain text: the whole file is one section; its title is its first non-empty line.

Also home of the small helpers every text-based loader shares (decoding, newline normalisation,
titles, section assembly).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from ragcli.errors import PermanentError
from ragcli.loaders.encoding import decode_text, is_fallback
from ragcli.models import ParsedDocument, Section

# The labels of note boxes. A box's title ("Note", "Tip:") is never a section heading nor an answer
# sentence; a label opening a sentence ("Note: …") is not part of what the sentence says.
ADMONITION_WORDS = "note|warning|tip|caution|important|hint|danger"
ADMONITION_TITLE = re.compile(rf"^(?:{ADMONITION_WORDS}|notes|tips)\s*:?$", re.IGNORECASE)

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 100
EMPTY_DOCUMENT = "empty document: no text to index"


class TextLoader:
    name = "text"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        text, metadata = decode_document(path, data)
        return ParsedDocument(
            text=text,
            title=first_line_title(text) or path.name,
            sections=[Section(0, len(text))],
            metadata=metadata,
        )


def decode_document(path: Path, data: bytes) -> tuple[str, dict[str, str]]:
    """Decoded text with normalised newlines, and metadata recording how it was decoded."""
    text, encoding = decode_text(data)
    return normalize_newlines(text), encoding_metadata(path, encoding)


def encoding_metadata(path: Path, encoding: str, *, declared: bool = False) -> dict[str, str]:
    """{"encoding": name}; a guessed legacy encoding reads "cp1252 (fallback)", for the ingest log.

    `declared`: the file named its encoding (an HTML <meta charset>), so even cp1252 is no guess.
    """
    if declared or not is_fallback(encoding):
        return {"encoding": encoding}
    log.debug("%s: not UTF-8, decoded as %s (fallback)", path, encoding)
    return {"encoding": f"{encoding} (fallback)"}


def normalize_newlines(text: str) -> str:
    # Offsets into the text are stored with every chunk, so one newline convention everywhere.
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def first_line_title(text: str) -> str | None:
    """The first non-blank line, shortened to about MAX_TITLE_CHARS at a word boundary."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return shorten(line)
    return None


def shorten(line: str, limit: int = MAX_TITLE_CHARS) -> str:
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    if len(cut) < limit // 2:
        cut = line[:limit]
    return cut.rstrip(" ,;:-") + "…"


def require_text(text: str) -> None:
    if not text.strip():
        raise PermanentError(EMPTY_DOCUMENT)


def sections_from_headings(text: str, headings: Sequence[tuple[int, int, str]]) -> list[Section]:
    """Sections from (offset, level, heading text) events, ordered by offset.

    A section runs from one heading to the next; its `heading` is the path of enclosing headings
    joined with " > ". Text before the first heading is a section without a heading, unless it is blank.
    """
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    first = headings[0][0] if headings else len(text)
    if text[:first].strip():
        sections.append(Section(0, first))
    for i, (start, level, title) in enumerate(headings):
        end = headings[i + 1][0] if i + 1 < len(headings) else len(text)
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        if end > start:
            sections.append(Section(start, end, heading=" > ".join(t for _, t in stack)))
    return sections
