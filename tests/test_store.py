"""The LanceDB store on its own: ANN index threshold, schema versions, literal quoting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragcli.errors import StoreError
from ragcli.models import Chunk
from ragcli.store.lance import EmbedderIdentity, LanceStore, sql_literal


def _fill(store: LanceStore, n: int) -> np.ndarray:
    chunks = [
        Chunk(
            chunk_id=f"{i:032x}", doc_id=f"{i % 40:032x}", source=f"/docs/{i % 40}.md", title="t", heading=None,
            page=None, chunk_index=i, char_start=0, char_end=4, token_count=1, chunk_hash=f"{i:x}",
            doc_hash="d", mtime=0.0, ingested_at=0.0, text=f"text {i}",
        )
        for i in range(n)
    ]  # fmt: skip
    vectors = np.random.default_rng(3).normal(size=(n, 384)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.replace_documents(chunks, vectors, sorted({c.doc_id for c in chunks}))
    return vectors


def test_ann_index_is_built_only_past_the_threshold_and_still_finds_the_nearest(tmp_path: Path) -> None:
    store = LanceStore.open(str(tmp_path / "db"))
    store.ensure_identity(EmbedderIdentity("m", 384), create=True)
    vectors = _fill(store, 600)
    assert store.ensure_vector_index(10_000) is False and not store.has_vector_index()
    assert store.ensure_vector_index(500) is True and store.has_vector_index()
    assert store.ensure_vector_index(500) is False  # built once, then kept up to date by optimize
    hits = store.vector_search(vectors[7], 3)
    assert hits[0].chunk_id == f"{7:032x}" and hits[0].score == pytest.approx(1.0, abs=1e-3)


def test_an_index_from_a_newer_ragcli_is_refused(tmp_path: Path) -> None:
    store = LanceStore.open(str(tmp_path / "db"))
    store.ensure_identity(EmbedderIdentity("m", 384), create=True)
    store._write_meta({"schema_version": "99"})
    with pytest.raises(StoreError, match="schema version 99"):
        LanceStore.open(str(tmp_path / "db")).ensure_identity(EmbedderIdentity("m", 384), create=False)


def test_sql_literal_doubles_quotes_and_refuses_nul() -> None:
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal("'; DROP TABLE chunks; --") == "'''; DROP TABLE chunks; --'"
    with pytest.raises(ValueError):
        sql_literal("a\x00b")
