"""Fusing ranked lists from vector and keyword search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ragcli.models import Passage

PEAK_DEPTH = 10
# Score-based fusions normalise each list over this many candidates; the engine fetches at least this
# many for them (what the fusion study replayed: benchmarks/retrieval_fusion.py).
NORMALISE_DEPTH = 100


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
    # A keyword list shorter than the normalisation depth holds every chunk that matched at all; the
    # rest score 0 there, so 0 is its floor (else its last hit would count as no hit).
    lists = ((vector, vector_weight, None), (keyword, 1.0 - vector_weight, 0.0))
    for ranking, weight, absent in lists:
        for passage, norm in zip(ranking, _normalised([p.score for p in ranking], absent=absent), strict=True):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + weight * norm
            first.setdefault(passage.chunk_id, passage)
    ordered = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return [replace(first[cid], score=scores[cid]) for cid in ordered]


def weighted_rrf(rankings: Sequence[Sequence[Passage]], weights: Sequence[float], k: int = 60) -> list[Passage]:
    """Reciprocal rank fusion with a weight per list: Σ w / (k + rank)."""
    scores: dict[str, float] = {}
    first: dict[str, Passage] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, passage in enumerate(ranking, 1):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + weight / (k + rank)
            first.setdefault(passage.chunk_id, passage)
    ordered = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return [replace(first[cid], score=scores[cid]) for cid in ordered]


def peakedness(scores: Sequence[float], depth: int = PEAK_DEPTH) -> float:
    """How far a list's best score stands above the rest of its top `depth`, in standard deviations.

    A retriever that is sure of its answer puts it well clear of the runners-up; one that is guessing
    returns a flat head. Raw scores of different retrievers are not comparable, this is.
    """
    head = list(scores[:depth])
    if len(head) < 3:
        return 0.0
    mean = sum(head[1:]) / (len(head) - 1)
    spread = (sum((v - mean) ** 2 for v in head) / len(head)) ** 0.5
    return (head[0] - mean) / spread if spread > 0 else 0.0


def adaptive_weight(vector: Sequence[Passage], keyword: Sequence[Passage], vector_weight: float) -> float:
    """The vector list's share for this query: `vector_weight` moved towards the list whose head is more
    peaked (peakedness), so a confident keyword hit can win while a flat keyword list cannot drag the
    vector list down."""
    if not keyword:
        return 1.0
    if not vector:
        return 0.0
    pv = max(peakedness([p.score for p in vector]), 0.0)
    # Every chunk the keyword search did not return scores 0 there, so a list of one or two hits (a
    # rare term: "E23") is as peaked as a list can be, not too short to judge.
    keyword_scores = [p.score for p in keyword]
    keyword_scores += [0.0] * (PEAK_DEPTH - len(keyword_scores))
    pk = max(peakedness(keyword_scores), 0.0)
    total = vector_weight * pv + (1.0 - vector_weight) * pk
    return vector_weight * pv / total if total > 0 else vector_weight


def document_aware(passages: Sequence[Passage], decay: float) -> list[Passage]:
    """Documents ranked by their best chunk plus `decay` times the harmonically discounted sum of their
    other chunks (decay 0 = best chunk only); each document's chunks stay together, best first.

    Several chunks of one document matching is evidence that the document is about the question; a long
    document must not win on bulk alone, hence the discount.
    """
    by_doc: dict[str, list[Passage]] = {}
    for passage in passages:
        by_doc.setdefault(passage.doc_id, []).append(passage)
    doc_score: dict[str, float] = {}
    for doc_id, chunks in by_doc.items():
        chunks.sort(key=lambda p: -p.score)
        doc_score[doc_id] = chunks[0].score + decay * sum(
            p.score / (i + 1) for i, p in enumerate(chunks[1:], 1)
        )
    order = sorted(by_doc, key=lambda d: (-doc_score[d], by_doc[d][0].chunk_id))
    return [p for doc_id in order for p in by_doc[doc_id]]


def _normalised(values: Sequence[float], depth: int = NORMALISE_DEPTH, absent: float | None = None) -> list[float]:
    """Min-max over the first `depth` values (a ranked list's head), entries below that floor at 0: the
    scale must not depend on how deep a caller fetched (ask fetches 100, eval 200). `absent`: the score
    of everything the list left out, the floor when the list is shorter than `depth`."""
    if not values:
        return []
    low, high = min(values[:depth]), max(values)
    if absent is not None and len(values) < depth:
        low = min(low, absent)
    if high == low:
        return [1.0 for _ in values]
    return [max(0.0, (v - low) / (high - low)) for v in values]


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


FUSIONS = ("rrf", "weighted_rrf", "weighted", "adaptive")


def fuse_hybrid(
    vector: Sequence[Passage], keyword: Sequence[Passage], method: str, vector_weight: float, rrf_k: int
) -> list[Passage]:
    """One ranking from the vector and keyword lists ([retrieval] fusion):

    rrf           Σ 1/(k + rank), both lists alike;
    weighted_rrf  the same with the vector list weighted `vector_weight`, the keyword list the rest;
    weighted      min-max normalised scores mixed `vector_weight` : 1 - `vector_weight`;
    adaptive      `weighted` with the share moved per query towards the more peaked list (adaptive_weight).
    """
    if method == "rrf":
        return reciprocal_rank_fusion([vector, keyword], rrf_k)
    if method == "weighted_rrf":
        return weighted_rrf([vector, keyword], [vector_weight, 1.0 - vector_weight], rrf_k)
    if method == "weighted":
        return weighted_fusion(vector, keyword, vector_weight)
    if method == "adaptive":
        return weighted_fusion(vector, keyword, adaptive_weight(vector, keyword, vector_weight))
    raise ValueError(f"unknown fusion {method!r}; choose one of {', '.join(FUSIONS)}")
