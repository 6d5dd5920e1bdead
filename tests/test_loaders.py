"""Loaders on the fixture corpus, on the broken fixtures, and on small documents built in the test."""

from __future__ import annotations

import codecs
import importlib.util
import io
import logging
import re
import warnings
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragcli.errors import PermanentError
from ragcli.loaders import get_loader
from ragcli.loaders.encoding import decode_text
from ragcli.loaders.html import HtmlLoader
from ragcli.loaders.markdown import MarkdownLoader
from ragcli.loaders.pdf import NO_TEXT, PASSWORD_REQUIRED, PdfLoader
from ragcli.loaders.rst import RstLoader
from ragcli.loaders.text import TextLoader
from ragcli.models import ParsedDocument, Section

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DOCS = FIXTURES / "docs"
BROKEN = FIXTURES / "broken"
POSTGRES_DOCS = Path("/work/shared/corpora/postgresql-15-docs/html")


def load(path: Path) -> ParsedDocument:
    loader = get_loader(path)
    assert loader is not None, f"no loader for {path.name}"
    return loader.load(path, path.read_bytes())


def load_bytes(loader: object, name: str, data: bytes) -> ParsedDocument:
    return loader.load(Path(name), data)  # type: ignore[attr-defined, no-any-return]


def section_with(doc: ParsedDocument, needle: str) -> Section:
    position = doc.text.index(needle)
    return next(s for s in doc.sections if s.start <= position < s.end)


def headings(doc: ParsedDocument) -> list[str | None]:
    return [s.heading for s in doc.sections]


def assert_sections_cover_text(doc: ParsedDocument) -> None:
    """Sections are in order, do not overlap, and every non-whitespace character is in one."""
    previous_end = 0
    for section in doc.sections:
        assert previous_end <= section.start < section.end <= len(doc.text), section
        assert not doc.text[previous_end : section.start].strip(), f"text outside sections before {section}"
        previous_end = section.end
    assert not doc.text[previous_end:].strip(), "text after the last section"


def make_pdfs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pdfs", FIXTURES / "make_pdfs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the fixture corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in DOCS.iterdir()))
def test_every_fixture_document_loads_with_sections_covering_its_text(name: str) -> None:
    doc = load(DOCS / name)
    assert doc.text.strip() and doc.title and doc.title != name
    assert doc.sections
    assert_sections_cover_text(doc)


def test_markdown_heading_paths_and_title() -> None:
    doc = load(DOCS / "setup-guide.md")
    assert doc.title == "Aurora AM-5 Setup Guide"
    assert section_with(doc, "needs a supply that delivers at least 3 A").heading == (
        "Aurora AM-5 Setup Guide > Power > Power supply"
    )
    assert section_with(doc, "Octans asterism").heading == (
        "Aurora AM-5 Setup Guide > Polar alignment > Southern hemisphere"
    )
    assert "## Power" not in doc.text and "\n\nPower\n\n" in doc.text  # rendered, not the raw source
    assert doc.metadata == {"encoding": "utf-8"}


def test_markdown_ignores_headings_in_fenced_code() -> None:
    doc = load(DOCS / "setup-guide.md")
    assert not any("code block" in (h or "") for h in headings(doc))
    assert section_with(doc, "This line is inside a code block").heading == (
        "Aurora AM-5 Setup Guide > Wireless control > Joining the mount's network"
    )


def test_markdown_setext_headings_nest_with_atx_ones() -> None:
    doc = load(DOCS / "troubleshooting.md")
    assert doc.title == "Troubleshooting the Aurora AM-5"
    assert section_with(doc, "no fix within 180 seconds").heading == (
        "Troubleshooting the Aurora AM-5 > Error codes > E23: GPS fix timeout"
    )
    assert section_with(doc, "hold the SET and MENU keys").heading == (
        "Troubleshooting the Aurora AM-5 > Factory reset"
    )


def test_a_tight_list_under_a_heading_starts_a_paragraph_of_its_own() -> None:
    doc = load(DOCS / "release-notes.md")
    assert "Breaking changes\n\nThe hand controller protocol moved" in doc.text
    assert "per worm cycle.\nThe hand controller shows" in doc.text  # the items stay one to a line


def test_markdown_repeated_subheadings_get_their_own_parents() -> None:
    doc = load(DOCS / "release-notes.md")
    assert section_with(doc, "128 segments").heading == (
        "Aurora Firmware Release Notes > Version 3.2.0 (2024-09-17) > New"
    )
    assert section_with(doc, "more than 4 clients").heading == (
        "Aurora Firmware Release Notes > Version 3.1.4 (2024-05-02) > Fixed"
    )


def test_rst_levels_follow_the_order_adornments_appear_in() -> None:
    doc = load(DOCS / "maintenance.rst")
    assert doc.title == "Aurora AM-5 Maintenance"
    assert section_with(doc, "every 400 operating hours").heading == (
        "Aurora AM-5 Maintenance > Routine care > Lubrication"
    )
    assert section_with(doc, "deflect by 3 mm").heading == (
        "Aurora AM-5 Maintenance > Routine care > Lubrication > Belt tension"
    )
    assert section_with(doc, "humidity below 60").heading == "Aurora AM-5 Maintenance > Storage"
    # The adornments are markup, not text: "~~~~" would read as a code fence to the answer step.
    assert not [line for line in doc.text.splitlines() if line and set(line) <= set("=-~^")]
    assert "Belt tension\n\nThe declination belt" in doc.text


def test_html_drops_navigation_script_and_style() -> None:
    doc = load(DOCS / "warranty.html")
    for boilerplate in (
        "Community Forum", "Sign in", "Free shipping", "Extended warranty plans", "Imprint",  # nav, header…
        "Home", "trackingPixelId", "zx-pixel-7781", "support-bot-42", "font-family", "#ffcc00",
    ):
        assert boilerplate not in doc.text, boilerplate
    assert "covered for 5 years" in doc.text
    assert doc.title == "Aurora AM-5 Warranty"  # <title>, not the h1
    assert headings(doc) == [
        "Warranty for the Aurora AM-5",
        "Warranty for the Aurora AM-5 > Coverage",
        "Warranty for the Aurora AM-5 > Making a claim",
        "Warranty for the Aurora AM-5 > Making a claim > Shipping the mount back",
        "Warranty for the Aurora AM-5 > Exclusions",
    ]
    # List items on their own lines, each with a marker: without it they read as one run-on sentence.
    assert "Exclusions\n\n• damage from salt water or sand\n• repairs by anyone" in doc.text


def test_list_items_keep_a_bullet_or_their_number() -> None:
    page = (
        b"<p>Steps:</p><ol start='3'><li><p>Stop the mount.</p></li><li>Unplug it<ul><li>both cables</li></ul>"
        b"</li></ol><ul><li hidden>secret</li><li>visible</li></ul><pre>- not a list</pre>"
    )
    assert load_bytes(HtmlLoader(), "steps.html", page).text == (
        "Steps:\n\n3. Stop the mount.\n\n4. Unplug it\n\n• both cables\n\n• visible\n\n```\n- not a list\n```"
    )


def test_html_layout_tables_pre_and_entities() -> None:
    doc = load(DOCS / "specifications.html")
    assert "Payload capacity without counterweight | 15 kg\n" in doc.text
    # <pre> keeps its whitespace, in a code fence: a listing is never quoted as an answer sentence
    assert "Serial protocol\n\n```\n:GR#    get right ascension\n:GD#    get declination\n" in doc.text
    assert doc.text.endswith(":Q#     stop all motion\n```")
    assert "measured at 20 °C with firmware 3.2.0." in doc.text
    assert "\n\n\n" not in doc.text
    assert section_with(doc, "6 degrees per second").heading == (
        "Aurora AM-5 Technical Specifications > Electronics > Tracking"
    )


def test_text_title_is_the_first_line_and_one_section() -> None:
    doc = load(DOCS / "faq.txt")
    assert doc.title == "Aurora AM-5 Frequently Asked Questions"
    assert doc.sections == [Section(0, len(doc.text))]


def test_text_normalises_newlines_and_shortens_a_long_first_line() -> None:
    first_line = " ".join(f"word{i}" for i in range(40))
    doc = load_bytes(TextLoader(), "long.txt", f"\r\n{first_line}\r\nsecond line\rthird\r\n".encode())
    assert "\r" not in doc.text
    assert doc.text.endswith("second line\nthird\n")
    assert doc.title.endswith("…") and len(doc.title) <= 101
    assert first_line.startswith(doc.title[:-1])


def test_pdf_sections_are_pages_and_title_comes_from_metadata() -> None:
    doc = load(DOCS / "field-manual.pdf")
    assert doc.title == "Aurora AM-5 Field Manual"
    assert [(s.page, s.heading) for s in doc.sections] == [(1, None), (2, None), (3, None)]
    assert section_with(doc, "down to -20 degrees Celsius").page == 2
    assert section_with(doc, "about 9 hours of tracking").page == 3
    assert doc.metadata["pages"] == "3"


def test_pdf_without_metadata_title_uses_its_first_line() -> None:
    doc = load(DOCS / "company-history.pdf")
    assert doc.title == "Lumenvale Instruments: A Short History"
    assert section_with(doc, "Ingrid Halvorsen").page == 1
    assert section_with(doc, "Kongsberg").page == 2


# --- broken fixtures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("corrupt.pdf", "corrupt PDF: data ends unexpectedly"),
        ("encrypted.pdf", PASSWORD_REQUIRED),
        ("empty.txt", "empty document: no text to index"),
        ("whitespace.txt", "empty document: no text to index"),
        ("binary.txt", "binary content, not text (NUL byte at offset 37)"),
    ],
)
def test_broken_fixtures_fail_permanently_with_a_plain_reason(name: str, reason: str) -> None:
    with pytest.raises(PermanentError) as failure:
        load(BROKEN / name)
    assert failure.value.message.startswith(reason)


def test_encrypted_pdf_failure_says_how_to_fix_it() -> None:
    with pytest.raises(PermanentError) as failure:
        load(BROKEN / "encrypted.pdf")
    assert failure.value.hint and "password" in failure.value.hint


def test_legacy_8bit_text_loads_through_the_cp1252_fallback() -> None:
    doc = load(BROKEN / "latin1.txt")
    assert doc.title == "Händlerpreise für Aurora-Zubehör"
    assert "89 € – Café-Rabatt" in doc.text and "Zürich" in doc.text
    assert doc.metadata == {"encoding": "cp1252 (fallback)"}


def test_utf16_html_with_bom_loads() -> None:
    doc = load(BROKEN / "utf16.html")
    assert doc.title == "Autorisierte Händler"
    assert "Sternwarte Nord in Bodø" in doc.text
    assert doc.metadata["encoding"] == "utf-16-le"


def test_unknown_suffix_has_no_loader() -> None:
    assert get_loader(BROKEN / "notes.xyz") is None


# --- decode_text ----------------------------------------------------------------------------------

SAMPLE = "Aurora tracks at sidereal rate.\nDégagé: 12 V, 3 A.\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SAMPLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + SAMPLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF16_BE + SAMPLE.encode("utf-16-be"), "utf-16-be"),
        (SAMPLE.encode("utf-16-le"), "utf-16-le"),
        (SAMPLE.encode("utf-16-be"), "utf-16-be"),
        (SAMPLE.encode("utf-32"), "utf-32-le"),
        (codecs.BOM_UTF32_BE + SAMPLE.encode("utf-32-be"), "utf-32-be"),
        (SAMPLE.encode("utf-32-be"), "utf-32-be"),
        (SAMPLE.encode("cp1252"), "cp1252"),
        (b"caf\xe9 \x81 latin", "latin-1"),  # 0x81 is undefined in cp1252
    ],
)
def test_decode_text_detects_the_encoding(data: bytes, encoding: str) -> None:
    text, detected = decode_text(data)
    assert detected == encoding
    if encoding != "latin-1":
        assert text == SAMPLE


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty document"),
        (b" \n\t\r\n", "empty document"),
        (b"text\x00\x01\x02\x03 more text", "binary content, not text (NUL byte at offset 4)"),
        (bytes(range(1, 9)) * 40 + b"some words", "binary content, not text (320 control characters"),
    ],
)
def test_decode_text_rejects_binary_and_empty_input(data: bytes, reason: str) -> None:
    with pytest.raises(PermanentError, match=re.escape(reason)):
        decode_text(data)


def test_decode_text_keeps_tabs_and_ansi_colour_codes() -> None:
    log_line = "\x1b[31mERROR\x1b[0m\tmotor stall\n" * 20
    assert decode_text(log_line.encode()) == (log_line, "utf-8")


text_without_controls = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufeff"),
    min_size=1,
).filter(lambda s: s.strip())


@given(text=text_without_controls, encoding=st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]))
def test_decode_text_round_trips_unicode(text: str, encoding: str) -> None:
    assert decode_text(text.encode(encoding))[0] == text


# --- Markdown and RST edge cases --------------------------------------------------------------------


def test_markdown_front_matter_title_and_text_before_the_first_heading() -> None:
    source = "---\ntitle: Field Notes\ntags: [a]\n---\nIntro line.\n\n# First\n\nBody.\n"
    doc = load_bytes(MarkdownLoader(), "notes.md", source.encode())
    assert doc.title == "Field Notes"
    assert headings(doc) == [None, "First"]
    assert_sections_cover_text(doc)


def test_markdown_rule_under_a_paragraph_and_tilde_fences_are_not_headings() -> None:
    source = (
        "# Top\n\nfirst line of a paragraph\nsecond line\n---\n\n~~~\n```\nprint()\n# inside tildes\n~~~\n\n"
        "#### Deep\ntext\n"
    )
    doc = load_bytes(MarkdownLoader(), "x.md", source.encode())
    assert headings(doc) == ["Top", "Top > Deep"]


def test_markdown_without_headings_is_titled_by_its_file_name() -> None:
    doc = load_bytes(MarkdownLoader(), "plain.md", b"just some text\n")
    assert doc.title == "plain.md"
    assert headings(doc) == [None]


def test_rst_needs_a_long_enough_underline_and_tells_overlined_styles_apart() -> None:
    source = (
        "=====\nTitle\n=====\n\nIntro.\n\nPart\n=====\n\nToo short\n====\n\nText.\n\n----------\n\n"
        "Other part\n==========\n"
    )
    doc = load_bytes(RstLoader(), "x.rst", source.encode())
    assert doc.title == "Title"
    assert headings(doc) == ["Title", "Title > Part", "Title > Other part"]
    assert "Too short" in doc.text


# --- HTML edge cases ------------------------------------------------------------------------------

POSTGRES_LIKE_PAGE = b"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>5.1. Table Basics</title></head><body>
<div class="navheader"><table width="100%"><tr><th colspan="3">5.1. Table Basics</th></tr><tr>
<td><a accesskey="p" href="ddl.html">Prev</a></td><td><a accesskey="u" href="ddl.html">Up</a></td>
<td><a accesskey="n" href="ddl-default.html">Next</a></td></tr></table><hr /></div>
<div class="sect1"><h2 class="title">5.1. Table Basics</h2><p>A table in a relational database is much
like a table on paper.</p><br/><div /></div>
<div class="navfooter"><hr /><table><tr><td>Chapter 5. Data Definition</td><td>
<a accesskey="h" href="index.html">Home</a></td><td>5.2. Default Values</td></tr></table></div>
</body></html>"""


def test_html_drops_docbook_navheader_and_navfooter() -> None:
    doc = load_bytes(HtmlLoader(), "ddl-basics.html", POSTGRES_LIKE_PAGE)
    assert doc.text == "5.1. Table Basics\n\nA table in a relational database is much like a table on paper."
    assert doc.title == "5.1. Table Basics"


@pytest.mark.skipif(not POSTGRES_DOCS.is_dir(), reason="the PostgreSQL manual corpus is not on this machine")
def test_html_real_postgresql_pages_lose_their_navigation() -> None:
    pages = sorted(POSTGRES_DOCS.glob("*.html"))[::60]
    assert len(pages) >= 10
    for page in pages:
        doc = load(page)
        lines = set(doc.text.splitlines())
        assert not lines & {"Prev", "Next", "Up", "Home", "Prev | Up | Next"}, page.name
        assert doc.title and doc.title != page.name


def test_html_landmarks_roles_and_hidden_elements() -> None:
    page = b"""<html><head><title>T</title><body>
    <div role="navigation">Menu entries</div>
    <article><header><h1>Article title</h1></header><p>Body text.</p><footer>By Ingrid</footer></article>
    <p hidden>invisible</p><p style="display: none">also invisible</p>
    <div id="sidebar">side</div><template><p>template text</p></template><noscript>enable js</noscript>
    <svg><title>icon title</title><text>svg text</text></svg>
    </body></html>"""
    doc = load_bytes(HtmlLoader(), "x.html", page)
    # A <head> left open ends where the body starts; header/footer inside an article are content.
    assert doc.text == "Article title\n\nBody text.\n\nBy Ingrid"
    assert doc.title == "T"


def test_html_title_falls_back_to_the_first_h1_then_the_file_name() -> None:
    assert load_bytes(HtmlLoader(), "a.html", b"<h2>Sub</h2><h1>Main</h1><p>x</p>").title == "Main"
    assert load_bytes(HtmlLoader(), "b.html", b"<p>only a paragraph</p>").title == "b.html"


def test_html_declared_charsets_and_a_wrong_declaration() -> None:
    text = "<p>Gegengewicht für 89 €</p>"
    declared = f'<meta charset="windows-1252">{text}'.encode("cp1252")
    assert load_bytes(HtmlLoader(), "a.html", declared).metadata == {"encoding": "cp1252"}
    http_equiv = f'<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">{text}'
    doc = load_bytes(HtmlLoader(), "b.html", http_equiv.encode("cp1252"))
    assert doc.text == "Gegengewicht für 89 €"  # ISO-8859-1 is read as windows-1252, like browsers do
    lying = f'<meta charset="utf-8">{text}'.encode("cp1252")
    doc = load_bytes(HtmlLoader(), "c.html", lying)
    assert doc.text == "Gegengewicht für 89 €"
    assert doc.metadata == {"encoding": "cp1252 (fallback)"}


def test_html_marked_sections_are_comments_not_parser_crashes() -> None:
    # Word's conditional comments and stray CDATA made Python 3.11's parser raise AssertionError.
    page = b"<p>one</p><![if !supportLists]>two<![endif]><![CDATA[x]]><![ broken ]><p>three</p>"
    assert load_bytes(HtmlLoader(), "word.html", page).text == "one\n\ntwo\n\nthree"


def test_html_with_no_visible_text_is_empty() -> None:
    with pytest.raises(PermanentError, match="empty document"):
        load_bytes(HtmlLoader(), "x.html", b"<html><head><title>Only a title</title></head><body> </body></html>")


# --- PDF edge cases -------------------------------------------------------------------------------


def test_pdf_encrypted_with_an_empty_user_password_opens() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(DOCS / "company-history.pdf"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    doc = load_bytes(PdfLoader(), "restricted.pdf", out.getvalue())
    assert "Ingrid Halvorsen" in doc.text


def test_pdf_without_text_fails_as_probably_scanned() -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(PermanentError, match=re.escape(NO_TEXT)):
        load_bytes(PdfLoader(), "scan.pdf", out.getvalue())


def test_pdf_page_that_cannot_be_parsed_fails_the_document_naming_the_page() -> None:
    builder = make_pdfs()
    regular = builder.page_content
    builder.page_content = lambda lines: b"BT /F1 11 Tf 72 700 Td (unterminated Tj ET" if lines == ["P2"] else (
        regular(lines)
    )
    pdf = builder.build_pdf([["P1", "fine text"], ["P2"], ["P3", "more text"]], title=None)
    with pytest.raises(PermanentError, match=r"^corrupt PDF: page 2 cannot be read"):
        load_bytes(PdfLoader(), "bad-page.pdf", pdf)


def _without_xref(pdf: bytes) -> bytes:
    """The PDF with its cross-reference table, trailer and startxref cut out; %%EOF stays."""
    start = pdf.rindex(b"xref\n0")
    assert pdf.rstrip().endswith(b"%%EOF")
    return pdf[:start] + b"%%EOF\n"


def test_complete_pdf_without_cross_reference_table_is_read() -> None:
    pdf = make_pdfs().build_pdf([["Intro", "The pump runs at 40 rpm."], ["More", "Seals last a year."]], title=None)
    broken = _without_xref(pdf)
    assert b"startxref" not in broken and b"trailer" not in broken
    doc = load_bytes(PdfLoader(), "no-xref.pdf", broken)
    assert "40 rpm" in doc.text and "Seals last a year" in doc.text


def test_pdf_cut_off_before_its_end_is_still_called_cut_off() -> None:
    pdf = make_pdfs().build_pdf([["Intro", "The pump runs at 40 rpm."]], title=None)
    with pytest.raises(PermanentError, match="cut off"):
        load_bytes(PdfLoader(), "cut.pdf", pdf[: pdf.rindex(b"xref\n0")])


def test_pdf_that_is_not_a_pdf() -> None:
    with pytest.raises(PermanentError, match="not a PDF file"):
        load_bytes(PdfLoader(), "fake.pdf", b"<html>saved web page</html>")


def test_pdf_extraction_stops_at_the_time_budget() -> None:
    with pytest.raises(PermanentError, match=r"took longer than .* \(stopped at page 1 of 3\)"):
        PdfLoader(time_budget_s=-1).load(DOCS / "field-manual.pdf", (DOCS / "field-manual.pdf").read_bytes())


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_pypdf_repair_messages_are_debug_records_not_warnings(caplog: pytest.LogCaptureFixture) -> None:
    pdf = (DOCS / "field-manual.pdf").read_bytes()
    damaged = re.sub(rb"startxref\n\d+", b"startxref\n12", pdf)  # pypdf repairs this, loudly
    filters_before = list(warnings.filters)
    # What a console handler on the root logger would see (pytest's own capture handler also hooks into
    # non-propagating loggers, so caplog cannot tell).
    screen = _Collect()
    logging.getLogger().addHandler(screen)
    try:
        with caplog.at_level(logging.DEBUG):
            doc = load_bytes(PdfLoader(), "damaged.pdf", damaged)
    finally:
        logging.getLogger().removeHandler(screen)
    assert doc.title == "Aurora AM-5 Field Manual"
    assert not [r for r in screen.records if r.levelno >= logging.WARNING]
    assert any(
        r.name == "ragcli.loaders.pdf" and "damaged.pdf: pypdf: incorrect startxref" in r.getMessage()
        for r in screen.records
    )
    assert warnings.filters == filters_before
