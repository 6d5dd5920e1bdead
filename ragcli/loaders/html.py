"""HTML: the text a reader sees, split into sections by h1–h6, with navigation boilerplate left out.

Built on the stdlib `html.parser`, which tolerates broken markup and needs no extra dependency.

Left out: script, style, noscript, template, svg, iframe, the whole head (except <title>), elements
with the `hidden` attribute or an inline `display:none`, and navigation boilerplate: nav, aside,
page-level header and footer (a header/footer inside article, main or section is content, as in ARIA),
role=navigation|banner|contentinfo|complementary, and elements whose class or id is a well-known
boilerplate name (navheader, navfooter, sidebar, breadcrumb, …; the PostgreSQL and DocBook manuals use
the first two).

Layout: block elements start a new line or paragraph, runs of whitespace collapse to one space, <pre>
keeps its whitespace inside a Markdown code fence, table cells are separated by " | " and rows by line
breaks. The fence is what tells every later reader of sentences (compression, the extractive answer)
that a listing, a command or a program's output table is code, not prose to quote as an answer.

Encoding: byte order mark, then a charset declared in the first few KB (<meta charset>, http-equiv
Content-Type, or an XML declaration), then `decode_text`'s detection and cp1252 fallback.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path

from ragcli.errors import PermanentError
from ragcli.loaders.encoding import bom_encoding, decode_text
from ragcli.loaders.text import (
    ADMONITION_TITLE,
    encoding_metadata,
    normalize_newlines,
    require_text,
    sections_from_headings,
    shorten,
)
from ragcli.models import ParsedDocument

_SKIPPED_TAGS = frozenset(
    {"script", "style", "noscript", "template", "svg", "iframe", "head", "nav", "aside"}
)
# Anything else opened inside <head> means its end tag was left out and the body has begun.
_HEAD_CONTENT = frozenset({"title", "meta", "link", "style", "script", "noscript", "base", "template"})
_PAGE_LANDMARK_TAGS = frozenset({"header", "footer"})
_CONTENT_CONTAINERS = frozenset({"article", "main", "section"})
_SKIPPED_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary"})
_BOILERPLATE_NAMES = frozenset(
    {
        "navheader", "navfooter", "navbar", "navigation", "nav", "sidebar", "breadcrumb", "breadcrumbs",
        "skip-link", "skiplink", "site-header", "site-footer", "cookie-banner", "cookie-consent",
    }
)
_VOID_TAGS = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
        "track", "wbr", "keygen", "frame", "basefont", "isindex",
    }
)
_HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

# Break strength before the next text: the strongest pending one wins.
_NONE, _SPACE, _CELL, _LINE, _PARAGRAPH = range(5)
_SEPARATORS = {_NONE: "", _SPACE: " ", _CELL: " | ", _LINE: "\n", _PARAGRAPH: "\n\n"}
_LINE_TAGS = frozenset(
    {"div", "li", "dt", "dd", "tr", "br", "caption", "figcaption", "summary", "option", "label", "legend"}
)
_PARAGRAPH_TAGS = frozenset(
    {
        "p", "pre", "blockquote", "ul", "ol", "dl", "table", "section", "article", "main", "header",
        "footer", "address", "figure", "form", "fieldset", "details", "hr", "body", "center", "hgroup",
        *_HEADING_LEVELS,
    }
)
# An open <p> ends when one of these starts (HTML's implied end tags), which keeps the stack shallow.
_CLOSES_P = _PARAGRAPH_TAGS | {"div", "li", "dt", "dd"}
_IMPLIED_SIBLING_END = {"li": {"li"}, "dt": {"dt", "dd"}, "dd": {"dt", "dd"}, "td": {"td", "th"},
                        "th": {"td", "th"}, "tr": {"tr", "td", "th"}, "option": {"option"}}

_BREAKS = {tag: _PARAGRAPH for tag in _PARAGRAPH_TAGS} | {tag: _LINE for tag in _LINE_TAGS}
# Tags whose start or end changes the extractor's state beyond a line or paragraph break.
_SPECIAL_TAGS = frozenset(
    {"title", "svg", "head", "pre", "td", "th", "tr", "ul", "ol", "li", *_CONTENT_CONTAINERS, *_HEADING_LEVELS}
)
_HIDING_TAGS = _SKIPPED_TAGS | _PAGE_LANDMARK_TAGS
_IMPLIED_END_CANDIDATES = frozenset({"p", *_IMPLIED_SIBLING_END, "td", "th"})

# A <pre> block's fence: wanted when it opens, open once its first text is written (an empty <pre> gets none).
_FENCE = "```"
_FENCE_NONE, _FENCE_WANTED, _FENCE_OPEN = range(3)

_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)"""
    rb"""|<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)""",
    re.IGNORECASE,
)
_SNIFF_BYTES = 4096


class HtmlLoader:
    name = "html"
    # 2: a box's "Note" / "Tip" title is not a section heading. 3: list items keep a marker ("• ", "2. ").
    # 4: <pre> in a code fence.
    version = 4

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        source, encoding, declared = decode_html(data)
        extractor = _VisibleTextExtractor()
        try:
            extractor.feed(normalize_newlines(source))
            extractor.close()
        except AssertionError as exc:  # the stdlib parser's way of giving up on markup
            raise PermanentError(f"malformed HTML the parser cannot read: {exc}") from exc
        text = extractor.text()
        require_text(text)
        title = extractor.title or extractor.first_h1 or path.name
        return ParsedDocument(
            text=text,
            title=shorten(title),
            sections=sections_from_headings(text, extractor.headings),
            metadata=encoding_metadata(path, encoding, declared=declared),
        )


def _list_marker(number: int | None) -> str:
    """What starts a list item's first line: its number in an ordered list ("2. "), a bullet otherwise.

    Without it a list's items run together into one "sentence" for whatever reads sentences (compression,
    the answer's evidence): "damage from salt water or sand repairs by anyone other …". Answers drop the
    marker (`ragcli.generation.extractive.clean_sentence`); citations show the list as a list.
    """
    return "• " if number is None else f"{number}. "


def _first_number(attrs: list[tuple[str, str | None]]) -> int:
    """Where an <ol> starts counting (its `start`, 1 by default)."""
    for name, value in attrs:
        if name == "start" and value is not None and value.strip().lstrip("-").isdigit():
            return int(value)
    return 1


def decode_html(data: bytes) -> tuple[str, str, bool]:
    """Decode an HTML file: BOM, then declared charset, then detection.

    Returns (text, encoding, whether the encoding was the file's own declaration).
    """
    if bom_encoding(data) is None and b"\x00" not in data:
        declared = declared_charset(data[:_SNIFF_BYTES])
        if declared is not None:
            try:
                return data.decode(declared), declared, True
            except UnicodeDecodeError:
                pass  # the declaration is wrong more often than one would hope; detect instead
    return (*decode_text(data), False)


def declared_charset(head: bytes) -> str | None:
    """The codec named by a <meta> or XML declaration, with WHATWG's aliases; None if unusable."""
    match = _DECLARED_CHARSET.search(head)
    if match is None:
        return None
    label = (match.group(1) or match.group(2)).decode("ascii").lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name in {"latin-1", "iso8859-1", "ascii"}:
        return "cp1252"  # browsers decode these labels as windows-1252, and so do the files' authors
    if name.startswith(("utf-16", "utf-32")):
        return None  # an ASCII-compatible declaration of a wide encoding without a BOM is a lie
    return name


class _VisibleTextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._length = 0
        self._pending = _NONE
        self._stack: list[tuple[str, bool]] = []  # (tag, hides its content)
        self._hidden_depth = 0
        self._pre_depth = 0
        self._pre_just_opened = False
        self._fence = _FENCE_NONE
        self._content_depth = 0
        self._svg_depth = 0
        self._head_open = False
        self._cell_closed = False
        self._title_parts: list[str] | None = None
        self._lists: list[int | None] = []  # open lists: the last item number of an <ol>, None for <ul>
        self._marker: str | None = None  # the open <li>'s, until its first text is written
        self._heading: tuple[int, list[str]] | None = None  # level, text parts
        self._heading_start: int | None = None
        self.title: str | None = None
        self.first_h1: str | None = None
        self.headings: list[tuple[int, int, str]] = []

    def text(self) -> str:
        return "".join(self._parts).rstrip()

    def parse_html_declaration(self, i: int) -> int:
        # Python < 3.13 raises AssertionError on a malformed "<![" (CDATA, conditional comments). In HTML
        # content browsers treat any "<![…" as a comment running to the first ">", and so do we.
        if self.rawdata.startswith("<![", i):
            end = self.rawdata.find(">", i + 3)
            return -1 if end == -1 else end + 1
        return super().parse_html_declaration(i)

    def updatepos(self, i: int, j: int) -> int:
        # The base class counts newlines after every token to report line numbers we never use;
        # skipping that is a sixth of the parse time on large manuals.
        return j

    # --- parser callbacks -------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._title_parts is not None:
            self._finish_title()  # a <title> without its end tag
        if tag in _VOID_TAGS:
            strength = _BREAKS.get(tag, _NONE)
            if strength > self._pending:
                self._pending = strength
            return
        if self._stack and (self._head_open or self._stack[-1][0] in _IMPLIED_END_CANDIDATES):
            self._close_implied(tag)
        hides = self._hides(tag, attrs) if attrs or tag in _HIDING_TAGS else False
        self._stack.append((tag, hides))
        if hides:
            self._hidden_depth += 1
        if tag in _SPECIAL_TAGS:
            self._enter_special(tag, attrs)
        else:
            strength = _BREAKS.get(tag, _NONE)
            if strength > self._pending:
                self._pending = strength

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # XHTML's <div/>: an element that opens and closes at once.
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        stack = self._stack
        if stack and stack[-1][0] == tag:
            self._pop()
            return
        for depth in range(len(stack) - 2, -1, -1):
            if stack[depth][0] == tag:
                while len(stack) > depth:
                    self._pop()
                return
        # An end tag with no open element: ignored, as browsers do.

    def handle_data(self, data: str) -> None:
        if self._title_parts is not None:
            self._title_parts.append(data)
            return
        if self._hidden_depth:
            return
        if self._pre_depth:
            if self._pre_just_opened and data.startswith("\n"):
                data = data[1:]  # HTML ignores the newline right after <pre>
            self._pre_just_opened = False
            if data:
                if self._fence == _FENCE_WANTED and self._heading is None:
                    data, self._fence = f"{_FENCE}\n{data}", _FENCE_OPEN
                self._write(data)
            return
        words = data.split()
        if not words:
            if data and self._pending < _SPACE:
                self._pending = _SPACE
            return
        if data[0].isspace() and self._pending < _SPACE:
            self._pending = _SPACE
        self._write(" ".join(words))
        if data[-1].isspace():
            self._pending = _SPACE

    # --- structure --------------------------------------------------------------------------------

    def _hides(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in _SKIPPED_TAGS:
            return True
        if tag in _PAGE_LANDMARK_TAGS and not self._content_depth:
            return True
        for name, value in attrs:
            if name == "hidden":
                return True
            if value is None:
                continue
            if name == "class":
                if not _BOILERPLATE_NAMES.isdisjoint(value.lower().split()):
                    return True
            elif name == "id":
                if value.lower() in _BOILERPLATE_NAMES:
                    return True
            elif name == "role":
                if value.lower().strip() in _SKIPPED_ROLES:
                    return True
            elif name == "style" and "display:none" in value.replace(" ", "").lower():
                return True
        return False

    def _close_implied(self, tag: str) -> None:
        if self._head_open and tag not in _HEAD_CONTENT:
            self.handle_endtag("head")
        if not self._stack:
            return
        if self._stack[-1][0] == "p" and tag in _CLOSES_P:
            self._pop()
            return
        siblings = _IMPLIED_SIBLING_END.get(tag)
        while siblings and self._stack and self._stack[-1][0] in siblings:
            self._pop()

    def _enter_special(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            if not self._svg_depth and self.title is None:
                self._title_parts = []
        elif tag == "svg":
            self._svg_depth += 1
        elif tag == "head":
            self._head_open = True
        elif tag in _CONTENT_CONTAINERS:
            self._content_depth += 1
        elif tag in _HEADING_LEVELS:
            if not self._hidden_depth and self._heading is None:
                self._heading = (_HEADING_LEVELS[tag], [])
                self._heading_start = None
        elif tag == "pre":
            self._pre_depth += 1
            self._pre_just_opened = True
            if self._pre_depth == 1:
                self._fence = _FENCE_WANTED
        elif tag in ("td", "th"):
            # A cell after a closed one in the same row gets a separator; the row's first does not.
            self._request(_CELL if self._cell_closed else _NONE)
            self._cell_closed = False
        elif tag in ("ul", "ol"):
            self._lists.append(_first_number(attrs) - 1 if tag == "ol" else None)
        elif tag == "li":
            number = None
            if self._lists and self._lists[-1] is not None:
                number = self._lists[-1] = self._lists[-1] + 1
            self._marker = _list_marker(number)
        self._request(_BREAKS.get(tag, _NONE))

    def _pop(self) -> None:
        tag, hides = self._stack.pop()
        if hides:
            self._hidden_depth -= 1
        if tag in _SPECIAL_TAGS:
            if tag == "title":
                self._finish_title()
            elif tag == "svg":
                self._svg_depth -= 1
            elif tag == "head":
                self._head_open = False
            elif tag in _CONTENT_CONTAINERS:
                self._content_depth -= 1
            elif tag in _HEADING_LEVELS:
                self._finish_heading(tag)
            elif tag == "pre":
                self._pre_depth -= 1
                if not self._pre_depth:
                    self._close_fence()
            elif tag in ("td", "th"):
                self._cell_closed = True
            elif tag == "tr":
                self._cell_closed = False
            elif tag in ("ul", "ol"):
                if self._lists:
                    self._lists.pop()
            elif tag == "li":
                self._marker = None
        strength = _BREAKS.get(tag, _NONE)
        if strength > self._pending:
            self._pending = strength

    def _close_fence(self) -> None:
        if self._fence == _FENCE_OPEN:
            closing = _FENCE if self._parts[-1].endswith("\n") else f"\n{_FENCE}"
            self._parts.append(closing)
            self._length += len(closing)
        self._fence = _FENCE_NONE

    def _finish_title(self) -> None:
        if self._title_parts is not None:
            self.title = " ".join("".join(self._title_parts).split()) or None
            self._title_parts = None

    def _finish_heading(self, tag: str) -> None:
        if self._heading is None or self._heading[0] != _HEADING_LEVELS[tag]:
            return
        level, parts = self._heading
        self._heading = None
        text = " ".join("".join(parts).split())
        if text and self._heading_start is not None and not ADMONITION_TITLE.match(text):
            # A box's title ("<h3 class="title">Tip</h3>" in the PostgreSQL manual) is no section: as a heading
            # it would put everything after the box, up to the next real heading, under "Tip".
            self.headings.append((self._heading_start, level, text))
            if level == 1 and self.first_h1 is None:
                self.first_h1 = text

    # --- output -----------------------------------------------------------------------------------

    def _request(self, strength: int) -> None:
        if strength > self._pending:
            self._pending = strength

    def _write(self, text: str) -> None:
        separator = _SEPARATORS[self._pending] if self._length else ""
        if separator.startswith("\n") and self._parts[-1].endswith("\n"):
            # <pre> text often ends in a newline; it counts towards the break, not on top of it.
            last = self._parts[-1]
            separator = separator[len(last) - len(last.rstrip("\n")) :]
        if separator:
            self._parts.append(separator)
            self._length += len(separator)
        self._pending = _NONE
        if self._marker is not None and not self._pre_depth and self._heading is None:
            text, self._marker = self._marker + text, None
        if self._heading is not None:
            if self._heading_start is None:
                self._heading_start = self._length
            else:
                self._heading[1].append(separator)
            self._heading[1].append(text)
        self._parts.append(text)
        self._length += len(text)
