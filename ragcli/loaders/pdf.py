"""PDF via pypdf: one section per page that has text, `page` numbered from 1.

A PDF that cannot be read whole is a failure, never a partial document: encrypted with a password,
corrupt, a page pypdf cannot parse, no text layer at all, or extraction slower than the time budget.

Pages without a text layer (scans) are read through OCR (`ragcli.loaders.ocr`) unless `mode` is "off";
"force" OCRs every page that has images. The document's metadata then says `ocr: true` and which pages.

pypdf reports the repairs it makes to malformed files through its loggers and, rarely, through
`warnings`. Neither belongs on the user's screen: log records are re-emitted here at DEBUG, and warnings
are caught per document (under a lock, because `warnings.catch_warnings` swaps process-wide state and
two threads interleaving it would leave the filters of one of them installed for good).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.errors import PermanentError
from ragcli.loaders.text import EMPTY_DOCUMENT, first_line_title, normalize_newlines, shorten
from ragcli.models import ParsedDocument, Section

if TYPE_CHECKING:
    from pypdf import PdfReader

    from ragcli.loaders.ocr import OcrEngine

log = logging.getLogger(__name__)

NO_TEXT = "no extractable text (scanned PDF without a text layer?)"
NO_TEXT_NO_OCR = (
    "no extractable text (scanned PDF without a text layer?) and no OCR engine is installed: "
    "pip install 'ragcli[ocr]' or apt-get install tesseract-ocr"
)
PASSWORD_REQUIRED = "encrypted PDF: password required"
DEFAULT_TIME_BUDGET_S = 600.0

_PAGE_SEPARATOR = "\n\n"
# Substrings of pypdf's messages, and what they mean for someone who has never seen a PDF's insides.
_PLAIN_WORDS = (
    ("EOF marker not found", "the file is cut off or is not a PDF: no end-of-file marker"),
    ("startxref not found", "no cross-reference table, and no document catalog to rebuild one from"),
    ("Stream has ended unexpectedly", "data ends unexpectedly; the file is cut off or damaged"),
    ("Could not read malformed PDF file", "the file is damaged beyond repair"),
)
_pypdf_lock = threading.Lock()
_current_source = "?"


class PdfLoader:
    name = "pdf"

    def __init__(self, time_budget_s: float = DEFAULT_TIME_BUDGET_S, mode: str = "auto") -> None:
        self.time_budget_s = time_budget_s
        self.mode = mode

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        global _current_source
        if not data.strip():
            raise PermanentError(EMPTY_DOCUMENT)
        if b"%PDF-" not in data[:1024]:
            raise PermanentError("not a PDF file (it does not start with a %PDF- header)")
        _route_pypdf_logging()
        with _pypdf_lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _current_source = str(path)
            try:
                return self._load(path, data)
            finally:
                _current_source = "?"
                for warning in caught:
                    log.debug("%s: pypdf warning: %s", path, warning.message)

    def _load(self, path: Path, data: bytes) -> ParsedDocument:
        deadline = time.monotonic() + self.time_budget_s
        reader = _open(data)
        page_texts = _extract_pages(reader, deadline, self.time_budget_s)
        ocr_pages = self._ocr(reader, page_texts, deadline) if self.mode != "off" else []
        if ocr_pages:
            replaced = dict(page_texts) | dict(ocr_pages)
            page_texts = sorted(replaced.items())
        parts: list[str] = []
        sections: list[Section] = []
        offset = 0
        for number, page_text in page_texts:
            if parts:
                parts.append(_PAGE_SEPARATOR)
                offset += len(_PAGE_SEPARATOR)
            parts.append(page_text)
            sections.append(Section(offset, offset + len(page_text), page=number))
            offset += len(page_text)
        if not parts:
            raise PermanentError(NO_TEXT if self.mode == "off" or _ocr_engine() else NO_TEXT_NO_OCR)
        text = "".join(parts)
        title = _metadata_title(reader) or first_line_title(text) or path.name
        metadata = {"pages": str(len(reader.pages))}
        if ocr_pages:
            metadata |= {"ocr": "true", "ocr_pages": ",".join(str(n) for n, _ in ocr_pages)}
            log.info("%s: %d page(s) read through OCR", path, len(ocr_pages))
        return ParsedDocument(text=text, title=shorten(title), sections=sections, metadata=metadata)

    def _ocr(self, reader: PdfReader, page_texts: list[tuple[int, str]], deadline: float) -> list[tuple[int, str]]:
        """(page number, OCR text) for the pages to OCR: those without text, or all under "force"."""
        from ragcli.loaders.ocr import page_images, read_images

        with_text = {number for number, _ in page_texts}
        wanted = [n for n in range(1, len(reader.pages) + 1) if self.mode == "force" or n not in with_text]
        engine = _ocr_engine() if wanted else None
        if engine is None:
            return []
        found: list[tuple[int, str]] = []
        for number in wanted:
            images = page_images(reader, number - 1)
            if not images:
                continue
            text = _clean(read_images(engine, images, deadline, f"page {number} of {len(reader.pages)}"))
            if text:
                found.append((number, text))
        return found


def _ocr_engine() -> OcrEngine | None:
    from ragcli.loaders.ocr import get_ocr_engine

    return get_ocr_engine()


def _open(data: bytes) -> PdfReader:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
        except PdfReadError as exc:
            repaired = _with_trailer(data) if "startxref not found" in str(exc) else None
            if repaired is None:
                raise
            reader = PdfReader(io.BytesIO(repaired), strict=False)
        if reader.is_encrypted:
            _decrypt_with_empty_password(reader)
        len(reader.pages)  # parses the page tree, where damaged files usually give up
    except PermanentError:
        raise
    except DependencyError as exc:
        raise _aes_unsupported() from exc
    except Exception as exc:  # pypdf parses untrusted bytes; any of its failures means "corrupt"
        raise PermanentError(f"corrupt PDF: {_plain(exc)}") from exc
    return reader


_CATALOG = re.compile(rb"(\d+)\s+(\d+)\s+obj\s*<<[^>]*?/Type\s*/Catalog")


def _with_trailer(data: bytes) -> bytes | None:
    """A whole PDF (it ends with %%EOF) whose cross-reference table and trailer are missing: some
    writers leave them out. Appending a trailer that names the catalog lets pypdf (strict=False)
    rebuild the table by scanning the objects. None when the file is cut off or has no catalog."""
    if b"%%EOF" not in data[-1024:]:
        return None
    match = _CATALOG.search(data)
    if match is None:
        return None
    root = match.group(1) + b" " + match.group(2)
    return data + b"\ntrailer\n<< /Root " + root + b" R >>\nstartxref\n0\n%%EOF\n"


def _decrypt_with_empty_password(reader: PdfReader) -> None:
    """Many PDFs are encrypted only to restrict printing; they open with an empty user password."""
    from pypdf import PasswordType
    from pypdf.errors import DependencyError

    try:
        result = reader.decrypt("")
    except DependencyError:
        raise
    except Exception as exc:
        raise PermanentError(f"encrypted PDF: cannot decrypt ({_plain(exc)})") from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise PermanentError(
            PASSWORD_REQUIRED,
            hint="Save a copy without the password (e.g. `qpdf --decrypt --password=… in.pdf out.pdf`).",
        )


def _aes_unsupported() -> PermanentError:
    return PermanentError(
        "encrypted PDF: its AES encryption needs the 'cryptography' package",
        hint="pip install cryptography (or save a copy of the PDF without encryption).",
    )


def _extract_pages(reader: PdfReader, deadline: float, budget: float) -> list[tuple[int, str]]:
    """(page number, text) of every page with text. Raises PermanentError naming a failing page."""
    from pypdf.errors import DependencyError

    pages: list[tuple[int, str]] = []
    total = len(reader.pages)
    for index in range(total):
        number = index + 1
        if time.monotonic() > deadline:
            raise PermanentError(
                f"PDF text extraction took longer than {budget:.0f} s (stopped at page {number} of {total})"
            )
        try:
            raw = reader.pages[index].extract_text() or ""
        except DependencyError as exc:
            raise _aes_unsupported() from exc
        except Exception as exc:  # see _open: a broken page is a broken document
            raise PermanentError(f"corrupt PDF: page {number} cannot be read: {_plain(exc)}") from exc
        text = _clean(raw)
        if text:
            pages.append((number, text))
    return pages


def _clean(raw: str) -> str:
    # NULs and stray control codes come from fonts without a usable character map.
    text = normalize_newlines(raw).replace("\x00", "")
    return text.strip()


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a damaged info dictionary must not cost us the text
        log.debug("unreadable PDF metadata", exc_info=True)
        return None
    if not isinstance(title, str):
        return None
    title = " ".join(title.replace("\x00", "").split())
    return title or None


def _plain(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    for needle, plain in _PLAIN_WORDS:
        if needle in message:
            return plain
    return message


class _DemoteToDebug(logging.Handler):
    """Re-emits pypdf's warnings about files it repaired as DEBUG records of this module."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        log.debug("%s: pypdf: %s", _current_source, message)


def _route_pypdf_logging() -> None:
    pypdf_logger = logging.getLogger("pypdf")
    if any(isinstance(handler, _DemoteToDebug) for handler in pypdf_logger.handlers):
        return
    pypdf_logger.addHandler(_DemoteToDebug())
    pypdf_logger.propagate = False
