"""Fixed-size token windows, and the span helpers the other chunkers share.

A window of tokens is mapped back to characters through the byte length of each token. A character
whose UTF-8 bytes are split across two tokens belongs to the window in which it ends, so window
boundaries always land on character boundaries and neighbouring windows (with no overlap) meet exactly.
Re-encoding a window's text can give a token or so more than the window held (BPE merges differ at the
edges), so every window is counted again and shortened until it fits: the bound is strict.
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
from typing import TYPE_CHECKING

from ragcli.models import Span
from ragcli.tokens import count_tokens, get_encoding

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

# A character is at most 4 UTF-8 bytes, so at most 4 tokens: any smaller bound could be impossible to meet.
MIN_CHUNK_SIZE = 4
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def validate_sizes(chunk_size: int, chunk_overlap: int) -> None:
    if chunk_size < MIN_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be at least {MIN_CHUNK_SIZE} tokens, got {chunk_size}")
    if chunk_overlap < 0:
        raise ValueError(f"chunk_overlap must not be negative, got {chunk_overlap}")
    if chunk_overlap >= chunk_size:
        raise ValueError(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})")


def strip_range(text: str, start: int, end: int) -> tuple[int, int]:
    """The range without its leading and trailing whitespace (start == end when nothing is left)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class FixedTokenChunker:
    name = "fixed"

    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        validate_sizes(chunk_size, chunk_overlap)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def split(self, text: str) -> list[Span]:
        return token_windows(text, 0, len(text), self.chunk_size, self.chunk_overlap)


def token_windows(text: str, start: int, end: int, size: int, overlap: int) -> list[Span]:
    """Windows of `size` tokens over text[start:end], each next one starting `overlap` tokens back."""
    segment = text[start:end]
    if not segment or segment.isspace():
        return []
    bounds = token_char_bounds(segment)
    n_tokens = len(bounds) - 1
    spans: list[Span] = []
    first = 0
    while first < n_tokens:
        last, window = _fitting_window(segment, bounds, first, min(first + size, n_tokens), size)
        for span in window:
            _append_window(spans, Span(span.start + start, span.end + start, span.token_count))
        if last >= n_tokens:
            break
        # Never step back to (or before) this window's start, or a shortened window could repeat forever.
        first = max(first + 1, last - overlap)
    return spans


def _append_window(spans: list[Span], span: Span) -> None:
    # Neighbouring token boundaries can snap (or strip) to the same character; of two windows with one
    # start the longer contains the shorter, so keep only it and starts stay strictly increasing.
    if spans and span.start <= spans[-1].start:
        if span.end > spans[-1].end:
            spans[-1] = span
        return
    spans.append(span)


def _fitting_window(
    segment: str, bounds: list[int], first: int, last: int, size: int
) -> tuple[int, list[Span]]:
    """Shorten tokens [first, last) until their stripped text re-encodes to at most `size` tokens."""
    while True:
        a, b = strip_range(segment, bounds[first], bounds[last])
        if a == b:
            return last, []
        count = count_tokens(segment[a:b])
        if count <= size:
            return last, [Span(a, b, count)]
        if last - first == 1:
            # Not seen with cl100k (one token's characters re-encode to a few tokens at most), but the
            # bound must hold regardless.
            logger.debug(
                "token %d re-encodes to %d > %d tokens; splitting it by characters", first, count, size
            )
            return last, character_windows(segment, a, b, size)
        last = max(first + 1, last - (count - size))


def character_windows(text: str, start: int, end: int, size: int) -> list[Span]:
    """Greedy runs of whole characters of at most `size` tokens; a last resort for tiny windows."""
    spans: list[Span] = []
    a = start
    while a < end:
        b = a + 1
        while b < end and count_tokens(text[a : b + 1]) <= size:
            b += 1
        sa, sb = strip_range(text, a, b)
        if sa < sb:
            spans.append(Span(sa, sb, count_tokens(text[sa:sb])))
        a = b
    return spans


class TokenIndex:
    """Where the tokens of a whole text fall, to estimate any range's size without encoding it again.

    The estimate is the number of the text's tokens that overlap the range. Encoding the range on its
    own usually gives exactly that; at the edges BPE may merge differently by a token or so, so callers
    that record a size count the final chunk for real.
    """

    def __init__(self, text: str) -> None:
        self._bounds = token_char_bounds(text)
        self._n_tokens = len(self._bounds) - 1

    def estimate(self, start: int, end: int) -> int:
        starting_before_end = bisect.bisect_left(self._bounds, end, 0, self._n_tokens)
        ended_by_start = bisect.bisect_right(self._bounds, start, 1, self._n_tokens + 1) - 1
        return starting_before_end - ended_by_start


def token_char_bounds(segment: str) -> list[int]:
    """Character offset of every token boundary of `segment` (n_tokens + 1 entries, first 0, last len)."""
    import numpy as np

    try:
        tokens = get_encoding().encode_to_numpy(segment, disallowed_special=())
    except UnicodeEncodeError:
        # tiktoken's encode() turns a lone surrogate (text decoded with surrogateescape, say) into U+FFFD;
        # its numpy variant raises instead. Same length, so character offsets are unchanged.
        segment = _LONE_SURROGATE.sub("\ufffd", segment)
        tokens = get_encoding().encode_to_numpy(segment, disallowed_special=())
    byte_bounds = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum(_token_byte_lengths()[tokens], out=byte_bounds[1:])
    if segment.isascii():
        return list(byte_bounds.tolist())
    data = np.frombuffer(segment.encode("utf-8"), dtype=np.uint8)
    starts_char = (data & 0xC0) != 0x80
    char_of_byte = np.empty(len(data) + 1, dtype=np.int64)
    np.cumsum(starts_char, out=char_of_byte[:-1])
    char_of_byte[:-1] -= 1  # a continuation byte maps to the character it belongs to: a boundary snaps back
    char_of_byte[-1] = len(segment)
    return list(char_of_byte[byte_bounds].tolist())


@functools.cache
def _token_byte_lengths() -> np.ndarray:
    import numpy as np

    encoding = get_encoding()
    lengths = np.zeros(encoding.n_vocab, dtype=np.int64)
    for token in range(encoding.n_vocab):
        try:
            lengths[token] = len(encoding.decode_single_token_bytes(token))
        except KeyError:  # cl100k has unused ids between the ordinary and the special tokens
            continue
    return lengths
