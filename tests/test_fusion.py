"""Fusing rankings: the retrievers' order with the cross-encoder's (rerank.blend)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragcli.models import Passage
from ragcli.retrieval.fusion import blend_rankings


def passages(n: int) -> list[Passage]:
    return [
        Passage(f"c{i}", f"d{i}", f"/docs/{i}.md", "", None, None, 0, f"text {i}", 1.0 / (i + 1))
        for i in range(n)
    ]


def ids(ranked: list[Passage]) -> list[str]:
    return [p.chunk_id for p in ranked]


def test_weight_zero_is_the_cross_encoder_order() -> None:
    assert ids(blend_rankings(passages(4), [0.1, 3.0, -2.0, 1.0], 0.0)) == ["c1", "c3", "c0", "c2"]


def test_weight_one_keeps_the_retrieval_order() -> None:
    assert ids(blend_rankings(passages(4), [0.1, 3.0, -2.0, 1.0], 1.0)) == ["c0", "c1", "c2", "c3"]


def test_even_blend_lifts_a_candidate_both_orders_like() -> None:
    # Positions scale to 1, 2/3, 1/3, 0; scores 0, 2, 5, 1 to 0, 0.4, 1, 0.2. Half of each:
    # c2 = 1/6 + 1/2 = 0.667 > c1 = 1/3 + 0.2 = 0.533 > c0 = 0.5 + 0 > c3 = 0 + 0.1.
    ranked = blend_rankings(passages(4), [0.0, 2.0, 5.0, 1.0], 0.5)
    assert ids(ranked) == ["c2", "c1", "c0", "c3"]
    assert ranked[0].score == pytest.approx(0.5 / 3 + 0.5)
    assert [round(p.score, 4) for p in ranked] == [0.6667, 0.5333, 0.5, 0.1]


def test_equal_cross_encoder_scores_keep_the_retrieval_order() -> None:
    assert ids(blend_rankings(passages(3), [1.5, 1.5, 1.5], 0.2)) == ["c0", "c1", "c2"]


@given(
    scores=st.lists(st.floats(-20, 20, allow_nan=False), min_size=0, max_size=30),
    weight=st.floats(0, 1),
)
def test_blend_is_a_permutation_that_respects_agreement(scores: list[float], weight: float) -> None:
    given_passages = passages(len(scores))
    ranked = blend_rankings(given_passages, scores, weight)
    assert sorted(ids(ranked)) == sorted(ids(given_passages))
    assert [p.score for p in ranked] == sorted((p.score for p in ranked), reverse=True)
    # Whenever both orders put i before j (retrieval: lower index; cross-encoder: higher score, ties
    # to the lower index), the blend does too, whatever the weight.
    position = {p.chunk_id: n for n, p in enumerate(ranked)}
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            if scores[i] >= scores[j]:
                assert position[f"c{i}"] < position[f"c{j}"]


# ----- hybrid fusion and document-aware ranking ---------------------------------------------------
def scored(pairs: list[tuple[str, float]], doc_of: dict[str, str] | None = None) -> list[Passage]:
    doc_of = doc_of or {}
    return [
        Passage(cid, doc_of.get(cid, cid), f"/docs/{cid}.md", "", None, None, 0, cid, score) for cid, score in pairs
    ]


def test_weighted_rrf_by_hand() -> None:
    from ragcli.retrieval.fusion import weighted_rrf

    vector = scored([("a", 0.9), ("b", 0.8)])
    keyword = scored([("b", 7.0), ("c", 5.0)])
    fused = weighted_rrf([vector, keyword], [0.75, 0.25], k=60)
    # a = .75/61 = .012295 ; b = .75/62 + .25/61 = .012097 + .004098 = .016195 ; c = .25/62 = .004032
    assert ids(fused) == ["b", "a", "c"]
    assert fused[0].score == pytest.approx(0.75 / 62 + 0.25 / 61)
    # Equal weights of 1 are plain RRF.
    from ragcli.retrieval.fusion import reciprocal_rank_fusion

    plain = reciprocal_rank_fusion([vector, keyword], 60)
    assert [(p.chunk_id, p.score) for p in plain] == [
        (p.chunk_id, p.score) for p in weighted_rrf([vector, keyword], [1.0, 1.0], 60)
    ]


def test_peakedness_tells_a_clear_winner_from_a_flat_head() -> None:
    from ragcli.retrieval.fusion import peakedness

    assert peakedness([10.0, 2.0, 1.9, 1.8, 1.7]) > 1.5
    assert peakedness([2.0, 1.99, 1.98, 1.97, 1.96]) < peakedness([10.0, 2.0, 1.9, 1.8, 1.7])
    assert peakedness([1.0, 1.0, 1.0]) == 0.0
    assert peakedness([1.0, 0.5]) == 0.0  # too short to say


def test_adaptive_weight_leans_towards_the_peaked_list() -> None:
    from ragcli.retrieval.fusion import adaptive_weight

    flat = scored([(f"v{i}", 0.80 - i * 0.001) for i in range(10)])
    peaked = scored([("k0", 20.0)] + [(f"k{i}", 3.0 - i * 0.01) for i in range(1, 10)])
    assert adaptive_weight(flat, peaked, 0.5) < 0.5
    assert adaptive_weight(peaked, flat, 0.5) > 0.5
    assert adaptive_weight(flat, [], 0.5) == 1.0
    assert adaptive_weight([], peaked, 0.5) == 0.0


@given(
    st.lists(st.floats(0, 1), min_size=0, max_size=15),
    st.lists(st.floats(0, 30), min_size=0, max_size=15),
    st.floats(0, 1),
)
def test_fusions_return_every_candidate_once(vs: list[float], ks: list[float], weight: float) -> None:
    from ragcli.retrieval.fusion import adaptive_weight, weighted_fusion, weighted_rrf

    vector = scored(sorted(((f"v{i}", s) for i, s in enumerate(vs)), key=lambda t: -t[1]))
    keyword = scored(sorted(((f"v{i * 2}", s) for i, s in enumerate(ks)), key=lambda t: -t[1]))
    expected = {p.chunk_id for p in vector} | {p.chunk_id for p in keyword}
    share = adaptive_weight(vector, keyword, weight)
    assert 0.0 <= share <= 1.0
    for fused in (weighted_fusion(vector, keyword, share), weighted_rrf([vector, keyword], [share, 1 - share])):
        assert sorted(ids(fused)) == sorted(expected)
        assert [p.score for p in fused] == sorted((p.score for p in fused), reverse=True)


def test_document_aware_groups_chunks_and_rewards_several_hits() -> None:
    from ragcli.retrieval.fusion import document_aware

    doc_of = {"a1": "A", "b1": "B", "b2": "B", "b3": "B", "c1": "C"}
    ranked = scored([("a1", 0.50), ("b1", 0.45), ("c1", 0.40), ("b2", 0.30), ("b3", 0.20)], doc_of)
    # decay 0: documents by their best chunk; B's chunks follow b1 together, best first.
    assert ids(document_aware(ranked, 0.0)) == ["a1", "b1", "b2", "b3", "c1"]
    # decay 0.5: B = .45 + .5 * (.30/2 + .20/3) = .5583 > A = .50
    assert ids(document_aware(ranked, 0.5)) == ["b1", "b2", "b3", "a1", "c1"]


def test_fuse_hybrid_dispatches_to_each_method() -> None:
    from ragcli.retrieval.fusion import (
        FUSIONS,
        adaptive_weight,
        fuse_hybrid,
        reciprocal_rank_fusion,
        weighted_fusion,
        weighted_rrf,
    )

    vector = scored([("a", 0.9), ("b", 0.7), ("c", 0.69), ("d", 0.68)])
    keyword = scored([("d", 12.0), ("e", 3.0), ("a", 2.9), ("f", 2.8)])
    expected = {
        "rrf": reciprocal_rank_fusion([vector, keyword], 60),
        "weighted_rrf": weighted_rrf([vector, keyword], [0.7, 1 - 0.7], 60),
        "weighted": weighted_fusion(vector, keyword, 0.7),
        "adaptive": weighted_fusion(vector, keyword, adaptive_weight(vector, keyword, 0.7)),
    }
    assert set(expected) == set(FUSIONS)
    for method, ranking in expected.items():
        assert fuse_hybrid(vector, keyword, method, 0.7, 60) == ranking
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse_hybrid(vector, keyword, "borda", 0.7, 60)


def test_a_rare_term_that_only_two_chunks_hold_is_not_lost_in_a_flat_vector_list() -> None:
    # "What does E23 mean?": the vector list is flat (every error code looks alike to the model), the
    # keyword search finds just two chunks. Both hits must count, the second as much as its score says.
    from ragcli.retrieval.fusion import fuse_hybrid

    flat = scored([(f"v{i}", 0.514 - i * 0.002) for i in range(10)])
    rare = scored([("notes", 3.289), ("e23", 3.257)])
    fused = ids(fuse_hybrid(flat, rare, "adaptive", 0.6, 60))
    assert {"notes", "e23"} <= set(fused[:5])  # both reach the 5 passages an answer reads
