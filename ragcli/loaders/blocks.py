"""Helpers for loaders of structured formats (Office, OpenDocument, e-mail, data files).

Such a loader walks its format and emits `Block`s: a piece of text with the location a citation should
show (a heading path, a page/slide number, a sheet name as heading). `document_from_blocks` joins them into
the one text + sections a `ParsedDocument` is. Also here: the zip guard every zip-based format (docx, xlsx,
pptx, epub, odt, …) passes before a parser sees it, and the rendering of table rows shared by spreadsheets
and CSV files.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragcli.errors import PermanentError, UnsupportedError
from ragcli.loaders.text import EMPTY_DOCUMENT, shorten
from ragcli.models import ParsedDocument, Section

# A zip whose parts inflate past this is a zip bomb or a document no one will read as text.
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_ZIP_ENTRIES = 20_000
# Real Office XML compresses ~10-30:1; a part inflating more than this is crafted.
MAX_COMPRESSION_RATIO = 200
# Spreadsheets and data files: cells beyond this are not indexed (the document says so in its text).
MAX_CELLS = 500_000
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Block:
    text: str
    heading: str | None = None
    page: int | None = None


def document_from_blocks(
    blocks: Iterable[Block],
    title: str | None,
    fallback_title: str,
    metadata: dict[str, str] | None = None,
    *,
    first_line_title: bool = True,
) -> ParsedDocument:
    """Joins blocks with blank lines; consecutive blocks at the same location form one section.

    The title is `title`, else the text's first line (unless `first_line_title` is False: a table's
    header row is no title), else `fallback_title` (the file name).
    """
    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        if parts:
            parts.append(_SEPARATOR)
            offset += len(_SEPARATOR)
        start = offset
        parts.append(text)
        offset += len(text)
        last = sections[-1] if sections else None
        if last is not None and (last.heading, last.page) == (block.heading, block.page):
            sections[-1] = Section(last.start, offset, last.heading, last.page)
        else:
            sections.append(Section(start, offset, block.heading, block.page))
    if not parts:
        raise PermanentError(EMPTY_DOCUMENT)
    text = "".join(parts)
    first_line = text.lstrip().split("\n", 1)[0] if first_line_title else ""
    return ParsedDocument(
        text=text,
        title=shorten(" ".join((title or "").split()) or " ".join(first_line.split()) or fallback_title),
        sections=sections,
        metadata=metadata or {},
    )


class HeadingPath:
    """The " > "-joined path of enclosing headings, as `sections_from_headings` writes it."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, " ".join(title.split())))

    @property
    def current(self) -> str | None:
        return " > ".join(t for _, t in self._stack) or None


def open_zip(data: bytes, kind: str) -> zipfile.ZipFile:
    """The zip inside an Office/OpenDocument/EPUB file, after checking it cannot explode.

    Refuses a password-protected Office file (an OLE container, not a zip) with that reason.
    """
    if not data.strip(b"\x00 \t\r\n"):
        raise PermanentError(EMPTY_DOCUMENT)
    if data.startswith(OLE_MAGIC):
        raise PermanentError(
            f"encrypted (password-protected) or legacy binary {kind} file: it is not a readable zip package",
            hint="Save a copy without the password in the current format (File > Save As).",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise PermanentError(f"corrupt {kind} file: not a readable zip package ({exc})") from exc
    check_zip_bounds(infos, kind)
    return archive


def check_zip_bounds(infos: Sequence[zipfile.ZipInfo], kind: str) -> None:
    if len(infos) > MAX_ZIP_ENTRIES:
        raise PermanentError(f"{kind} file has {len(infos)} zip entries, over the {MAX_ZIP_ENTRIES} limit")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > 1_000_000 and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise PermanentError(
                f"{kind} file looks like a zip bomb: {info.filename} inflates "
                f"{info.file_size // max(info.compress_size, 1)}:1"
            )
        if info.flag_bits & 0x1:
            raise PermanentError(f"encrypted {kind} file: its zip entries need a password")
    if total > MAX_UNCOMPRESSED_BYTES:
        raise PermanentError(
            f"{kind} file inflates to {total / 1e6:.0f} MB, over the {MAX_UNCOMPRESSED_BYTES // 2**20} MB limit"
        )


def rows_to_text(rows: Iterable[Sequence[object]], budget: list[int]) -> str:
    """Table rows as lines; when the first row reads as a header, every row is "Header: value | …".

    Labelling each value with its column keeps a row answerable on its own once chunks split the table.
    `budget` is a one-element list of cells still allowed (shared across the sheets of one workbook).
    """
    lines: list[str] = []
    header: list[str] | None = None
    for raw in rows:
        cells = [cell_text(c) for c in raw]
        while cells and not cells[-1]:
            cells.pop()
        if not any(cells):
            continue
        budget[0] -= len(cells)
        if budget[0] < 0:
            lines.append(f"[… more rows not indexed: over {MAX_CELLS} cells]")
            break
        if header is None and len(lines) == 0 and _looks_like_header(cells):
            header = cells
            lines.append(" | ".join(cells))
            continue
        if header is not None:
            labelled = [
                f"{header[i]}: {value}" if i < len(header) and header[i] else value
                for i, value in enumerate(cells)
                if value
            ]
            lines.append(" | ".join(labelled))
        else:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _looks_like_header(cells: list[str]) -> bool:
    filled = [c for c in cells if c]
    return len(filled) >= 2 and all(not _is_number(c) for c in filled) and len(set(filled)) == len(filled)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def missing_extra(feature: str, extra: str) -> UnsupportedError:
    """A file type whose reader is an optional extra that is not installed: counted as unsupported."""
    return UnsupportedError(
        f"reading {feature} needs the '{extra}' extra",
        hint=f"pip install 'ragcli[{extra}]'",
    )
