"""OCR engines side by side on the scanned PDFs and images of ../shared (run from the repo root):

    python benchmarks/ocr_compare.py ../shared/corpora/pdfs ../shared/corpora/mixed-formats

For each PDF without a text layer (and each image), every page's embedded images go through rapidocr
(onnxruntime) and tesseract (Debian's binary); prints per file: seconds per page per engine, characters
found, and the first words each engine read, for judging accuracy by eye. Medians at the end.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from ragcli.errors import PermanentError
from ragcli.loaders.ocr import RapidOcrEngine, TesseractEngine, page_images, prepare
from ragcli.loaders.pdf import NO_TEXT, PdfLoader

IMAGES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def scanned_files(roots: list[Path]) -> list[Path]:
    loader = PdfLoader(time_budget_s=10, mode="off")
    found = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.suffix.lower() in IMAGES:
                found.append(path)
            elif path.suffix.lower() == ".pdf" and path.stat().st_size < 20e6:
                try:
                    loader.load(path, path.read_bytes())
                except PermanentError as exc:
                    if exc.message == NO_TEXT:
                        found.append(path)
    return found


KNOWN = [
    "The lighthouse keeper logs the barometer reading every four hours.",
    "Invoice 4471 was paid on 12 March 2024 by bank transfer to account DE89 3704.",
    "Section 7(b): tenants must give sixty days' written notice before leaving.",
]


def word_recall(truth: str, text: str) -> float:
    found = set(text.lower().split())
    words = truth.lower().split()
    return sum(w in found for w in words) / len(words)


def known_text_accuracy(engines: dict) -> None:
    """Word recall on rendered sentences of known text (Pillow, 44-px type ≈ 12 pt at 300 dpi)."""
    from tests.formats_fixtures import text_image

    for name, engine in engines.items():
        recalls, seconds = [], []
        for sentence in KNOWN:
            image = text_image(sentence)
            started = time.perf_counter()
            text = engine.read(prepare(image))
            seconds.append(time.perf_counter() - started)
            recalls.append(word_recall(sentence, text))
        print(f"known text  {name:9s} word recall {statistics.mean(recalls):.2f}  "
              f"median {statistics.median(seconds):.2f} s/image")


def main() -> None:
    from PIL import Image

    engines = {"rapidocr": RapidOcrEngine(), "tesseract": TesseractEngine()}
    known_text_accuracy(engines)
    per_page: dict[str, list[float]] = {name: [] for name in engines}
    chars: dict[str, int] = {name: 0 for name in engines}
    for path in scanned_files([Path(p) for p in sys.argv[1:]]):
        if path.suffix.lower() == ".pdf":
            import io

            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(path.read_bytes()), strict=False)
            if reader.is_encrypted:
                reader.decrypt("")
            images = [img for i in range(min(3, len(reader.pages))) for img in page_images(reader, i)]
            images = [img for img in images if min(img.size) >= 16]
        else:
            images = [Image.open(path)]
        print(f"\n== {path} ({len(images)} images)")
        for name, engine in engines.items():
            started = time.perf_counter()
            try:
                text = "\n".join(engine.read(prepare(img)) for img in images)
            except PermanentError as exc:
                text = f"[{exc.message}]"
            seconds = time.perf_counter() - started
            if images:
                per_page[name].append(seconds / len(images))
            chars[name] += len(text)
            print(
                f"  {name:9s} {seconds / max(len(images), 1):6.2f} s/img {len(text):6d} chars | "
                + " ".join(text.split())[:150]
            )
    print()
    for name in engines:
        print(f"{name}: median {statistics.median(per_page[name]):.2f} s/image, {chars[name]} chars in all")


if __name__ == "__main__":
    main()
