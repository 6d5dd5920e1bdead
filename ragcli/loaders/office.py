"""Office Open XML: .docx (python-docx), .pptx (python-pptx), .xlsx/.xlsm (openpyxl).

Citations point where the text is: a Word section's heading path, a slide's number (as `page`, with its
title as heading), a worksheet's name (as heading). Tables keep their rows, cells joined by " | ".

Every file passes `open_zip`'s bounds first (an Office file is a zip: no zip bombs), and any exception a
parser raises on those untrusted bytes is a corrupt file, never a crash. The libraries' own warnings
(openpyxl on unsupported extensions) are caught per document under a lock, as in the PDF loader.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ragcli.errors import PermanentError
from ragcli.loaders.blocks import (
    MAX_CELLS,
    Block,
    HeadingPath,
    cell_text,
    document_from_blocks,
    open_zip,
    rows_to_text,
)
from ragcli.models import ParsedDocument

log = logging.getLogger(__name__)
_warnings_lock = threading.Lock()


def parse_guarded(kind: str, path: Path, parse: Callable[[], ParsedDocument]) -> ParsedDocument:
    """Runs a third-party parser: its warnings go to the debug log, its exceptions become 'corrupt'."""
    with _warnings_lock, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return parse()
        except PermanentError:
            raise
        except Exception as exc:  # untrusted bytes: whatever the parser trips on means a damaged file
            log.debug("%s: %s parser failed", path, kind, exc_info=True)
            raise PermanentError(f"corrupt {kind} file: {type(exc).__name__}: {exc}"[:300]) from exc
        finally:
            for warning in caught:
                log.debug("%s: %s warning: %s", path, kind, warning.message)


class DocxLoader:
    name = "docx"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        open_zip(data, "Word (.docx)")
        return parse_guarded("Word (.docx)", path, lambda: _load_docx(path, data))


def _load_docx(path: Path, data: bytes) -> ParsedDocument:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    headings = HeadingPath()
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.append(Block(_table_text(item), headings.current))
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _heading_level(item.style.name if item.style is not None else "")
        if level is not None:
            headings.enter(level, text)
        blocks.append(Block(text, headings.current))
    title = document.core_properties.title
    return document_from_blocks(blocks, title, path.name)


def _heading_level(style_name: str) -> int | None:
    """'Title' is level 0, 'Heading 2' level 2; any other style is body text."""
    name = style_name.strip().lower()
    if name == "title":
        return 0
    if name.startswith("heading "):
        digits = name.removeprefix("heading ").strip()
        return int(digits) if digits.isdigit() else None
    return None


def _table_text(table: Any) -> str:
    rows = []
    try:
        for row in table.rows:
            cells: list[str] = []
            for cell in row.cells:
                text = cell_text(cell.text)
                if not cells or cells[-1] != text:  # a merged cell repeats itself once per grid column
                    cells.append(text)
            rows.append(cells)
    except (ValueError, IndexError):
        # python-docx's grid model rejects some merged layouts Word itself accepts; read the cells'
        # text straight from the XML instead.
        rows = [[_xml_text(tc) for tc in tr.iterchildren(_W_TC)] for tr in table._tbl.iterchildren(_W_TR)]
    return rows_to_text(rows, [MAX_CELLS])


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W_TR, _W_TC, _W_T = f"{_W}tr", f"{_W}tc", f"{_W}t"


def _xml_text(element: Any) -> str:
    return cell_text("".join(t.text or "" for t in element.iter(_W_T)))


class PptxLoader:
    name = "pptx"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        open_zip(data, "PowerPoint (.pptx)")
        return parse_guarded("PowerPoint (.pptx)", path, lambda: _load_pptx(path, data))


def _load_pptx(path: Path, data: bytes) -> ParsedDocument:
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(data))
    blocks: list[Block] = []
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        heading = title or f"Slide {number}"
        texts = list(_shape_texts(slide.shapes))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                texts.append(f"Notes: {notes}")
        blocks.append(Block("\n".join(t for t in texts if t.strip()), heading, number))
    metadata = {"slides": str(len(presentation.slides))}
    return document_from_blocks(blocks, presentation.core_properties.title, path.name, metadata)


def _shape_texts(shapes: Any) -> Iterator[str]:
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:  # a group
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            yield _table_text(shape.table)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text.strip()


class XlsxLoader:
    name = "xlsx"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        open_zip(data, "Excel (.xlsx)")
        return parse_guarded("Excel (.xlsx)", path, lambda: _load_xlsx(path, data))


def _load_xlsx(path: Path, data: bytes) -> ParsedDocument:
    import openpyxl

    # read_only streams rows instead of building every cell object; data_only gives cached values,
    # not formulas (a reader asks what a cell says, not how it was computed).
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        budget = [MAX_CELLS]
        blocks = [
            Block(rows_to_text(sheet.iter_rows(values_only=True), budget), heading=sheet.title)
            for sheet in workbook.worksheets
        ]
        title = workbook.properties.title
        metadata = {"sheets": str(len(workbook.worksheets))}
    finally:
        workbook.close()
    return document_from_blocks(blocks, title, path.name, metadata, first_line_title=False)
