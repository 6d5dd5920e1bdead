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
