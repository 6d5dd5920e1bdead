"""Office, OpenDocument, e-mail, e-book, data-file, source-code and OCR loaders, on fixtures generated in
each test's tmp folder (tests/formats_fixtures.py), plus every format's broken, encrypted, empty and huge
cases: a failure with a plain reason, never a crash or a hang."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from ragcli.errors import PermanentError, UnsupportedError
from ragcli.loaders import blocks, get_loader
from ragcli.loaders.blocks import OLE_MAGIC
from ragcli.loaders.markdown import MarkdownLoader
from ragcli.models import ParsedDocument
from tests import formats_fixtures as fx


def load(path: Path, ocr: str = "auto") -> ParsedDocument:
    loader = get_loader(path, ocr)
    assert loader is not None, path
    return loader.load(path, path.read_bytes())


def section_of(doc: ParsedDocument, needle: str) -> tuple[str | None, int | None]:
    for section in doc.sections:
        if needle in doc.text[section.start : section.end]:
            return section.heading, section.page
    raise AssertionError(f"{needle!r} not in any section of {doc.title}")


def assert_sections_cover_text(doc: ParsedDocument) -> None:
    covered = "".join(doc.text[s.start : s.end] for s in doc.sections)
    assert "".join(covered.split()) == "".join(doc.text.split())


def test_docx_headings_become_the_section_path_and_tables_keep_their_rows(tmp_path: Path) -> None:
    doc = load(fx.write_docx(tmp_path / "manual.docx"))
    assert doc.title == "Maintenance Manual"
    assert section_of(doc, "47 newton-metres") == ("Maintenance Manual > Valves > Kestrel valve", None)
    assert "Part: Gasket | Interval: Every 90 days" in doc.text
    assert section_of(doc, "flushed monthly")[0] == "Maintenance Manual > Pumps"
    assert_sections_cover_text(doc)


def test_pptx_slides_are_pages_with_their_titles_as_headings(tmp_path: Path) -> None:
    doc = load(fx.write_pptx(tmp_path / "deck.pptx"))
    assert section_of(doc, "3.8 percent") == ("Retention", 2)
    assert section_of(doc, "budget approved in May") == ("Next steps", 3)  # speaker notes are text too
    assert doc.metadata["slides"] == "3"


def test_xlsx_sheets_are_headings_and_rows_carry_their_column_names(tmp_path: Path) -> None:
    doc = load(fx.write_xlsx(tmp_path / "stock.xlsx"))
    assert doc.title == "stock.xlsx"  # a header row is no title
    assert section_of(doc, "Osprey") == ("Warehouse stock", None)
    assert "Warehouse: Osprey | City: Lisbon | Pallets: 1312" in doc.text
    assert section_of(doc, "Revenue: 1200")[0] == "Summary"


def test_odt_headings_and_spaces(tmp_path: Path) -> None:
    doc = load(fx.write_odt(tmp_path / "guide.odt"))
    assert section_of(doc, "Barn owls  hunt at dusk.") == ("Field guide > Owls", None)


def test_ods_sheets_and_odp_slides(tmp_path: Path) -> None:
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
    )
    cell = "<table:table-cell><text:p>{}</text:p></table:table-cell>"
    row = "<table:table-row>{}</table:table-row>"
    sheet = (
        f'<office:document-content {ns}><office:body><office:spreadsheet><table:table table:name="Tides">'
        + row.format(cell.format("Port") + cell.format("High"))
        + row.format(
            cell.format("Dover")
            + cell.format("06:12")
            + '<table:table-cell table:number-columns-repeated="16000"/>'
        )
        + '<table:table-row table:number-rows-repeated="1048000"><table:table-cell/></table:table-row>'
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    ods = load(fx.write_zip(tmp_path / "t.ods", {"content.xml": sheet}))
    assert ods.text == "Port | High\nPort: Dover | High: 06:12"
    assert ods.sections[0].heading == "Tides"
    slides = (
        f"<office:document-content {ns}><office:body><office:presentation>"
        '<draw:page draw:name="Intro"><draw:frame><draw:text-box><text:p>Welcome</text:p></draw:text-box></draw:frame></draw:page>'
        '<draw:page draw:name="Plan"><draw:frame><draw:text-box><text:p>Ship in June</text:p></draw:text-box></draw:frame></draw:page>'
        "</office:presentation></office:body></office:document-content>"
    )
    odp = load(fx.write_zip(tmp_path / "p.odp", {"content.xml": slides}))
    assert section_of(odp, "Ship in June") == ("Plan", 2)


def test_eml_subject_is_title_and_heading_headers_are_metadata(tmp_path: Path) -> None:
    attachment = fx.attachment_docx(tmp_path / "ibis.docx")
    doc = load(fx.write_eml(tmp_path / "mail.eml", attachment))
    assert doc.title == "Heron rollout schedule"
    assert section_of(doc, "ninth of March") == ("Heron rollout schedule", None)
    assert doc.metadata["from"] == "Dana Ops <dana@example.org>"
    assert "Attachments: ibis.docx, blob.bin" in doc.text
    # The readable attachment is a document of its own; the binary one is only named.
    assert [name for name, _ in doc.attachments] == ["ibis.docx"]
    child = doc.attachments[0][1]
    assert section_of(child, "twenty-two months") == ("Ibis contract", None)


def test_eml_with_only_an_html_body_is_read_as_visible_text(tmp_path: Path) -> None:
    path = tmp_path / "html.eml"
    path.write_bytes(
        b"Subject: Menu\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><nav>Home</nav><p>Soup of the day: <b>lentil</b></p><script>x()</script></body></html>"
    )
    doc = load(path)
    assert "Soup of the day: lentil" in doc.text
    assert "x()" not in doc.text and "<b>" not in doc.text


def test_epub_chapters_in_reading_order_with_headings(tmp_path: Path) -> None:
    ebooklib = pytest.importorskip("ebooklib")
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("id1")
    book.set_title("Birds of the Coast")
    book.set_language("en")
    chapters = []
    for number, (heading, body) in enumerate(
        (("Gulls", "Gulls nest on cliffs."), ("Terns", "Terns dive.")), 1
    ):
        chapter = epub.EpubHtml(title=heading, file_name=f"c{number}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{heading}</h1><p>{body}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.spine = chapters
    book.add_item(epub.EpubNav())
    path = tmp_path / "birds.epub"
    epub.write_epub(str(path), book)
    assert ebooklib is not None
    doc = load(path)
    assert doc.title == "Birds of the Coast"
    assert section_of(doc, "Terns dive.")[0] == "Terns"
    assert doc.text.index("Gulls nest") < doc.text.index("Terns dive")


def test_csv_tsv_json_ndjson_xml_rtf_and_code(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,role\nAda,engineer\nLin,pilot\n")
    assert "name: Lin | role: pilot" in load(tmp_path / "a.csv").text
    (tmp_path / "b.tsv").write_text("k\tv\nport\t9999\n")
    assert "k: port | v: 9999" in load(tmp_path / "b.tsv").text
    (tmp_path / "c.json").write_text(json.dumps({"server": {"port": 8080, "hosts": ["a", "b"]}}))
    assert load(tmp_path / "c.json").text == "server.port: 8080\nserver.hosts: a, b"
    (tmp_path / "d.ndjson").write_text('{"id": 1, "text": "first"}\n\n{"id": 2, "text": "second"}\n')
    assert load(tmp_path / "d.ndjson").text == "id: 1\ntext: first\n\nid: 2\ntext: second"
    (tmp_path / "e.xml").write_text("<doc><title>Specs</title><p>Torque 12 Nm</p></doc>")
    xml = load(tmp_path / "e.xml")
    assert (xml.title, xml.text) == ("Specs", "Specs\nTorque 12 Nm")
    (tmp_path / "f.rtf").write_text(
        r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0 Hello \b bold\b0  world.\par}"
    )
    assert "Hello bold world." in load(tmp_path / "f.rtf").text
    (tmp_path / "g.py").write_text(
        "import os\n\n\ndef rotate_keys():\n    return 1\n\n\nclass Vault:\n    pass\n"
    )
    code = load(tmp_path / "g.py")
    assert code.title == "g.py"
    assert section_of(code, "return 1")[0] == "rotate_keys"
    (tmp_path / "Makefile").write_text("all:\n\techo hi\n")
    assert load(tmp_path / "Makefile").text.startswith("all:")


def test_markdown_strips_embedded_html_and_quote_markers_but_keeps_code() -> None:
    source = (
        "# Smart pointers\n\n"
        '<Listing number="15-7" file-name="src/main.rs" caption="Using `Box<T>` and `Option<i32>`">\n\n'
        "```rust\nlet x = Box::new(5); // <b>not a tag</b>\n```\n\n</Listing>\n\n"
        '> Note: This is <span class="x">important</span> for **deref**.\n\n'
        "See [the docs](https://example.org) and <!-- a comment -->the end.\n\n"
        "{{#rustdoc_include ../listings/ch15/main.rs:here}}\n\n"
        "```rust\n{{#rustdoc_include ../listings/ch08/main.rs:spanish}}\n```\n\n"  # the Rust book's usual form
        "```rust\n{{#include ../listings/ch08/lib.rs}}\nfn main() {}\n```\n"
    )
    doc = MarkdownLoader().load(Path("ch15.md"), source.encode())
    assert "<Listing" not in doc.text and "</Listing>" not in doc.text and "<span" not in doc.text
    assert "let x = Box::new(5); // <b>not a tag</b>" in doc.text  # code blocks stay verbatim
    assert "Note: This is important for deref." in doc.text
    assert "> Note" not in doc.text and "**" not in doc.text
    assert "See the docs and the end." in doc.text and "https://" not in doc.text
    assert "rustdoc_include" not in doc.text and "a comment" not in doc.text
    assert "{{#" not in doc.text and "fn main() {}" in doc.text  # directives go, even inside code; code stays
    footnote = MarkdownLoader().load(Path("f.md"), b"Hash tables[^siphash] are fast.\n\n[^siphash]: https://x.org\n")
    assert footnote.text == "Hash tables are fast."


def test_a_note_box_title_in_html_is_not_a_section_heading() -> None:
    from ragcli.loaders.html import HtmlLoader

    source = (
        "<h2>8.3. Character Types</h2><p>Character types store text.</p>"
        '<div class="tip"><h3 class="title">Tip</h3><p>There is no performance difference.</p></div>'
        "<p>The storage requirement is one byte.</p>"
    )
    doc = HtmlLoader().load(Path("datatype-character.html"), source.encode())
    assert {s.heading for s in doc.sections} == {"8.3. Character Types"}


# ----- bad input --------------------------------------------------------------------------------------
ZIP_FORMATS = ["docx", "pptx", "xlsx", "odt", "epub"]


@pytest.mark.parametrize("suffix", [*ZIP_FORMATS, "eml", "msg", "csv", "json", "xml", "rtf", "png"])
def test_empty_file_of_every_format_fails_plainly(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty.{suffix}"
    path.write_bytes(b"")
    with pytest.raises(PermanentError, match=r"empty"):
        load(path)


@pytest.mark.parametrize("suffix", ZIP_FORMATS)
def test_broken_zip_package_is_corrupt(tmp_path: Path, suffix: str) -> None:
    good = tmp_path / f"good.{suffix}"
    fx.write_docx(good) if suffix != "odt" else fx.write_odt(good)
    broken = tmp_path / f"broken.{suffix}"
    broken.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(PermanentError, match=r"corrupt"):
        load(broken)


@pytest.mark.parametrize("suffix", ["docx", "pptx", "xlsx"])
def test_wrong_package_content_is_corrupt_not_a_crash(tmp_path: Path, suffix: str) -> None:
    path = fx.write_zip(tmp_path / f"odd.{suffix}", {"hello.txt": "not an office file"})
    with pytest.raises(PermanentError, match=r"corrupt"):
        load(path)


@pytest.mark.parametrize("suffix", ["docx", "pptx", "xlsx"])
def test_password_protected_office_file_says_so(tmp_path: Path, suffix: str) -> None:
    # Office encrypts an OOXML file by wrapping it in an OLE compound file.
    path = tmp_path / f"secret.{suffix}"
    path.write_bytes(OLE_MAGIC + b"\x00" * 2048)
    with pytest.raises(PermanentError, match=r"encrypted \(password-protected\)") as raised:
        load(path)
    assert raised.value.hint and "without the password" in raised.value.hint


def test_encrypted_odt_and_epub_say_so(tmp_path: Path) -> None:
    odt = fx.write_zip(
        tmp_path / "s.odt", {"content.xml": "garbage", "META-INF/manifest.xml": "<manifest:encryption-data/>"}
    )
    with pytest.raises(PermanentError, match=r"encrypted OpenDocument"):
        load(odt)
    epub = fx.write_zip(
        tmp_path / "s.epub", {"mimetype": "application/epub+zip", "META-INF/encryption.xml": "x"}
    )
    with pytest.raises(PermanentError, match=r"DRM"):
        load(epub)


def test_zip_with_encrypted_members_says_so(tmp_path: Path) -> None:
    path = fx.write_zip(tmp_path / "x.docx", {"word/document.xml": "<x/>"})
    data = bytearray(path.read_bytes())
    # Set the "encrypted" general-purpose flag in the local and central headers.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x1
    path.write_bytes(bytes(data))
    with pytest.raises(PermanentError, match=r"encrypted"):
        load(path)


@pytest.mark.parametrize("suffix", ZIP_FORMATS)
def test_zip_bomb_is_refused_before_parsing(tmp_path: Path, suffix: str) -> None:
    path = fx.zip_bomb(tmp_path / f"bomb.{suffix}", megabytes=8)
    with pytest.raises(PermanentError, match=r"zip bomb"):
        load(path)


def test_zip_inflating_past_the_total_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "MAX_UNCOMPRESSED_BYTES", 1000)
    path = fx.write_docx(tmp_path / "big.docx")
    with pytest.raises(PermanentError, match=r"over the 0 MB limit"):
        load(path)


def test_huge_spreadsheet_is_bounded_by_the_cell_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "MAX_CELLS", 50)
    import openpyxl

    workbook = openpyxl.Workbook()
    for row in range(1000):
        workbook.active.append([f"r{row}", row])
    path = tmp_path / "huge.xlsx"
    workbook.save(str(path))
    monkeypatch.setattr("ragcli.loaders.office.MAX_CELLS", 50)
    doc = load(path)
    assert "more rows not indexed" in doc.text
    assert "r40" not in doc.text


def test_broken_eml_msg_json_xml_rtf_csv(tmp_path: Path) -> None:
    cases = {
        "enc.eml": (
            b"Subject: s\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n",
            r"encrypted e-mail",
        ),
        "bad.msg": (b"this is not an outlook file", r"corrupt Outlook|needs the 'msg' extra"),
        "ole.msg": (OLE_MAGIC + b"\x00" * 600, r"corrupt Outlook|needs the 'msg' extra"),
        "bad.json": (b'{"a": [1, 2', r"malformed JSON"),
        "deep.json": (b"[" * 200_000 + b"]" * 200_000, r"nested too deeply|malformed JSON"),
        "bad.ndjson": (b'{"a": 1}\n{oops\n', r"malformed JSON on line 2"),
        "bad.xml": (b"<a><b></a>", r"malformed XML"),
        "bomb.xml": (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(
                b'<!ENTITY %s "%s">' % (chr(98 + i).encode(), (b"&" + chr(97 + i).encode() + b";") * 10)
                for i in range(9)
            )
            + b"]><l>&j;</l>",
            r"malformed XML",
        ),
        "bad.rtf": (b"plain words, no rtf header", r"not an RTF file"),
        "bin.csv": (b"\x00\x01\x02\x03" * 100, r"binary|empty|NUL"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        loader = get_loader(path)
        assert loader is not None
        with pytest.raises(PermanentError, match=reason):
            loader.load(path, data)


def test_missing_extra_is_unsupported_with_the_extras_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "extract_msg", None)  # as if the extra were not installed
    path = tmp_path / "a.msg"
    path.write_bytes(OLE_MAGIC + b"\x00" * 600)
    with pytest.raises(UnsupportedError, match=r"needs the 'msg' extra") as raised:
        load(path)
    assert raised.value.hint == "pip install 'ragcli[msg]'"


def test_images_are_unsupported_when_ocr_is_off(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    fx.text_image("hello").save(path)
    with pytest.raises(UnsupportedError, match=r"ocr is \"off\""):
        load(path, ocr="off")


def test_corrupt_and_oversized_images_fail_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragcli.loaders import ocr

    if ocr.get_ocr_engine() is None:
        pytest.skip("no OCR engine installed")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(PermanentError, match=r"corrupt or unreadable image"):
        load(broken)
    monkeypatch.setattr(ocr, "MAX_IMAGE_PIXELS", 1000)
    large = tmp_path / "large.png"
    fx.text_image("hello", size=(200, 200)).save(large)
    with pytest.raises(PermanentError, match=r"over 0 M pixels"):
        load(large)


@pytest.mark.slow
def test_scanned_pdf_and_image_are_read_through_ocr(tmp_path: Path) -> None:
    from ragcli.loaders import ocr

    if ocr.get_ocr_engine() is None:
        pytest.skip("no OCR engine installed")
    pdf = fx.write_scanned_pdf(tmp_path / "scan.pdf", ["Cover page of the keeper's log", fx.SCAN_FACT])
    doc = load(pdf)
    assert doc.metadata["ocr"] == "true" and doc.metadata["ocr_pages"] == "1,2"
    _, page = section_of(doc, "barometer")
    assert page == 2
    assert "every four" in " ".join(doc.text.split())
    with pytest.raises(PermanentError, match=r"no extractable text"):
        load(pdf, ocr="off")
    image = tmp_path / "note.png"
    fx.text_image(fx.SCAN_FACT).save(image)
    assert "barometer" in load(image).text


def test_unsupported_types_have_no_loader() -> None:
    for name in ("a.zip", "a.tar.gz", "a.wav", "a.doc", "a.xls", "a.ppt", "a.bin", "a.p7s", "noext"):
        assert get_loader(Path(name)) is None, name


def test_registry_reads_every_suffix_the_default_install_promises() -> None:
    for name in (
        "a.docx",
        "a.pptx",
        "a.xlsx",
        "a.epub",
        "a.eml",
        "a.csv",
        "a.json",
        "a.odt",
        "a.rtf",
        "a.py",
    ):
        assert get_loader(Path(name)) is not None, name
    assert zipfile is not None


def test_ocr_setting_reaches_the_loaders_and_rejects_unknown_modes(tmp_path: Path) -> None:
    from ragcli.config import load_settings
    from ragcli.errors import ConfigError
    from ragcli.loaders.pdf import PdfLoader

    settings = load_settings(env={"RAGCLI_HOME": str(tmp_path), "RAGCLI_INGEST__OCR": "off"})
    assert settings.config.ingest.ocr == "off"
    loader = get_loader(Path("a.pdf"), settings.config.ingest.ocr)
    assert isinstance(loader, PdfLoader) and loader.mode == "off"
    assert load_settings(env={"RAGCLI_HOME": str(tmp_path)}).config.ingest.ocr == "auto"
    with pytest.raises(ConfigError):
        load_settings(env={"RAGCLI_HOME": str(tmp_path), "RAGCLI_INGEST__OCR": "sometimes"})
