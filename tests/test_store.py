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


def _clustered(n: int, seed: int) -> np.ndarray:
    """Vectors in topical clusters, as real embeddings are (uniform random vectors have no neighbours
    worth the name, and no index is built for them)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, 384))
    vectors = centres[rng.integers(0, 40, n)] + rng.normal(scale=0.6, size=(n, 384))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype("float32")


def _chunks(start: int, n: int) -> list[Chunk]:
    return [
        Chunk(
            chunk_id=f"{i:032x}", doc_id=f"{i // 100:032x}", source=f"/docs/{i // 100}.md", title="t",
            heading=None, page=None, chunk_index=i % 100, char_start=0, char_end=4, token_count=1,
            chunk_hash=f"{i:x}", doc_hash="d", mtime=0.0, ingested_at=0.0, text=f"text {i}",
        )
        for i in range(start, start + n)
    ]  # fmt: skip


def _write(store: LanceStore, start: int, n: int, seed: int) -> None:
    chunks = _chunks(start, n)
    store.replace_documents(chunks, _clustered(n, seed), sorted({c.doc_id for c in chunks}))


def test_ann_just_past_a_small_threshold_agrees_with_exact_search(tmp_path: Path) -> None:
    store = LanceStore.open(str(tmp_path / "db"))
    store.ensure_identity(EmbedderIdentity("m", 384), create=True)
    for start in range(0, 3000, 1000):
        _write(store, start, 1000, seed=start)
    assert store.ensure_vector_index(2_500) is True and store.has_vector_index()
    queries = _clustered(30, seed=99)
    agreement = []
    for query in queries:
        exact = {p.chunk_id for p in store.vector_search(query, 10, exact=True)}
        ann = {p.chunk_id for p in store.vector_search(query, 10)}
        agreement.append(len(exact & ann) / 10)
    assert sum(agreement) / len(agreement) >= 0.95, agreement


def test_vector_index_is_rebuilt_once_the_table_outgrows_what_it_was_trained_on(tmp_path: Path) -> None:
    store = LanceStore.open(str(tmp_path / "db"))
    store.ensure_identity(EmbedderIdentity("m", 384), create=True)
    _write(store, 0, 500, seed=1)
    assert store.ensure_vector_index(400) is True
    _write(store, 500, 1000, seed=2)  # 3× the trained rows: kept, optimize folds the rows in
    assert store.ensure_vector_index(400) is False
    _write(store, 1500, 600, seed=3)  # 4.2×: retrained
    assert store.ensure_vector_index(400) is True
    assert store.meta()["ann_trained_rows"] == "2100"


def test_cleanup_keeps_the_configured_versions_and_an_open_reader_keeps_working(tmp_path: Path) -> None:
    uri = str(tmp_path / "db")
    writer = LanceStore.open(uri)
    writer.ensure_identity(EmbedderIdentity("m", 384), create=True)
    _write(writer, 0, 200, seed=1)
    reader = LanceStore.open(uri)
    held_version = reader.table.version
    before = reader.vector_search(_clustered(1, seed=5)[0], 5)
    for round_ in range(4):  # rewrite the same documents: every round supersedes the last one's files
        _write(writer, 0, 200, seed=10 + round_)
    writer.refresh_indexes()
    versions = len(writer.table.list_versions())
    # Everything was current within the last minutes: nothing may go, and the reader still reads.
    assert writer.cleanup_versions(keep_versions=1, keep_minutes=10) == 0
    assert len(writer.table.list_versions()) == versions
    assert reader.table.version == held_version
    assert [p.chunk_id for p in reader.vector_search(_clustered(1, seed=5)[0], 5)] == [
        p.chunk_id for p in before
    ]
    assert reader.count() == 200
    # With no age allowance, only the newest `keep_versions` remain, and the latest data is intact.
    assert writer.cleanup_versions(keep_versions=2, keep_minutes=0) > 0
    assert [v["version"] for v in writer.table.list_versions()] == [versions - 1, versions]
    assert writer.count() == 200
    assert len(LanceStore.open(uri).vector_search(_clustered(1, seed=5)[0], 5)) == 5


def test_a_reader_on_a_version_the_cleanup_removed_reads_the_newest_one(tmp_path: Path) -> None:
    """The default keeps no old version for readers (`keep_versions_minutes = 0`): a long-lived reader
    (serve, MCP) still on a removed version must answer from the newest one, not fail with lost files."""
    uri = str(tmp_path / "db")
    writer = LanceStore.open(uri)
    writer.ensure_identity(EmbedderIdentity("m", 384), create=True)
    _write(writer, 0, 200, seed=1)
    writer.refresh_indexes()
    reader = LanceStore.open(uri)  # a read-only store, as `ask` and `serve` open it
    assert reader.count() == 200 and len(reader.keyword_search("text", 3)) == 3
    for round_ in range(3):
        _write(writer, 0, 200, seed=10 + round_)
        writer.refresh_indexes()
    assert writer.cleanup_versions(keep_versions=1, keep_minutes=0) > 0
    newest = _clustered(200, seed=12)
    hits = reader.vector_search(newest[7], 3)
    assert hits[0].chunk_id == f"{7:032x}" and hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert len(reader.keyword_search("text", 3)) == 3
    assert reader.count() == 200 and len(reader.document_states()) == 2


def test_queries_probe_a_share_of_the_partitions_of_a_large_index(tmp_path: Path) -> None:
    """20 fixed probes kept 0.99 agreement at 100K rows and fell to 0.93 at 1M (docs/benchmarks.md):
    the probes follow the partitions the index was trained with."""
    from ragcli.store.lance import ANN_NPROBES, LanceStore

    store = LanceStore.open(str(tmp_path / "db"))
    assert store._nprobes() == ANN_NPROBES  # no index yet
    for trained, probes in ((100_000, 20), (300_000, 25), (1_000_000, 82), (10_000_000, 814)):
        store._meta_cache = {"ann_trained_rows": str(trained)}
        assert store._nprobes() == probes
