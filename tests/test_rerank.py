"""Cross-encoder rerankers, run for real: the bundled int8 ms-marco MiniLM (ONNX) and, with the `st` extra,
a small CrossEncoder folder written by the test (random weights: it proves loading and plumbing, not
relevance)."""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.config import RerankConfig
from ragcli.errors import ModelError
from ragcli.models_path import RERANKER_EN, bundled_model_dir
from ragcli.rerank import get_reranker
from ragcli.rerank.onnx import OnnxCrossEncoder

# (query, relevant passage, passages on neighbouring topics that do not answer it)
JUDGED = [
    (
        "how do vaccines train the immune system",
        "Vaccines expose the immune system to a harmless piece or weakened form of a pathogen, so that "
        "B cells and T cells learn to recognise it and respond quickly to a later infection.",
        [
            "The immune system can overreact to pollen, which causes the sneezing of hay fever.",
            "Antibiotics kill bacteria or stop them from growing, but they have no effect on viruses.",
        ],
    ),
    (
        "what is the boiling point of water at sea level",
        "At standard atmospheric pressure, as found at sea level, pure water boils at 100 degrees Celsius "
        "(212 degrees Fahrenheit).",
        [
            "Sea level has risen by about 20 centimetres since 1900 as oceans warm and glaciers melt.",
            "Salt water freezes at a lower temperature than fresh water because of the dissolved salt.",
        ],
    ),
    (
        "who wrote the novel pride and prejudice",
        "Pride and Prejudice is an 1813 novel by Jane Austen that follows Elizabeth Bennet and her "
        "quarrels with the proud Mr Darcy.",
        [
            "Prejudice in hiring decisions has been measured by sending identical CVs under different names.",
            "Charles Dickens wrote Great Expectations, which was published in instalments from 1860.",
        ],
    ),
]

QUERY = "why do cats purr"
# Distinct token lengths, deliberately not in length order, so the internal sort reorders them.
PASSAGES = [
    "Cats purr when content, and also to soothe themselves when hurt or frightened; the sound comes from "
    "rapid twitching of the muscles of the larynx as the cat breathes in and out.",
    "Purring cats.",
    "Interest rates were left unchanged by the central bank at its meeting on Thursday afternoon.",
    "Dogs bark.",
    "Lions roar to mark their territory, and a roar can be heard five miles away.",
]


@pytest.fixture(scope="module")
def reranker() -> Any:
    return get_reranker(RerankConfig())  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def reranker_dir() -> Path:
    return bundled_model_dir(RERANKER_EN)


@pytest.mark.parametrize(("query", "relevant", "others"), JUDGED, ids=["vaccines", "boiling", "austen"])
def test_relevant_passage_scores_above_unrelated_ones(reranker: Any, query: str, relevant: str, others: list[str]) -> None:
    scores = reranker.score(query, [*others, relevant])
    assert len(scores) == 3
    assert scores[-1] > max(scores[:-1])


def test_scores_come_back_in_input_order(reranker_dir: Path) -> None:
    # Small batches: several batches run, each assembled from the length-sorted pairs.
    small_batches = OnnxCrossEncoder(reranker_dir, name="ms-marco", batch_size=2)
    forward = small_batches.score(QUERY, PASSAGES)
    backward = small_batches.score(QUERY, PASSAGES[::-1])[::-1]
    # Lengths are distinct, so both calls run the same batches: the same numbers, only differently placed.
    np.testing.assert_allclose(forward, backward, atol=1e-4)
    assert forward[0] == max(forward)  # the passage that answers, first in the input


def test_a_pairs_score_does_not_depend_on_the_others_or_on_the_workers(reranker: Any, reranker_dir: Path) -> None:
    """The default scores each pair in a run of its own, the runs spread over one worker per core."""
    assert reranker.batch_size == 1 and reranker.workers == len(os.sched_getaffinity(0))
    alone = [reranker.score(QUERY, [p])[0] for p in PASSAGES]
    together = reranker.score(QUERY, PASSAGES)
    one_worker = OnnxCrossEncoder(reranker_dir, name="ms-marco", threads=1).score(QUERY, PASSAGES)
    assert together == alone == one_worker  # exactly: the same runs, in whatever order they ran
    # Batched, the int8 model's dynamic quantisation moves scores slightly; the ranking must not move.
    batched = OnnxCrossEncoder(reranker_dir, name="ms-marco", batch_size=16).score(QUERY, PASSAGES)
    assert list(np.argsort(batched)) == list(np.argsort(alone))
    assert not np.allclose(batched, alone, atol=1e-4)  # which is why a pair is scored alone


def test_concurrent_callers_share_the_workers_and_get_their_own_scores(reranker: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    expected = {query: reranker.score(query, [relevant, *others]) for query, relevant, others in JUDGED}
    with ThreadPoolExecutor(6) as callers:
        got = list(callers.map(lambda row: (row[0], reranker.score(row[0], [row[1], *row[2]])), JUDGED * 4))
    assert all(scores == expected[query] for query, scores in got)
    assert reranker._runs._pool._max_workers == reranker.workers  # one pool, however many callers


def test_long_passages_are_cut_to_max_tokens(reranker_dir: Path) -> None:
    short_budget = OnnxCrossEncoder(reranker_dir, name="ms-marco", max_tokens=64)
    answer = PASSAGES[0]
    padding = " The weather that week was unremarkable." * 800  # ~5,000 tokens, far past the model's 512
    scores = short_budget.score(QUERY, [answer + padding, PASSAGES[2] + padding])
    assert all(math.isfinite(s) for s in scores)
    assert scores[0] > scores[1]  # the beginning of the passage survives the cut
    assert short_budget.tokens_processed == 2 * 64


def test_truncation_shortens_the_passage_not_the_question(reranker_dir: Path) -> None:
    short_budget = OnnxCrossEncoder(reranker_dir, name="ms-marco", max_tokens=32)
    query = "which muscles of the larynx make the purring sound of a domestic cat"
    (encoding,) = short_budget._encode_pairs(query, ["word " * 500])
    question_tokens = encoding.tokens[: encoding.tokens.index("[SEP]")]
    assert " ".join(question_tokens).replace(" ##", "") == "[CLS] " + query
    assert len(encoding.ids) == 32


def test_question_longer_than_the_budget_is_cut_without_error(reranker_dir: Path) -> None:
    short_budget = OnnxCrossEncoder(reranker_dir, name="ms-marco", max_tokens=32)
    scores = short_budget.score("why do cats purr " * 100, PASSAGES[:2])
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores)
    assert short_budget.tokens_processed <= 2 * 32


def test_max_tokens_beyond_the_model_is_clamped(reranker_dir: Path) -> None:
    too_long = OnnxCrossEncoder(reranker_dir, name="ms-marco", max_tokens=2000)
    assert too_long.max_tokens == 512
    assert len(too_long.score(QUERY, ["purr " * 600])) == 1


def test_no_passages_gives_no_scores(reranker: Any) -> None:
    before = reranker.pairs_scored
    assert reranker.score(QUERY, []) == []
    assert reranker.pairs_scored == before


def test_counters_count_pairs_and_tokens(reranker_dir: Path) -> None:
    counted = OnnxCrossEncoder(reranker_dir, name="ms-marco", batch_size=2)
    counted.score(QUERY, PASSAGES)
    counted.score(QUERY, PASSAGES[:1])
    assert (counted.calls, counted.pairs_scored, counted.batches_run) == (2, 6, 4)
    assert 6 * 8 < counted.tokens_processed < 6 * 64
    counted.reset_counters()
    assert (counted.calls, counted.pairs_scored, counted.tokens_processed, counted.batches_run) == (0, 0, 0, 0)


def test_get_reranker_rejects_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown rerank backend 'nope'"):
        get_reranker(RerankConfig.model_construct(backend="nope"))


def test_missing_model_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        get_reranker(RerankConfig(model_path=str(tmp_path / "absent")))  # type: ignore[call-arg]


def test_folder_without_onnx_model_is_a_model_error(tmp_path: Path, reranker_dir: Path) -> None:
    shutil.copy(reranker_dir / "tokenizer.json", tmp_path)
    with pytest.raises(ModelError, match=r"No model\.onnx"):
        get_reranker(RerankConfig(model_path=str(tmp_path)))  # type: ignore[call-arg]


def test_corrupt_onnx_model_is_a_model_error(tmp_path: Path, reranker_dir: Path) -> None:
    shutil.copy(reranker_dir / "tokenizer.json", tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(ModelError, match="Cannot load ONNX model"):
        get_reranker(RerankConfig(model_path=str(tmp_path)))  # type: ignore[call-arg]


def test_unknown_bundled_model_name_is_a_model_error() -> None:
    with pytest.raises(ModelError, match=r"No bundled ONNX model .*rerank\.model"):
        get_reranker(RerankConfig(model="bge-reranker-large"))  # type: ignore[call-arg]


# --- sentence-transformers backend -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory, reranker_dir: Path) -> Path:
    """A 2-layer BERT cross-encoder with random weights, saved as a Hugging Face folder (no download)."""
    pytest.importorskip("sentence_transformers")
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=1,
        initializer_range=0.5,  # spreads the random scores so that a mix-up of order shows
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(reranker_dir / name, folder)
    return folder


def _st_config(model_path: Path, **overrides: Any) -> RerankConfig:
    return RerankConfig(backend="sentence-transformers", model_path=str(model_path), **overrides)  # type: ignore[call-arg]


@pytest.mark.st
@pytest.mark.slow
def test_st_backend_scores_a_local_cross_encoder_in_input_order(tiny_cross_encoder: Path) -> None:
    reranker = get_reranker(_st_config(tiny_cross_encoder, max_tokens=64, batch_size=2))
    batched = reranker.score(QUERY, PASSAGES)
    alone = [reranker.score(QUERY, [p])[0] for p in PASSAGES]
    np.testing.assert_allclose(batched, alone, atol=1e-4)
    assert len(set(np.round(batched, 3))) == len(PASSAGES)  # distinct, so a reordering would be caught
    assert reranker.score(QUERY, []) == []


@pytest.mark.st
@pytest.mark.slow
def test_st_backend_cuts_pairs_longer_than_the_model(tiny_cross_encoder: Path) -> None:
    # The model has 64 positions; an uncut 3,000-word passage would crash it.
    reranker = get_reranker(_st_config(tiny_cross_encoder, max_tokens=64))
    scores = reranker.score(QUERY, ["purr " * 3000, "short"])
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores)


@pytest.mark.st
def test_st_backend_rejects_a_folder_that_is_not_a_model(tmp_path: Path, reranker_dir: Path) -> None:
    pytest.importorskip("sentence_transformers")
    shutil.copy(reranker_dir / "tokenizer.json", tmp_path)  # a tokenizer but no config or weights
    with pytest.raises(ModelError, match="Cannot load a CrossEncoder"):
        get_reranker(_st_config(tmp_path))


def test_st_backend_needs_a_model_path() -> None:
    with pytest.raises(ModelError, match="needs a local model folder"):
        get_reranker(RerankConfig(backend="sentence-transformers"))  # type: ignore[call-arg]


def test_st_backend_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        get_reranker(_st_config(tmp_path / "absent"))


def test_st_backend_without_the_extra_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail as if absent
    with pytest.raises(ModelError, match="not installed") as excinfo:
        get_reranker(_st_config(tmp_path))
    assert excinfo.value.hint == "pip install 'ragcli[st]'"
