"""Structure-aware splitting: the coarsest boundary that yields pieces small enough wins.

Levels, coarsest first: headings (Markdown ATX `#` lines outside fenced code, and reST/setext titles
underlined with punctuation), blank lines, sentence ends, line breaks, whitespace, and finally token
windows (for a "word" longer than a chunk). At each level the text is cut into pieces; consecutive
pieces that fit are merged greedily into chunks, and a piece that does not fit is split at the next
level on its own. So a chunk never straddles a heading unless both sides fit in it together.

The text is tokenised once; a piece's size is the number of those tokens it overlaps, so cutting and
merging cost no further encoding. Each finished chunk is encoded once more to record its exact size
(BPE can merge a token differently at a chunk's edges); one that turns out too large gives back its
last piece.
"""

from __future__ import annotations

import bisect
import re

from ragcli.chunking.fixed import TokenIndex, strip_range, token_windows, validate_sizes
from ragcli.models import Span
from ragcli.tokens import count_tokens

_HEADING = re.compile(
    r"^[ ]{0,3}\#{1,6}(?:[ \t]|$)"  # Markdown ATX heading
    # reST title (optionally overlined) or Markdown setext heading: a text line over a punctuation line.
    # ([ \t]*\S rather than [^\n]*\S keeps a failed match linear in the line's length.)
    r"|^(?:([=\-~^\"'`#*+:._])\1{2,}[ \t]*\n)?[ \t]*\S[^\n]*\n([=\-~^\"'`#*+:._])\2{2,}[ \t]*$",
    re.MULTILINE,
)
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})[^\n]*\n(?:.*?^[ ]{0,3}\1[ \t]*$|.*\Z)", re.MULTILINE | re.DOTALL)
# A line holding only a quote marker is the blank line of a Markdown block quote: cut before it.
_BLANK_LINES = re.compile(r"\n\s*\n|\n(?=[ \t]*>[ \t]*\n)")
# A sentence end is . ! or ? (perhaps followed by closing quotes or brackets) and whitespace; CJK full
# stops need no whitespace after them.
_END_MARK = r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))"
SENTENCE_END = re.compile(_END_MARK + r"\s+|(?<=[。！？])\s*")
_LINE_BREAK = re.compile(r"\n")
_WHITESPACE = re.compile(r"\s+")

# A line this short that is followed by a long piece is taken for its heading (long paper titles reach ~50 tokens).
HEADING_TOKENS = 64

_LEVELS: tuple[re.Pattern[str] | None, ...] = (
    _HEADING,
    _BLANK_LINES,
    # Sentences before lines: most Markdown prose is hard-wrapped, so its line breaks fall mid-sentence,
    # while text without sentence ends (code, lists, tables) still splits at lines.
    SENTENCE_END,
    _LINE_BREAK,
    _WHITESPACE,
    None,  # token windows
)
PARAGRAPH_LEVEL = _LEVELS.index(_BLANK_LINES)


class RecursiveChunker:
    name = "recursive"

    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        validate_sizes(chunk_size, chunk_overlap)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def split(self, text: str) -> list[Span]:
        start, end = strip_range(text, 0, len(text))
        if start == end:
            return []
        return _Split(text, self.chunk_size, self.chunk_overlap).range(start, end, level=0)


class _Split:
    """One text being split. Pieces are sized from the text's single tokenisation (TokenIndex); only
    finished chunks are encoded again, to record their exact size."""

    def __init__(self, text: str, size: int, overlap: int) -> None:
        self.text = text
        self.size = size
        self.overlap = overlap
        self.tokens = TokenIndex(text)

    def range(self, start: int, end: int, level: int) -> list[Span]:
        """Chunks of text[start:end] (stripped), cutting at `level` and finer levels where needed."""
        if self.tokens.estimate(start, end) <= self.size:
            span = self._measure(start, end)
            if span is not None:
                return [span]
        return self._cut_and_merge(start, end, level)

    def _cut_and_merge(self, start: int, end: int, level: int) -> list[Span]:
        if _LEVELS[level] is None:
            return token_windows(self.text, start, end, self.size, self.overlap)
        pieces = _cut(self.text, start, end, level)
        if len(pieces) == 1:
            return self._cut_and_merge(start, end, level + 1)
        spans: list[Span] = []
        run: list[tuple[int, int]] = []
        for piece in pieces:
            if self.tokens.estimate(*piece) <= self.size:
                run.append(piece)
                continue
            if run and self._heads(run[-1], level):
                # A title or heading line before a piece too big to join whole would become a chunk of its
                # own, which answers nothing: it starts the big piece's first chunk instead.
                piece = (run.pop()[0], piece[1])
            spans.extend(self._merge(run, level))
            run = []
            spans.extend(self._cut_and_merge(*piece, level + 1))
        spans.extend(self._merge(run, level))
        return spans

    def _heads(self, piece: tuple[int, int], level: int) -> bool:
        """A paragraph that is one short line: a title or heading. (Below the paragraph level every
        sentence is one line, and a sentence is no heading.)"""
        if level > PARAGRAPH_LEVEL:
            return False
        return "\n" not in self.text[piece[0] : piece[1]] and self.tokens.estimate(*piece) <= HEADING_TOKENS

    def _merge(self, pieces: list[tuple[int, int]], level: int) -> list[Span]:
        """Greedy chunks of consecutive pieces, each next chunk repeating trailing pieces as overlap."""
        spans: list[Span] = []
        first = 0
        while first < len(pieces):
            stop = self._greedy_stop(pieces, first)
            if stop < len(pieces) and self._heads(pieces[stop - 1], level):
                if stop - 1 == first:
                    # The heading and the piece after it fit only apart: split the two finer, together.
                    spans.extend(self._cut_and_merge(pieces[first][0], pieces[first + 1][1], level + 1))
                    first += 2
                    continue
                stop -= 1  # the heading opens the next chunk rather than closing this one
            span = self._measure(pieces[first][0], pieces[stop - 1][1])
            while span is None and stop - first > 1:  # the estimate was a token or two short
                stop -= 1
                span = self._measure(pieces[first][0], pieces[stop - 1][1])
            if span is None:  # a single piece that only looked small enough
                spans.extend(self._cut_and_merge(*pieces[first], level + 1))
            else:
                spans.append(span)
            if stop >= len(pieces):
                break
            first = self._overlap_start(pieces, first, stop)
        return spans

    def _greedy_stop(self, pieces: list[tuple[int, int]], first: int) -> int:
        start = pieces[first][0]
        stop = first + 1
        while stop < len(pieces) and self.tokens.estimate(start, pieces[stop][1]) <= self.size:
            stop += 1
        return stop

    def _overlap_start(self, pieces: list[tuple[int, int]], first: int, stop: int) -> int:
        """Where the next chunk starts: trailing pieces of this one worth at most `overlap` tokens that
        leave room for the next new piece, and never this chunk's first piece (so chunks advance)."""
        start = stop
        while start - 1 > first:
            candidate = pieces[start - 1][0]
            if self.tokens.estimate(candidate, pieces[stop - 1][1]) > self.overlap:
                break
            if self.tokens.estimate(candidate, pieces[stop][1]) > self.size:
                break
            start -= 1
        return start

    def _measure(self, start: int, end: int) -> Span | None:
        count = count_tokens(self.text[start:end])
        return Span(start, end, count) if count <= self.size else None


def _cut(text: str, start: int, end: int, level: int) -> list[tuple[int, int]]:
    pattern = _LEVELS[level]
    assert pattern is not None
    if level == 0:  # a heading starts the piece it heads: cut before it, consuming nothing
        cuts = [(m.start(), m.start()) for m in pattern.finditer(text, start, end)]
        return ranges_between(text, start, end, _outside_fences(text, start, end, cuts) if cuts else cuts)
    return cut_ranges(text, start, end, pattern)


def cut_ranges(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Stripped, non-empty ranges of text[start:end] between the matches of `separator` (whitespace)."""
    return ranges_between(
        text, start, end, [(m.start(), m.end()) for m in separator.finditer(text, start, end)]
    )


def ranges_between(
    text: str, start: int, end: int, separators: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    position = start
    for sep_start, sep_end in [*separators, (end, end)]:
        a, b = strip_range(text, position, sep_start)
        if a < b:
            ranges.append((a, b))
        position = max(position, sep_end)
    return ranges


def _outside_fences(text: str, start: int, end: int, cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop heading matches inside fenced code blocks (a `# comment` line in a shell script is no heading)."""
    fences = [(m.start(), m.end()) for m in _FENCE.finditer(text, start, end)]
    if not fences:
        return cuts
    fence_starts = [f[0] for f in fences]
    kept = []
    for cut in cuts:
        i = bisect.bisect_right(fence_starts, cut[0]) - 1
        if i >= 0 and fences[i][0] <= cut[0] < fences[i][1]:
            continue
        kept.append(cut)
    return kept
