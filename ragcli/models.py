"""Plain data passed between pipeline stages. No heavy imports here: the CLI imports this module."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def doc_id_for(source: str) -> str:
    """A document's id is derived from where it lives, so a changed file keeps its id."""
    return sha256_hex(source)[:32]


def chunk_id_for(doc_id: str, index: int, chunk_hash: str) -> str:
    # Deterministic, so a crashed run that is repeated writes exactly the ids a clean run would.
    return sha256_hex(f"{doc_id}:{index}:{chunk_hash}")[:32]


@dataclass(frozen=True)
class Section:
    """A span of a document's text under one heading path or on one page."""

    start: int
    end: int
    heading: str | None = None
    page: int | None = None


@dataclass
class ParsedDocument:
    """What a loader returns: the visible text, its title, and its sections (spans over `text`)."""

    text: str
    title: str
    sections: list[Section]
    metadata: dict[str, str] = field(default_factory=dict)
    # Documents carried inside this one (an e-mail's attachments): (name, document), each indexed as a
    # document of its own under the source "<parent source>#attachment/<name>".
    attachments: list[tuple[str, ParsedDocument]] = field(default_factory=list)


@dataclass(frozen=True)
class Span:
    """A chunk as a chunker sees it: offsets into the text it was given, and its size in tokens."""

    start: int
    end: int
    token_count: int


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    source: str
    title: str
    heading: str | None
    page: int | None
    chunk_index: int
    char_start: int
    char_end: int
    token_count: int
    chunk_hash: str
    doc_hash: str
    mtime: float
    ingested_at: float
    text: str
    # What is embedded and keyword-indexed: `text` with its title and heading path (chunking.context);
    # empty means `text` itself.
    search_text: str = ""

    @property
    def indexed_text(self) -> str:
        return self.search_text or self.text


@dataclass(frozen=True)
class RawScores:
    """Each retriever's own score for one passage, on its own scale (None: that retriever did not
    return it). Shown under `--json` as `scores`; `retrieval.scores.display_score` reads them.

    vector      cosine similarity of question and passage (−1..1)
    keyword     BM25 (0..unbounded; depends on the question and the corpus)
    rerank      the cross-encoder's relevance logit (about −11..+9)
    fused       the score the fusion step ranked by; `fused_best` is the best it could have been for
                this question (every retriever ranking the passage first), so fused / fused_best is 0..1
    """

    vector: float | None = None
    keyword: float | None = None
    rerank: float | None = None
    fused: float | None = None
    fused_best: float | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as it travels through fusion, reranking, compression and generation."""

    chunk_id: str
    doc_id: str
    source: str
    title: str
    heading: str | None
    page: int | None
    chunk_index: int
    text: str
    score: float
    """The ranking score of the stage that last ordered the passages (scale depends on the stage)."""
    raw: RawScores = RawScores()
    # The chunker's count of `text` (cl100k tokens), as the index stores it: compression needs no
    # tokenizer while the context fits its budget. None where unknown.
    token_count: int | None = None


@dataclass(frozen=True)
class ContextItem:
    """One numbered piece of context handed to a generator; `n` is the citation number [n]."""

    n: int
    text: str
    passage: Passage


@dataclass
class Generation:
    answer: str
    cited: list[int]
    refused: bool
    tokens_in: int
    tokens_out: int
    model: str


REFUSAL = "The documents do not contain the answer."
