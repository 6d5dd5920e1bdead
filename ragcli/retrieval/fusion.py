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


def blend_rankings(
    passages: Sequence[Passage], rerank_scores: Sequence[float], weight: float, k: int = 60
) -> list[Passage]:
    """Reorder by weight/(k + retrieval rank) + (1 - weight)/(k + cross-encoder rank).

    The cross-encoder alone scored below dense retrieval on SciFact (docs/benchmarks.md): it knows the
    words of the pair, not what the retrievers learnt, so its order is fused with theirs rather than
    trusted outright. Ranks, not raw scores, because logits and fused scores are on unrelated scales.
    """
    by_rerank = sorted(range(len(passages)), key=lambda i: (-rerank_scores[i], i))
    rerank_rank = {i: rank for rank, i in enumerate(by_rerank, 1)}
    fused = {i: weight / (k + i + 1) + (1.0 - weight) / (k + rerank_rank[i]) for i in range(len(passages))}
    ordered = sorted(fused, key=lambda i: (-fused[i], i))
    return [replace(passages[i], score=fused[i]) for i in ordered]
