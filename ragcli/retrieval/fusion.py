"""Fusing ranked lists from vector and keyword search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ragcli.models import Passage


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Passage]], k: int = 60) -> list[Passage]:
    """Score = Σ 1/(k + rank); robust because it ignores the incomparable raw scores."""
    scores: dict[str, float] = {}
    first: dict[str, Passage] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking, 1):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + 1.0 / (k + rank)
            first.setdefault(passage.chunk_id, passage)
    ordered = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return [replace(first[cid], score=scores[cid]) for cid in ordered]


def weighted_fusion(vector: Sequence[Passage], keyword: Sequence[Passage], vector_weight: float) -> list[Passage]:
    """Min-max normalise each list's scores, then mix them; a missing entry counts as 0."""
    scores: dict[str, float] = {}
    first: dict[str, Passage] = {}
    for ranking, weight in ((vector, vector_weight), (keyword, 1.0 - vector_weight)):
        for passage, norm in zip(ranking, _normalised([p.score for p in ranking]), strict=True):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + weight * norm
            first.setdefault(passage.chunk_id, passage)
    ordered = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return [replace(first[cid], score=scores[cid]) for cid in ordered]


def _normalised(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [1.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


def blend_rankings(passages: Sequence[Passage], rerank_scores: Sequence[float], weight: float) -> list[Passage]:
    """Reorder by weight · retrieval position + (1 - weight) · cross-encoder score, both scaled to 0..1.

    The cross-encoder alone scored below hybrid retrieval on SciFact (docs/benchmarks.md): it reads the
    pair's words but not what the two retrievers agreed on, so its scores are mixed with the fused
    order instead of replacing it. Position (1 for the first candidate, 0 for the last) rather than the
    fused score, because RRF scores are nearly flat; min-max on the logits, because their scale varies
    by question.
    """
    n = len(passages)
    if n < 2:
        return list(passages)
    low, high = min(rerank_scores), max(rerank_scores)
    spread = high - low
    mixed = {
        i: weight * (1.0 - i / (n - 1)) + (1.0 - weight) * ((rerank_scores[i] - low) / spread if spread else 0.0)
        for i in range(n)
    }
    ordered = sorted(mixed, key=lambda i: (-mixed[i], i))
    return [replace(passages[i], score=mixed[i]) for i in ordered]
