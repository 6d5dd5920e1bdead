"""Data files as text: CSV/TSV (stdlib csv), JSON and NDJSON (stdlib json), XML (stdlib ElementTree),
and RTF (striprtf).

A table row reads "Header: value | Header: value" when the file has a header row, so a chunk holding a
row answers a question about it. JSON becomes one "key.path: value" line per scalar; the records of a
top-level array (or of NDJSON) are separated by blank lines. Sizes are bounded by `MAX_CELLS`; nesting
deeper than the JSON parser allows is a failure with that reason, never a crash.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from ragcli.errors import PermanentError
from ragcli.loaders.blocks import MAX_CELLS, Block, cell_text, document_from_blocks, rows_to_text
from ragcli.loaders.text import EMPTY_DOCUMENT, decode_document, require_text
from ragcli.models import ParsedDocument

_SNIFF_CHARS = 8192


class CsvLoader:
    name = "csv"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        text, metadata = decode_document(path, data)
        require_text(text)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
        csv.field_size_limit(10 * 1024 * 1024)
        try:
            rendered = rows_to_text(csv.reader(io.StringIO(text), delimiter=delimiter), [MAX_CELLS])
        except csv.Error as exc:
            raise PermanentError(f"malformed CSV: {exc}") from exc
        return document_from_blocks([Block(rendered)], None, path.name, metadata, first_line_title=False)


def _sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:_SNIFF_CHARS], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


class JsonLoader:
    name = "json"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        text, metadata = decode_document(path, data)
        require_text(text)
        if path.suffix.lower() in {".ndjson", ".jsonl"}:
            records = [
                _parse_json(line, path, number)
                for number, line in enumerate(text.splitlines(), 1)
                if line.strip()
            ]
        else:
            value = _parse_json(text, path, None)
            records = value if isinstance(value, list) else [value]
        budget = [MAX_CELLS]
        blocks: list[Block] = []
        for record in records:
            lines = list(_flatten(record, "", budget))
            blocks.append(Block("\n".join(lines)))
            if budget[0] <= 0:
                blocks.append(Block(f"[… more records not indexed: over {MAX_CELLS} values]"))
                break
        return document_from_blocks(blocks, None, path.name, metadata, first_line_title=False)


def _parse_json(text: str, path: Path, line: int | None) -> object:
    where = f" on line {line}" if line is not None else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PermanentError(f"malformed JSON{where}: {exc}") from exc
    except RecursionError as exc:
        raise PermanentError(f"JSON nested too deeply to read{where}") from exc


def _flatten(value: object, prefix: str, budget: list[int], depth: int = 0) -> Iterator[str]:
    if budget[0] <= 0:
        return
    if isinstance(value, dict) and depth < 64:
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key), budget, depth + 1)
    elif isinstance(value, list) and depth < 64:
        if value and all(not isinstance(v, dict | list) for v in value):
            budget[0] -= len(value)
            yield (
                f"{prefix}: " + ", ".join(cell_text(v) for v in value)
                if prefix
                else ", ".join(cell_text(v) for v in value)
            )
            return
        for index, inner in enumerate(value):
            yield from _flatten(inner, f"{prefix}[{index}]", budget, depth + 1)
    elif value is not None and value != "":
        budget[0] -= 1
        text = cell_text(value) if not isinstance(value, dict | list) else json.dumps(value)[:2000]
        yield f"{prefix}: {text}" if prefix else text


class XmlLoader:
    name = "xml"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        if not data.strip():
            raise PermanentError(EMPTY_DOCUMENT)
        try:
            # expat (≥ 2.4.1, bundled with CPython) refuses entity-expansion bombs itself.
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            root = _parse_redeclared(path, data, exc)
        lines = [" ".join(t.split()) for t in root.itertext()]
        text = "\n".join(line for line in lines if line)
        title_element = root.find(".//title")
        title = title_element.text if title_element is not None else None
        return document_from_blocks([Block(text)], title, path.name, first_line_title=False)


def _parse_redeclared(path: Path, data: bytes, first_error: ET.ParseError) -> ET.Element:
    """A file whose XML declaration names the wrong encoding (a UTF-16 file saying UTF-8): decode it
    by its byte order mark or detection, drop the declaration, parse the text."""
    text, _ = decode_document(path, data)
    without_declaration = re.sub(r"^\ufeff?\s*<\?xml[^>]*\?>", "", text)
    if without_declaration == text:
        raise PermanentError(f"malformed XML: {first_error}") from first_error
    try:
        return ET.fromstring(without_declaration)
    except ET.ParseError as exc:
        raise PermanentError(f"malformed XML: {exc}") from exc


class RtfLoader:
    name = "rtf"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        from striprtf.striprtf import rtf_to_text

        if not data.strip():
            raise PermanentError(EMPTY_DOCUMENT)
        if not data.lstrip().startswith(b"{\\rtf"):
            raise PermanentError("not an RTF file: it does not start with {\\rtf")
        try:
            # RTF is 7-bit; other characters come as \'hh escapes in the document's code page.
            text = rtf_to_text(data.decode("cp1252", "replace"), errors="replace")
        except Exception as exc:  # untrusted input to a regex-based converter
            raise PermanentError(f"corrupt RTF file: {exc}") from exc
        return document_from_blocks([Block(text)], None, path.name)
