"""Loaders turn one file's bytes into visible text with a title and sections (headings or pages).

`get_loader(path)` picks a loader by file suffix (or, for extension-less files such as Makefile and
LICENSE, by name) and imports its backend (pypdf, python-docx, …) only then; it returns None for a type
ragcli does not read, which the pipeline counts as unsupported. A loader raises `PermanentError` for a
file it should read but cannot (corrupt, encrypted, empty, undecodable, over a size bound) and
`UnsupportedError` when the reader is an optional extra that is not installed (counted as unsupported,
with the extra's name).

Audio, video, archives (.zip, .tar, .gz, …), legacy binary Office files (.doc, .xls, .ppt) and other
binaries have no loader on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ragcli.loaders.code import CODE_NAMES, CODE_SUFFIXES
from ragcli.loaders.ocr import IMAGE_SUFFIXES
from ragcli.models import ParsedDocument


class Loader(Protocol):
    name: str
    # A loader whose output changed (a fix in what text it keeps) raises its `version` (1 when absent), so
    # the next ingest parses its documents again although their bytes did not change (`parse_key`).

    def load(self, path: Path, data: bytes) -> ParsedDocument: ...


def parse_key(content_hash: str, loader: object) -> str:
    """What the index records as a document's hash: its bytes' hash, with the loader's version when that
    is above 1. An upgrade that fixes a loader so re-parses exactly that loader's documents once; chunks
    whose text did not change keep their vectors (the embedding cache is keyed by chunk text)."""
    version = int(getattr(loader, "version", 1))
    return content_hash if version <= 1 else f"{content_hash}+{getattr(loader, 'name', 'loader')}.v{version}"


# suffix -> (module, class name); modules are imported only when a file of that type is met.
_REGISTRY: dict[str, tuple[str, str]] = {
    ".txt": ("ragcli.loaders.text", "TextLoader"),
    ".text": ("ragcli.loaders.text", "TextLoader"),
    ".md": ("ragcli.loaders.markdown", "MarkdownLoader"),
    ".markdown": ("ragcli.loaders.markdown", "MarkdownLoader"),
    ".rst": ("ragcli.loaders.rst", "RstLoader"),
    ".html": ("ragcli.loaders.html", "HtmlLoader"),
    ".htm": ("ragcli.loaders.html", "HtmlLoader"),
    ".xhtml": ("ragcli.loaders.html", "HtmlLoader"),
    ".pdf": ("ragcli.loaders.pdf", "PdfLoader"),
    ".docx": ("ragcli.loaders.office", "DocxLoader"),
    ".docm": ("ragcli.loaders.office", "DocxLoader"),
    ".pptx": ("ragcli.loaders.office", "PptxLoader"),
    ".pptm": ("ragcli.loaders.office", "PptxLoader"),
    ".xlsx": ("ragcli.loaders.office", "XlsxLoader"),
    ".xlsm": ("ragcli.loaders.office", "XlsxLoader"),
    ".odt": ("ragcli.loaders.opendocument", "OpenDocumentLoader"),
    ".ods": ("ragcli.loaders.opendocument", "OpenDocumentLoader"),
    ".odp": ("ragcli.loaders.opendocument", "OpenDocumentLoader"),
    ".epub": ("ragcli.loaders.ebook", "EpubLoader"),
    ".eml": ("ragcli.loaders.mail", "EmlLoader"),
    ".msg": ("ragcli.loaders.mail", "MsgLoader"),
    ".rtf": ("ragcli.loaders.data", "RtfLoader"),
    ".csv": ("ragcli.loaders.data", "CsvLoader"),
    ".tsv": ("ragcli.loaders.data", "CsvLoader"),
    ".json": ("ragcli.loaders.data", "JsonLoader"),
    ".ndjson": ("ragcli.loaders.data", "JsonLoader"),
    ".jsonl": ("ragcli.loaders.data", "JsonLoader"),
    ".xml": ("ragcli.loaders.data", "XmlLoader"),
    **{suffix: ("ragcli.loaders.code", "CodeLoader") for suffix in CODE_SUFFIXES},
    **{suffix: ("ragcli.loaders.ocr", "ImageLoader") for suffix in IMAGE_SUFFIXES},
}
# Loaders whose behaviour depends on the [ingest] ocr setting get it as their `mode`.
_OCR_AWARE = frozenset({"PdfLoader", "ImageLoader"})

_instances: dict[tuple[str, str], Loader] = {}


def supported_suffixes() -> list[str]:
    return sorted(_REGISTRY)


def get_loader(path: Path, ocr: str = "auto") -> Loader | None:
    """The loader for `path`'s type; `ocr` is the [ingest] ocr mode ("auto", "off" or "force")."""
    suffix = path.suffix.lower()
    spec = _REGISTRY.get(suffix)
    if spec is None and not suffix and path.name.lower() in CODE_NAMES:
        spec = ("ragcli.loaders.code", "CodeLoader")
    if spec is None:
        return None
    module_name, class_name = spec
    key = (class_name, ocr if class_name in _OCR_AWARE else "")
    if key not in _instances:
        import importlib

        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
        _instances[key] = cls(mode=ocr) if class_name in _OCR_AWARE else cls()
    return _instances[key]
