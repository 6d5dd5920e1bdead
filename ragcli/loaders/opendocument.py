"""OpenDocument (.odt, .ods, .odp) read straight from content.xml with the standard library.

odfpy, the one dedicated library, has had no release since 2020 and would add nothing over walking
four element types: headings and paragraphs (text), tables (sheets, by name), and pages (slides, by
number). The zip passes `open_zip`'s bounds first; an encrypted package is reported as such.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from ragcli.errors import PermanentError
from ragcli.loaders.blocks import MAX_CELLS, Block, HeadingPath, document_from_blocks, open_zip, rows_to_text
from ragcli.models import ParsedDocument

log = logging.getLogger(__name__)

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_H, _P, _S, _TAB, _BREAK = (f"{{{_NS['text']}}}{t}" for t in ("h", "p", "s", "tab", "line-break"))
_LIST, _TABLE = f"{{{_NS['text']}}}list", f"{{{_NS['table']}}}table"
_ROW, _CELL = f"{{{_NS['table']}}}table-row", f"{{{_NS['table']}}}table-cell"
_COVERED = f"{{{_NS['table']}}}covered-table-cell"
# A spreadsheet's trailing empty columns are one cell "repeated" up to 16384 times: never expand those.
_MAX_REPEAT = 256


class OpenDocumentLoader:
    name = "opendocument"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        kind = f"OpenDocument ({path.suffix.lower()})"
        archive = open_zip(data, kind)
        names = set(archive.namelist())
        if "META-INF/manifest.xml" in names and b"encryption-data" in archive.read("META-INF/manifest.xml"):
            raise PermanentError(f"encrypted {kind} file: password required")
        if "content.xml" not in names:
            raise PermanentError(f"corrupt {kind} file: no content.xml in the package")
        try:
            root = ET.fromstring(archive.read("content.xml"))
            meta_title = _meta_title(archive.read("meta.xml")) if "meta.xml" in names else None
        except (ET.ParseError, OSError, ValueError) as exc:
            raise PermanentError(f"corrupt {kind} file: {exc}") from exc
        body = root.find("office:body", _NS)
        if body is None or len(body) == 0:
            raise PermanentError(f"corrupt {kind} file: no document body")
        blocks = list(_blocks(body[0]))
        return document_from_blocks(blocks, meta_title, path.name)


def _meta_title(meta_xml: bytes) -> str | None:
    title = ET.fromstring(meta_xml).find(".//dc:title", _NS)
    return title.text if title is not None and title.text else None


def _blocks(content: ET.Element) -> Iterator[Block]:
    tag = content.tag.split("}")[1]
    if tag == "spreadsheet":
        budget = [MAX_CELLS]
        for table in content.iter(_TABLE):
            yield Block(rows_to_text(_rows(table), budget), heading=table.get(f"{{{_NS['table']}}}name"))
    elif tag == "presentation":
        for number, page in enumerate(content.iter(f"{{{_NS['draw']}}}page"), start=1):
            paragraphs = [t for t in (_text(e) for e in page.iter() if e.tag in (_P, _H)) if t]
            if not paragraphs:
                continue
            yield Block("\n".join(paragraphs), heading=page.get(f"{{{_NS['draw']}}}name"), page=number)
    else:
        yield from _text_blocks(content, HeadingPath())


def _text_blocks(parent: ET.Element, headings: HeadingPath) -> Iterator[Block]:
    for child in parent:
        if child.tag == _H:
            text = _text(child)
            if text:
                headings.enter(int(child.get(f"{{{_NS['text']}}}outline-level", "1") or 1), text)
                yield Block(text, headings.current)
        elif child.tag == _P:
            yield Block(_text(child), headings.current)
        elif child.tag == _TABLE:
            yield Block(rows_to_text(_rows(child), [MAX_CELLS]), headings.current)
        else:  # lists, sections, frames: their paragraphs belong to the same flow
            yield from _text_blocks(child, headings)


def _rows(table: ET.Element) -> Iterator[list[str]]:
    for row in table.iter(_ROW):
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (_CELL, _COVERED):
                continue
            text = " ".join(t for t in (_text(p) for p in cell.iter(_P)) if t)
            repeat = int(cell.get(f"{{{_NS['table']}}}number-columns-repeated", "1") or 1)
            cells.extend([text] * (min(repeat, _MAX_REPEAT) if text else min(repeat, 1)))
        if any(cells):
            yield cells


def _text(element: ET.Element) -> str:
    """A paragraph's text, with <text:s/>, <text:tab/> and <text:line-break/> as the spacing they mean."""
    parts: list[str] = [element.text or ""]
    for child in element:
        if child.tag == _S:
            parts.append(" " * int(child.get(f"{{{_NS['text']}}}c", "1") or 1))
        elif child.tag == _TAB:
            parts.append("\t")
        elif child.tag == _BREAK:
            parts.append("\n")
        else:
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts).strip()
