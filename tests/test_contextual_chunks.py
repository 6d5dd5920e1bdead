"""Contextual chunks end to end: what is embedded and keyword-indexed carries title and heading path,
what is shown stays clean, a template change re-embeds only the chunks whose context changed, and an
index from before the search_text column is migrated in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragcli.config import Settings
from ragcli.ingest.pipeline import Ingestor
from ragcli.models import Chunk
from ragcli.store import get_store
from ragcli.store.lance import EmbedderIdentity, LanceStore, chunk_schema
from tests.conftest import CountingEmbedder, make_settings

MANUAL = (
    "# Pump manual\n\n"
    + " ".join(f"The impeller turns at speed {i} under normal load." for i in range(40))
    + "\n\n## Seals\n\nReplace the gasket every spring.\n"
)


def _columns(settings: Settings) -> dict[str, list[object]]:
    return get_store(settings).all_rows(["title", "heading", "text", "search_text", "chunk_index"])


def test_context_is_indexed_not_shown_and_a_template_change_reembeds_only_what_changed(
    tmp_path: Path, embedder: CountingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump.md").write_text(MANUAL, encoding="utf-8")
    (docs / "short.txt").write_text("Short note\n\nNothing else here.\n", encoding="utf-8")
    settings = make_settings(tmp_path / "state")
    Ingestor(settings, embedder=embedder).run([docs])
    rows = _columns(settings)
    by_text = dict(zip(rows["text"], rows["search_text"], strict=True))
    seals = next(t for t in by_text if "gasket" in t)
    assert seals.startswith("Seals") and "Pump manual" not in seals  # shown text: the chunk alone
    assert by_text[seals] == f"Pump manual\n\n{seals}"  # indexed: with the title ("Seals" is at its head)
    first = next(t for t in by_text if t.startswith("Pump manual"))
    assert by_text[first] == first  # it opens with its title already
    assert all(t.strip() not in ("# Pump manual", "Short note") for t in by_text)  # no title-only chunk
    # Keyword search reads the context: "manual" is only in the Seals chunk's title.
    hits = get_store(settings).keyword_search("manual gasket", 5)
    assert hits[0].text == seals

    # Without context, only the chunks that had some are embedded again; the others come from the cache.
    changed = sum(1 for text, indexed in by_text.items() if indexed != text)
    assert 0 < changed < len(by_text)
    plain = make_settings(
        tmp_path / "state",
        RAGCLI_CHUNKING__CONTEXT_TEMPLATE="{text}",
        RAGCLI_STORE__URI=str(tmp_path / "plain-index"),
    )
    embedder.reset()
    report = Ingestor(plain, embedder=embedder).run([docs])
    assert report.chunks_embedded == embedder.texts_embedded == changed
    rows = _columns(plain)
    assert rows["search_text"] == rows["text"]


def test_an_index_without_search_text_is_migrated_and_searchable(tmp_path: Path) -> None:
    uri = str(tmp_path / "db")
    store = LanceStore.open(uri)
    old_schema = chunk_schema(8).remove(chunk_schema(8).get_field_index("search_text"))
    store.db.create_table("chunks", schema=old_schema)
    store._write_meta({"schema_version": "1", "embedder_name": "m", "embedder_dim": "8"})
    import pyarrow as pa

    chunk = Chunk(
        chunk_id="a" * 32, doc_id="b" * 32, source="/docs/x.md", title="t", heading=None, page=None,
        chunk_index=0, char_start=0, char_end=20, token_count=4, chunk_hash="c", doc_hash="d", mtime=0.0,
        ingested_at=0.0, text="the flux capacitor hums",
    )  # fmt: skip
    row = {f.name: [getattr(chunk, f.name, None)] for f in old_schema if f.name not in ("id", "vector", "doc_type")}
    row |= {"id": [chunk.chunk_id], "doc_type": ["md"]}
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.ones(8, dtype=np.float32)), 8)
    table = pa.Table.from_pydict({**row, "vector": vectors}, schema=old_schema)
    store.table.add(table)
    store.table.create_index("text", config=__import__("lancedb.index").index.FTS())

    reopened = LanceStore.open(uri)
    reopened.ensure_identity(EmbedderIdentity("m", 8), create=False)
    assert reopened.meta()["schema_version"] == "2"
    assert reopened.all_rows(["search_text"])["search_text"] == ["the flux capacitor hums"]
    assert [tuple(i.columns) for i in reopened.table.list_indices()] == [("search_text",)]
    assert [p.chunk_id for p in reopened.keyword_search("capacitor", 3)] == [chunk.chunk_id]
    # New rows land in the migrated layout (search_text after the vector).
    fresh = Chunk(**{**chunk.__dict__, "chunk_id": "e" * 32, "text": "new", "search_text": "ctx new"})
    reopened.replace_documents([fresh], np.ones((1, 8), dtype=np.float32), [fresh.doc_id])
    assert sorted(reopened.all_rows(["search_text"])["search_text"]) == ["ctx new"]
