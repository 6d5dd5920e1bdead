"""Offline OCR for scanned PDF pages and images (png, jpg, tiff, bmp, gif, webp).

Two engines, both fully offline: tesseract (Debian's `tesseract-ocr` binary, run as a subprocess; the
preferred one) and rapidocr (onnxruntime; its wheel ships the detection and recognition models; the
`ocr` extra, the fallback where no tesseract binary can be installed). Tesseract was preferred by
measurement (docs/benchmarks.md, "Document formats and OCR"): better word recall on rendered text, about
3x faster per page here, and no 190 MB opencv wheel. Neither downloads anything at run time.

`[ingest] ocr`: "auto" reads PDF pages that have no text layer and images; "force" also replaces the
text layer of every PDF page by what OCR reads (for PDFs whose text layer is garbage); "off" never runs
OCR (images are then unsupported). Each page or image has a time budget; a document whose pages run over
the PDF loader's budget fails with that reason instead of hanging the ingest.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ragcli.errors import PermanentError, UnsupportedError
from ragcli.loaders.blocks import Block, document_from_blocks, missing_extra
from ragcli.models import ParsedDocument

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

OCR_MODES = ("auto", "off", "force")
PAGE_BUDGET_S = 120.0
# Pillow's own bomb check warns at 89 M pixels and fails at 179 M; a scanned A4 page at 600 dpi is 35 M.
MAX_IMAGE_PIXELS = 60_000_000
# Recognition gains nothing above this size and the detector's time grows with the area.
MAX_SIDE = 3000
MIN_SIDE = 16
MAX_FRAMES = 200
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
NO_OCR_ENGINE_HINT = "pip install 'ragcli[ocr]' (rapidocr) or apt-get install tesseract-ocr"


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image) -> str: ...


class RapidOcrEngine:
    name = "rapidocr"
    _lock = threading.Lock()

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        # Its own logger prints every call's timing at INFO; that is not the user's business.
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        # Detection at most 1600 px on the long side (the default scales the *short* side up to 736 px, so
        # a 300-dpi page is detected at full size: 4× slower, no better); pages are scanned upright, so
        # the 180° orientation classifier is skipped.
        self._engine = RapidOCR(det_limit_type="max", det_limit_side_len=1600, use_cls=False)

    def read(self, image: Image) -> str:
        import numpy as np

        with self._lock:
            result, _ = self._engine(np.asarray(image.convert("RGB")))
        if not result:
            return ""
        return "\n".join(str(line[1]).strip() for line in result if str(line[1]).strip())


class TesseractEngine:
    name = "tesseract"

    def __init__(self, languages: str = "eng") -> None:
        binary = shutil.which("tesseract")
        if binary is None:
            raise FileNotFoundError("tesseract")
        self.binary = binary
        self.languages = languages

    def read(self, image: Image) -> str:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        try:
            done = subprocess.run(
                [self.binary, "stdin", "stdout", "-l", self.languages, "--psm", "3"],
                input=buffer.getvalue(),
                capture_output=True,
                timeout=PAGE_BUDGET_S,
                # OpenMP threads fight over a loaded machine's cores; one thread is faster there.
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PermanentError(f"OCR of one page took longer than {PAGE_BUDGET_S:.0f} s") from exc
        if done.returncode != 0:
            log.debug("tesseract failed: %s", done.stderr.decode("utf-8", "replace")[:300])
            return ""
        return done.stdout.decode("utf-8", "replace")


_engine: OcrEngine | None = None
_engine_checked = False
_engine_lock = threading.Lock()


def get_ocr_engine() -> OcrEngine | None:
    """The preferred installed engine (built once per process), or None if neither is installed."""
    global _engine, _engine_checked
    with _engine_lock:
        if not _engine_checked:
            _engine_checked = True
            for factory in (TesseractEngine, RapidOcrEngine):
                try:
                    _engine = factory()
                    break
                except (ImportError, FileNotFoundError, OSError) as exc:
                    log.debug("OCR engine %s unavailable: %s", factory.name, exc)
        return _engine


def prepare(image: Image) -> Image:
    """RGB/grey, and scaled so the longest side is at most MAX_SIDE pixels."""
    if image.mode not in ("RGB", "L"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's advice on palette transparency, irrelevant here
            image = image.convert("RGBA" if image.mode == "P" else image.mode).convert("RGB")
    longest = max(image.size)
    if longest > MAX_SIDE:
        scale = MAX_SIDE / longest
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    return image


def read_images(engine: OcrEngine, images: list[Image], deadline: float, what: str) -> str:
    texts = []
    for image in images:
        if min(image.size) < MIN_SIDE:
            continue  # rules, bullets and spacer images
        if time.monotonic() > deadline:
            raise PermanentError(f"OCR took longer than the time budget (stopped at {what})")
        started = time.monotonic()
        texts.append(engine.read(prepare(image)).strip())
        log.debug("OCR of %s with %s: %.2f s", what, engine.name, time.monotonic() - started)
    return "\n".join(t for t in texts if t)


def page_images(reader: Any, index: int) -> list[Image]:
    """The images drawn on a PDF page, decoded by pypdf through Pillow; undecodable ones are skipped."""
    images: list[Image] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for file in reader.pages[index].images:
                try:
                    images.append(file.image)
                except Exception:  # an image filter pypdf/Pillow cannot decode
                    log.debug("page %d: undecodable image", index + 1, exc_info=True)
        except Exception:
            log.debug("page %d: cannot list images", index + 1, exc_info=True)
    return images


class ImageLoader:
    """An image file is a page to OCR (each frame of a multi-page TIFF is a page)."""

    name = "image"

    def __init__(self, mode: str = "auto", time_budget_s: float = 600.0) -> None:
        self.mode = mode
        self.time_budget_s = time_budget_s

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        if self.mode == "off":
            raise UnsupportedError('images are read through OCR, and [ingest] ocr is "off"')
        if not data:
            raise PermanentError("empty image file")
        try:
            from PIL import Image
        except ImportError as exc:
            raise missing_extra("images (OCR)", "ocr") from exc
        engine = get_ocr_engine()
        if engine is None:
            raise UnsupportedError("reading images needs an OCR engine", hint=NO_OCR_ENGINE_HINT)
        deadline = time.monotonic() + self.time_budget_s
        blocks = [
            Block(
                read_images(engine, [frame], deadline, f"frame {number}"), page=number if number > 1 else None
            )
            for number, frame in _frames(Image, data)
        ]
        if not any(b.text.strip() for b in blocks):
            raise PermanentError("no text found in the image (OCR read nothing)")
        return document_from_blocks(
            blocks, None, path.name, {"ocr": "true", "ocr_engine": engine.name}, first_line_title=False
        )


def _frames(image_module: Any, data: bytes) -> Iterator[tuple[int, Image]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", image_module.DecompressionBombWarning)
        try:
            image = image_module.open(io.BytesIO(data))  # reads the header only
            if image.width * image.height > MAX_IMAGE_PIXELS:
                # Checked here rather than through Pillow's process-wide limit, which pypdf shares.
                raise PermanentError(
                    f"image over {MAX_IMAGE_PIXELS // 1_000_000} M pixels: not read "
                    f"({image.width}x{image.height})"
                )
            for number in range(1, min(getattr(image, "n_frames", 1), MAX_FRAMES) + 1):
                image.seek(number - 1)
                image.load()
                yield number, image.copy()
        except (image_module.DecompressionBombError, image_module.DecompressionBombWarning) as exc:
            raise PermanentError(
                f"image over {MAX_IMAGE_PIXELS // 1_000_000} M pixels: not read ({exc})"
            ) from exc
        except PermanentError:
            raise
        except Exception as exc:  # Pillow on untrusted bytes
            raise PermanentError(f"corrupt or unreadable image: {type(exc).__name__}: {exc}"[:300]) from exc
