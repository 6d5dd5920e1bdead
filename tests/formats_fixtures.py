"""Generators of Office, OpenDocument, e-mail, e-book and scanned-page fixtures, written into a test's tmp
folder with the same libraries ragcli reads them with (python-docx, python-pptx, openpyxl, Pillow), so
no binary fixture lives in the repository. Each writes facts that only that file states."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

DOCX_FACT = "The Kestrel valve must be torqued to 47 newton-metres before the pressure test."
PPTX_FACT = "Quarterly churn fell to 3.8 percent after the loyalty programme launched."
XLSX_FACT = ("Osprey", "Lisbon", 1312)  # warehouse, city, pallets
EML_FACT = "The Heron rollout is postponed to the ninth of March because the vendor missed the audit."
ATTACHMENT_FACT = "The attached Ibis contract renews every twenty-two months."
SCAN_FACT = "The lighthouse keeper logs the barometer reading every four hours."


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Maintenance Manual"
    document.add_heading("Maintenance Manual", level=0)
    document.add_heading("Valves", level=1)
    document.add_paragraph("Valves are inspected weekly.")
    document.add_heading("Kestrel valve", level=2)
    document.add_paragraph(DOCX_FACT)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Part", "Interval"
    table.cell(1, 0).text, table.cell(1, 1).text = "Gasket", "Every 90 days"
    document.add_heading("Pumps", level=1)
    document.add_paragraph("Pumps are flushed monthly.")
    document.save(str(path))
    return path


def write_pptx(path: Path) -> Path:
    from pptx import Presentation

    presentation = Presentation()
    layout = presentation.slide_layouts[1]  # title and content
    for title, body in (
        ("Agenda", "Results, retention, next steps"),
        ("Retention", PPTX_FACT),
        ("Next steps", "Hire two analysts"),
    ):
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    presentation.slides[2].notes_slide.notes_text_frame.text = "Speaker note: budget approved in May."
    presentation.save(str(path))
    return path


def write_xlsx(path: Path) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    summary = workbook.active
    summary.title = "Summary"
    summary.append(["Region", "Revenue"])
    summary.append(["North", 1200])
    stock = workbook.create_sheet("Warehouse stock")
    stock.append(["Warehouse", "City", "Pallets"])
    stock.append(list(XLSX_FACT))
    stock.append(["Plover", "Porto", 87])
    workbook.save(str(path))
    return path


def write_eml(path: Path, attachment: Path | None = None) -> Path:
    message = EmailMessage()
    message["Subject"] = "Heron rollout schedule"
    message["From"] = "Dana Ops <dana@example.org>"
    message["To"] = "team@example.org"
    message["Date"] = "Tue, 03 Feb 2026 09:15:00 +0000"
    message.set_content(f"Hello team,\n\n{EML_FACT}\n\nDana\n")
    if attachment is not None:
        message.add_attachment(
            attachment.read_bytes(),
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename=attachment.name,
        )
    message.add_attachment(
        b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="blob.bin"
    )
    path.write_bytes(bytes(message))
    return path


def attachment_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Ibis contract", level=1)
    document.add_paragraph(ATTACHMENT_FACT)
    document.save(str(path))
    return path


def text_image(text: str, size: tuple[int, int] = (1700, 400)):  # -> PIL.Image.Image
    """Black text on white, large enough for any OCR engine (a 300-dpi scan of 12-pt type)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    y = 60
    for line in _wrap(text, 60):
        draw.text((60, y), line, fill=0, font=font)
        y += 70
    return image


def write_scanned_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF of page images only (no text layer), as a scanner writes it."""
    images = [text_image(page) for page in pages]
    images[0].save(str(path), format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return path


def write_odt(path: Path) -> Path:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"><office:body><office:text>'
        '<text:h text:outline-level="1">Field guide</text:h><text:p>Intro.</text:p>'
        '<text:h text:outline-level="2">Owls</text:h><text:p>Barn owls<text:s text:c="2"/>hunt at dusk.</text:p>'
        "</office:text></office:body></office:document-content>"
    )
    return write_zip(path, {"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": content})


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def zip_bomb(path: Path, inner: str = "word/document.xml", megabytes: int = 40) -> Path:
    """A small zip whose one member inflates to `megabytes` of zeros (ratio ~1000:1)."""
    return write_zip(path, {"[Content_Types].xml": "<Types/>", inner: b"\x00" * (megabytes * 1024 * 1024)})


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines
