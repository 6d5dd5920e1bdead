"""A sentence splitter for English prose that leaves code, lists and tables alone.

The text is read line by line. Lines that carry structure are units of their own: list items (with
their indented continuation lines), Markdown headings, table rows, rules and setext/reST underlines,
and every line of fenced or indented code (a "." in `obj.method()` ends nothing). Consecutive prose
lines form a paragraph (hard-wrapped text is common), which is cut at sentence ends:

- `.`, `!`, `?` or `…` (perhaps followed by closing quotes or brackets, and by reference marks as
  Wikipedia prints them, `.[12]`, `.[citation needed]`, `.:116`) and then whitespace;
- not when the next word starts with a lowercase letter (`e.g. the`, `approx. three`);
- not after an abbreviation that never ends a sentence (`Dr.`, `e.g.`, `vs.`, an initial like `J.`),
  nor after one that is followed by a number (`Fig. 3`, `No. 5`); `etc.` or `U.S.` before a capital
  does end one (the cheaper mistake: a sentence cut in two still keeps its words);
- decimals, versions and URLs (`3.5`, `v2.0.1`, `example.com`) have no whitespace after the dot;
- CJK full stops end a sentence with or without whitespace.

Spans are offsets into the text given, stripped of surrounding whitespace, so every sentence is a
verbatim slice of its source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Never the end of a sentence: a name, an example or a citation follows.
_NEVER_FINAL = frozenset(
    """
    mr mrs ms mx dr prof sr jr st rev gen col capt lt sgt hon gov sen supt
    e.g eg i.e ie cf vs v viz approx appx ca esp incl resp al ibid
    """.split()  # noqa: SIM905 - a word list reads best as words
)
# Not the end when a number follows ("Fig. 3", "No. 5", "Jan. 2020"); these are words as well ("no").
_BEFORE_NUMBER = frozenset(
    """
    no nos fig figs eq eqs sec ch chap vol vols pp p ref refs art para op ed
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()  # noqa: SIM905 - a word list reads best as words
)

# A reference, an editor's note or a page may follow the full stop: "… in 1530.[12] The", "….[citation
# needed] A", "… of colonialism.:116 Thus".
_CANDIDATE_END = re.compile(
    r"[.!?…]+[\"'”’)\]]*(?:\[[^\[\]\n]{1,40}\])*(?::\d{1,4}(?:[–-]\d{1,4})?)?(?=\s|$)|[。！？]+[\"'”’)\]]*"
)
_CJK_END = frozenset("。！？")
_OPENERS = "\"'“‘(["

_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")
# Capital-letter markers only with ")": "J. Smith" may start a wrapped line of prose.
_LIST_ITEM = re.compile(
    r"^([ \t]*)(?:[-*+•‣◦▪]|\d{1,9}[.)]|[a-z][.)]|[A-Z]\)|\((?:\d{1,3}|[A-Za-z]|[ivxlcdm]{1,6})\))[ \t]+\S"
)
_HEADING = re.compile(r"^[ ]{0,3}#{1,6}(?:[ \t]|$)")
_TABLE_ROW = re.compile(r"^[ \t]*\|")
_RULE_OR_UNDERLINE = re.compile(r"^[ \t]*([=\-~^\"'`#*+:._])\1{2,}[ \t]*$")
_INDENTED_CODE = re.compile(r"^(?: {4}|\t)")


def split_sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence or structural line of `text`, in order, without surrounding space."""
    spans: list[tuple[int, int]] = []
    for kind, start, end in _blocks(text):
        if kind == "prose":
            spans.extend(_prose_sentences(text, start, end))
        else:
            span = _stripped(text, start, end)
            if span:
                spans.append(span)
    return spans


def item_sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences of the list item `text[start:end]`, cut like a paragraph after its marker ("1. Install
    it. Run it." gives "1. Install it." and "Run it."). `sentence_spans` keeps an item whole, which is
    what compression wants; an answer wants its sentences."""
    marker = _LIST_ITEM.match(text[start:end])
    if marker is None:
        return [(start, end)]
    sentences = list(_prose_sentences(text, start + marker.end() - 1, end))
    if sentences:
        sentences[0] = (start, sentences[0][1])
    return sentences


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line, end before its newline; only "\\n" ends a line ("\\r" is stripped later)."""
    start = 0
    while start <= len(text):
        newline = text.find("\n", start)
        end = len(text) if newline < 0 else newline
        yield start, end
        if newline < 0:
            return
        start = newline + 1


def _blocks(text: str) -> Iterator[tuple[str, int, int]]:
    """("prose" | "unit", start, end) blocks; a prose block is a paragraph to be cut into sentences."""
    paragraph: tuple[int, int] | None = None
    item: tuple[int, int, int] | None = None  # open list item: start, end, indent of its marker
    fence: str | None = None

    def flush() -> Iterator[tuple[str, int, int]]:
        nonlocal paragraph, item
        if paragraph is not None:
            yield "prose", paragraph[0], paragraph[1]
        if item is not None:
            yield "unit", item[0], item[1]
        paragraph = item = None

    for start, end in _lines(text):
        line = text[start:end]
        if fence is not None:
            yield from flush()
            if line.strip():
                yield "unit", start, end
            if line.lstrip(" ").startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if not line.strip():
            yield from flush()
            continue
        opener = _FENCE.match(line)
        if opener:
            yield from flush()
            fence = opener.group(1)
            yield "unit", start, end
            continue
        list_item = _LIST_ITEM.match(line)
        if list_item:
            yield from flush()
            item = (start, end, len(list_item.group(1).expandtabs(4)))
            continue
        if item is not None and _indent(line) > item[2] and not _is_structural(line, in_paragraph=True):
            item = (item[0], end, item[2])  # a wrapped list item goes on
            continue
        if _is_structural(line, in_paragraph=paragraph is not None):
            yield from flush()
            yield "unit", start, end
            continue
        if item is not None:
            yield from flush()
        paragraph = (start, end) if paragraph is None else (paragraph[0], end)
    yield from flush()


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _is_structural(line: str, in_paragraph: bool) -> bool:
    if _HEADING.match(line) or _TABLE_ROW.match(line) or _RULE_OR_UNDERLINE.match(line):
        return True
    # Indented code cannot interrupt a paragraph (an indented wrapped line is still prose), as in Markdown.
    return not in_paragraph and bool(_INDENTED_CODE.match(line))


def _prose_sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    position = start
    for match in _CANDIDATE_END.finditer(text, start, end):
        if not _ends_sentence(text, match.start(), match.end(), end):
            continue
        span = _stripped(text, position, match.end())
        if span:
            yield span
        position = match.end()
    span = _stripped(text, position, end)
    if span:
        yield span


def _ends_sentence(text: str, mark_start: int, mark_end: int, limit: int) -> bool:
    marks = text[mark_start:mark_end]
    if marks[0] in _CJK_END:
        return True
    next_char = _next_visible(text, mark_end, limit)
    if next_char is None:
        return True
    if next_char.islower():
        return False
    if not marks.startswith(".") or marks.startswith(".."):
        return True
    word = _word_before(text, mark_start).lower()
    if word in _NEVER_FINAL:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial, as in "J. R. R. Tolkien"
    return not (word in _BEFORE_NUMBER and next_char.isdigit())


def _word_before(text: str, position: int) -> str:
    """The run of characters before `position` back to whitespace or an opening quote or bracket."""
    start = position
    while start > 0 and not (text[start - 1].isspace() or text[start - 1] in _OPENERS):
        start -= 1
    return text[start:position]


def _next_visible(text: str, position: int, limit: int) -> str | None:
    """The first character after `position` that is not whitespace, an opening quote or a bracket."""
    while position < limit:
        char = text[position]
        if not (char.isspace() or char in _OPENERS):
            return char
        position += 1
    return None


def _stripped(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
