"""Markdown through markdown-it-py (CommonMark + GFM tables), rendered to the text a reader sees.

What is indexed and shown is the rendered text, not the source: no `#` heading markers, `**`, link
targets, `>` quote markers, or HTML/XML tags embedded in the Markdown (the Rust book's
`<Listing number="15-7" …>`, `<span>`, comments); code blocks and inline code stay verbatim. Sections
split at headings (ATX and setext; never inside code); a `title:` in YAML front matter wins over the
first heading as the document title, and the front matter itself is not indexed. A setext underline
under a paragraph of several lines is read as a rule, not as a heading made of the whole paragraph.

markdown-it-py replaced a regular-expression heading scanner after a measurement (docs/benchmarks.md,
"Markdown"): it is already installed with rich, so it costs no dependency.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from ragcli.loaders.text import decode_document, sections_from_headings, shorten
from ragcli.models import ParsedDocument

_FRONT_MATTER_TITLE = re.compile(r"""^title:[ \t]*["']?(.*?)["']?[ \t]*$""", re.MULTILINE)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# A tag whose quoted attribute values may hold "<" and ">" (the Rust book's caption="… `Option<i32>`").
_TAG = re.compile(
    r"""</?[A-Za-z][\w:.-]*(?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*\s*/?>"""
    r"|<![^<>]*>|<\?.*?\?>",
    re.DOTALL,
)
# mdBook's include directives ({{#include file.rs}}, {{#rustdoc_include …}}): build-time, not text.
_MDBOOK_DIRECTIVE = re.compile(r"^\{\{#\w+[^}]*\}\}$")
_BLANK_RUNS = re.compile(r"\n{3,}")

_parser: Any = None


class MarkdownLoader:
    name = "markdown"
    # 2: mdBook include directives inside code fences dropped; a heading always ends its paragraph; a
    # table is a paragraph of its own; footnote markers dropped.
    version = 2

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        source, metadata = decode_document(path, data)
        front_matter_end, front_title = _front_matter(source)
        text, headings = render(source[front_matter_end:])
        title = front_title or (headings[0][2] if headings else None) or path.name
        return ParsedDocument(
            text=text,
            title=shorten(title),
            sections=sections_from_headings(text, headings),
            metadata=metadata,
        )


def _markdown_it() -> Any:
    global _parser
    if _parser is None:
        from markdown_it import MarkdownIt

        _parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return _parser


def render(source: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The visible text of a Markdown source, and its (offset, level, text) headings."""
    writer = _Writer()
    heading_level: int | None = None
    setext = False
    cells: list[str] | None = None
    first_row = False
    for token in _markdown_it().parse(source):
        kind = token.type
        if kind == "heading_open":
            heading_level = int(token.tag[1:])
            setext = token.markup[:1] in {"=", "-"}
        elif kind == "inline":
            content = _inline_text(token.children or [])
            if cells is not None:
                cells.append(" ".join(content.split()))
            elif heading_level is not None and not (setext and "\n" in content):
                writer.heading(heading_level, " ".join(content.split()))
            elif not _MDBOOK_DIRECTIVE.match(content):
                writer.block(content, tight=writer.tight)
        elif kind == "heading_close":
            heading_level = None
        elif kind in {"fence", "code_block"}:
            # A listing that only includes a file at build time ({{#rustdoc_include …}}) shows nothing here.
            lines = token.content.rstrip("\n").split("\n")
            writer.block("\n".join(line for line in lines if not _MDBOOK_DIRECTIVE.match(line.strip())), code=True)
        elif kind == "html_block":
            writer.block(strip_tags(token.content))
        elif kind == "table_open":
            first_row = True
        elif kind == "tr_open":
            cells = []
        elif kind == "tr_close" and cells is not None:
            # One row a line, the table a paragraph of its own (not run on from the text above it).
            writer.block(" | ".join(cells), tight=not first_row)
            cells, first_row = None, False
        elif kind == "paragraph_open":
            writer.tight = token.hidden  # paragraphs of a tight list item: one line each
    return writer.text(), writer.headings


def _inline_text(children: list[Any]) -> str:
    parts: list[str] = []
    footnote = False
    for index, child in enumerate(children):
        kind = child.type
        if kind == "link_open":
            # "[^siphash]" with a "[^siphash]: URL" line is a footnote marker that CommonMark reads as a
            # link: its text is not part of the sentence ("hash tables^siphash").
            following = children[index + 1] if index + 1 < len(children) else None
            footnote = following is not None and following.type == "text" and following.content.startswith("^")
        elif kind == "link_close":
            footnote = False
        elif footnote:
            continue
        elif kind in {"text", "code_inline"}:
            parts.append(child.content)
        elif kind in {"softbreak", "hardbreak"}:
            parts.append("\n")
        elif kind == "image":
            parts.append(_inline_text(child.children or []))
        elif kind == "html_inline" and re.match(r"<br\s*/?>", child.content, re.IGNORECASE):
            parts.append("\n")  # other inline tags are markup a browser would not show
    return "".join(parts).strip()


def strip_tags(markup: str) -> str:
    """Text of an HTML fragment embedded in Markdown: comments and tags removed, entities decoded."""
    text = _TAG.sub("", _COMMENT.sub("", markup))
    return html.unescape(_BLANK_RUNS.sub("\n\n", text)).strip()


class _Writer:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.headings: list[tuple[int, int, str]] = []
        self.tight = False
        self._after_heading = False

    def block(self, content: str, *, tight: bool = False, code: bool = False) -> None:
        if not code:
            content = content.strip()
        if not content.strip():
            return
        if self._parts:
            # A tight list's items go one to a line, but never onto the heading's: "Breaking changes" over
            # "- The protocol moved …" read as one sentence.
            self._append("\n" if tight and not self._after_heading else "\n\n")
        self._append(content)
        self._after_heading = False

    def heading(self, level: int, content: str) -> None:
        if not content:
            return
        if self._parts:
            self._append("\n\n")
        self.headings.append((self._length, level, content))
        self._append(content)
        self._after_heading = True

    def _append(self, piece: str) -> None:
        self._parts.append(piece)
        self._length += len(piece)

    def text(self) -> str:
        return "".join(self._parts)


def _front_matter(text: str) -> tuple[int, str | None]:
    """Offset where YAML front matter ends (0 if there is none) and its `title:` value."""
    if not text.startswith("---\n"):
        return 0, None
    close = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], re.MULTILINE)
    if close is None:
        return 0, None
    end = 4 + close.end()
    found = _FRONT_MATTER_TITLE.search(text, 4, 4 + close.start())
    return end, (found.group(1).strip() or None) if found else None
