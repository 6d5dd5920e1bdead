"""Topic-aware chunks: sentences stay together while they keep talking about the same thing.

The text is cut into sentences (sentence ends, blank lines, and lines that start a Markdown block such
as a heading, list item, quote or table row). Each sentence is embedded once. Sentences are then grouped
left to right; sentence i starts a new chunk when

    sim(i) < baseline - threshold

where sim(i) is the cosine similarity between sentence i and the mean of the last `window` sentences of
the current chunk, and baseline is the running mean of the similarities already accepted into the
current chunk, seeded with the mean similarity of adjacent sentences over the whole text (so it adapts
both to the embedding model, whose similarities may all sit around 0.8 or around 0.2, and to the
text). `threshold` is therefore "how far similarity must drop below what is usual here": 0 splits at
every below-average join, 1 practically never splits on topic.

A chunk also ends when the next sentence would take it past chunk_size tokens; a group that still
re-encodes too large (a single long sentence, say) is split by the recursive chunker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ragcli.chunking.fixed import TokenIndex, strip_range, validate_sizes
from ragcli.chunking.recursive import SENTENCE_END, RecursiveChunker, cut_ranges
from ragcli.models import Span
from ragcli.tokens import count_tokens

if TYPE_CHECKING:
    import numpy as np

    from ragcli.embedding import Embedder

logger = logging.getLogger(__name__)

# Blank lines, and line breaks before a Markdown block (heading, list item, quote, table row).
_BLOCK_BREAK = re.compile(r"\n\s*\n\s*|\n(?=[ \t]*(?:[#>|]|[-*+][ \t]|\d{1,9}[.)][ \t]))")
_HEADING_LINE = re.compile(r"[ ]{0,3}#{1,6}[ \t]")
EMBED_BATCH = 128
WINDOW = 2


class SemanticChunker:
    name = "semantic"

    def __init__(
        self, embedder: Embedder, chunk_size: int, threshold: float, *, window: int = WINDOW
    ) -> None:
        validate_sizes(chunk_size, 0)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.threshold = threshold
        self.window = window
        self._fallback = RecursiveChunker(chunk_size, 0)

    def split(self, text: str) -> list[Span]:
        sentences = split_sentences(text)
        if not sentences:
            return []
        groups = self._group(sentences, TokenIndex(text), self._embed(text, sentences))
        spans: list[Span] = []
        for first, stop in groups:
            spans.extend(self._sized(text, sentences[first][0], sentences[stop - 1][1]))
        return spans

    def _embed(self, text: str, sentences: list[tuple[int, int]]) -> np.ndarray | None:
        import numpy as np

        if len(sentences) < 2:
            return None
        texts = [text[a:b] for a, b in sentences]
        batches = [
            np.asarray(self.embedder.embed_documents(texts[i : i + EMBED_BATCH]), dtype=np.float32)
            for i in range(0, len(texts), EMBED_BATCH)
        ]
        return np.concatenate(batches)

    def _group(
        self, sentences: Sequence[tuple[int, int]], tokens: TokenIndex, vectors: np.ndarray | None
    ) -> list[tuple[int, int]]:
        """[first, stop) sentence ranges, one per chunk."""
        import numpy as np

        if vectors is None:
            return [(0, len(sentences))]
        prior = float(np.einsum("ij,ij->i", vectors[:-1], vectors[1:]).mean())
        groups: list[tuple[int, int]] = []
        first = 0
        accepted_sum, accepted_count = 0.0, 0
        for i in range(1, len(sentences)):
            similarity = _cosine(vectors[max(first, i - self.window) : i].sum(axis=0), vectors[i])
            baseline = (prior + accepted_sum) / (1 + accepted_count)
            too_big = tokens.estimate(sentences[first][0], sentences[i][1]) > self.chunk_size
            if too_big or similarity < baseline - self.threshold:
                groups.append((first, i))
                first, accepted_sum, accepted_count = i, 0.0, 0
            else:
                accepted_sum += similarity
                accepted_count += 1
        groups.append((first, len(sentences)))
        return groups

    def _sized(self, text: str, start: int, end: int) -> list[Span]:
        count = count_tokens(text[start:end])
        if count <= self.chunk_size:
            return [Span(start, end, count)]
        return [
            Span(s.start + start, s.end + start, s.token_count) for s in self._fallback.split(text[start:end])
        ]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Stripped, non-empty (start, end) ranges of the sentences of `text`, in order."""
    ranges: list[tuple[int, int]] = []
    for block_start, block_end in cut_ranges(text, 0, len(text), _BLOCK_BREAK):
        line_end = text.find("\n", block_start, block_end)
        if line_end != -1 and _HEADING_LINE.match(text, block_start):  # a heading stands alone
            ranges.append(strip_range(text, block_start, line_end))
            block_start, block_end = strip_range(text, line_end, block_end)
        ranges.extend(cut_ranges(text, block_start, block_end, SENTENCE_END))
    return ranges


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / norm if norm > 0 else 0.0
