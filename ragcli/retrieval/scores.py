"""One score a user can read, and the raw per-retriever scores behind it.

Each retriever scores on its own scale (cosine −1..1, BM25 unbounded, RRF about 0.03, cross-encoder
logits about −11..+9), so a citation's `score` is put on 0..1 with one meaning per way the passage was
ranked, best evidence first:

1. reranked by the cross-encoder: sigmoid(logit), the cross-encoder's estimate that the passage is
   relevant to the question (it was trained on relevant / not relevant pairs);
2. fused (hybrid): the fused score divided by the best fused score possible for this question, i.e. the
   score of a passage that every retriever ranked first. RRF: Σ 1/(k + rank) ÷ (n / (k + 1)); weighted
   fusion: already 0..1 (each list min-max scaled, weights summing to 1). 1.0 = first everywhere;
   about 0.5 = near the top of one retriever and missing from the other;
3. keyword only: BM25 relative to this question's best keyword hit (1.0 = the best match);
4. vector only: the cosine similarity, clamped to 0..1.

The raw scores stay available under `--json` as `scores: {vector, keyword, rerank}` per citation. These
functions only read and annotate; they never change an order or the fusion's arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from ragcli.models import Passage, RawScores


def attach_raw_scores(
    fused: Sequence[Passage],
    rankings: Sequence[Sequence[Passage]],
    kinds: Sequence[str],
    *,
    fusion: str | None,
    rrf_k: int,
) -> list[Passage]:
    """`fused` with each passage's vector/keyword scores from `rankings` (kind "vector" or "keyword"
    per ranking; with several queries, the best of each kind) and the fused score with its best case.

    `fusion` is "rrf" or "weighted" when the rankings were fused, None when `fused` is one ranking.
    """
    found: dict[str, dict[str, float]] = {}
    for ranking, kind in zip(rankings, kinds, strict=True):
        for passage in ranking:
            scores = found.setdefault(passage.chunk_id, {})
            scores[kind] = max(scores.get(kind, -math.inf), passage.score)
    best = _best_fused(fusion, len(rankings), rrf_k, fused)
    if fusion is None and kinds and set(kinds) == {"keyword"}:
        best = max((p.score for p in fused), default=None)  # BM25 has no ceiling: relative to the top hit
    annotated = []
    for passage in fused:
        scores = found.get(passage.chunk_id, {})
        raw = RawScores(
            vector=scores.get("vector"),
            keyword=scores.get("keyword"),
            fused=passage.score if best is not None else None,
            fused_best=best,
        )
        annotated.append(replace(passage, raw=raw))
    return annotated


def _best_fused(fusion: str | None, rankings: int, rrf_k: int, fused: Sequence[Passage]) -> float | None:
    if fusion is None:
        return None
    if fusion == "rrf":
        return rankings / (rrf_k + 1)
    if fusion == "weighted":
        return 1.0
    # A fusion method this module does not know: relative to the best passage of this question.
    return max((p.score for p in fused), default=None)


def with_rerank_scores(passages: Sequence[Passage], logits: Sequence[float]) -> list[Passage]:
    return [replace(p, raw=replace(p.raw, rerank=float(s))) for p, s in zip(passages, logits, strict=True)]


def display_score(passage: Passage) -> float:
    """The passage's score on 0..1, as the module docstring defines it."""
    raw = passage.raw
    if raw.rerank is not None:
        return _sigmoid(raw.rerank)
    if raw.fused is not None and raw.fused_best:
        return _unit(raw.fused / raw.fused_best)
    if raw.vector is not None:
        return _unit(raw.vector)
    return _unit(passage.score)  # a passage built without raw scores (tests, other callers)


def raw_scores_json(passage: Passage) -> dict[str, float | None]:
    raw = passage.raw
    return {
        "vector": _rounded(raw.vector),
        "keyword": _rounded(raw.keyword),
        "rerank": _rounded(raw.rerank),
    }


def _sigmoid(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1.0 + exp)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
