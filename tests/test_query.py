"""The query pipeline on a real index: modes, filters, injection attempts, degradation paths."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import Settings, load_settings
from ragcli.errors import StoreError, UsageError
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions, QueryEngine
from ragcli.retrieval.filters import Filters, build_where, parse_field_filter, parse_since
from tests.conftest import CountingEmbedder

DOCS = {
    "pumps.md": "# Pumps\n\nThe P-700 pump moves 40 litres per minute.\n\n## Service\n\n"
    "Replace the P-700 impeller seal every 2,000 hours of operation.\n",
    "valves.md": "# Valves\n\nThe V-12 relief valve opens at 8 bar of pressure.\n\n"
    "Valve bodies are cast from bronze to resist corrosion.\n",
    "safety.txt": "Safety rules\n\nAlways wear ear protection near the compressor hall.\n\n"
    "Fire drills happen on the first Monday of each quarter.\n",
    "notes/history.md": "# History\n\nThe plant opened in 1987 in Tromsø and was extended in 2004.\n",
}


@pytest.fixture
def indexed(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    Ingestor(settings, embedder=embedder).run([root])
    return root


def _engine(settings: Settings, embedder: CountingEmbedder) -> QueryEngine:
    return QueryEngine(settings, embedder=embedder)


QUESTIONS = [
    ("How often must the impeller seal be replaced?", "pumps.md"),
    ("At what pressure does the relief valve open?", "valves.md"),
    ("When are fire drills held?", "safety.txt"),
    ("In which year did the plant open?", "history.md"),
]


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_every_mode_finds_the_relevant_chunk(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, mode: str
) -> None:
    engine = _engine(settings, embedder)
    for question, expected in QUESTIONS:
        top = engine.retrieve(question, AskOptions(k=3, mode=mode)).passages
        assert top and top[0].source.endswith(expected), (mode, question, [p.source for p in top])


@pytest.mark.parametrize("blend", [0.0, 0.5])
def test_reranking_with_the_real_cross_encoder_keeps_the_relevant_chunk_first(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, blend: float
) -> None:
    settings.config.rerank.blend = blend
    engine = _engine(settings, embedder)
    for question, expected in QUESTIONS:
        top = engine.retrieve(question, AskOptions(k=3, rerank=True))
        assert top.timings_ms.get("rerank", 0) > 0
        assert top.passages[0].source.endswith(expected), (blend, question, [p.source for p in top.passages])


def test_blend_one_keeps_the_fused_order_after_reranking(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    settings.config.rerank.blend = 1.0
    engine = _engine(settings, embedder)
    question = "What is the pump made of and how fast does it move water?"
    plain = engine.retrieve(question, AskOptions(k=8, rerank=False)).passages
    reranked = engine.retrieve(question, AskOptions(k=8, rerank=True)).passages
    assert [p.chunk_id for p in reranked] == [p.chunk_id for p in plain]


def test_source_glob_and_field_filters_include_and_exclude(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    engine = _engine(settings, embedder)
    question = "When are fire drills held?"
    only_md = engine.retrieve(question, AskOptions(k=10, filters=Filters(sources=["*.md"]))).passages
    assert only_md and all(p.source.endswith(".md") for p in only_md)
    notes = engine.retrieve(question, AskOptions(k=10, filters=Filters(sources=["*/notes/*"]))).passages
    assert {Path(p.source).name for p in notes} == {"history.md"}
    by_type = engine.retrieve(question, AskOptions(k=10, filters=Filters(fields=[("doc_type", "txt")])))
    assert {Path(p.source).name for p in by_type.passages} == {"safety.txt"}
    either = Filters(fields=[("title", "Pumps"), ("title", "Valves")])
    assert {Path(p.source).name for p in engine.retrieve(question, AskOptions(k=10, filters=either)).passages} == {
        "pumps.md",
        "valves.md",
    }
    future = Filters(since=time.time() + 3600)
    assert engine.retrieve(question, AskOptions(k=10, filters=future)).passages == []


@pytest.mark.parametrize(
    "value",
    ["x' OR '1'='1", "Pumps' OR title <> '", "'; DROP TABLE chunks; --", "Pumps\\' OR 1=1 --"],
)
def test_injection_attempts_in_filter_values_are_literals(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, value: str
) -> None:
    engine = _engine(settings, embedder)
    result = engine.retrieve("pump", AskOptions(k=10, mode="hybrid", filters=Filters(fields=[("title", value)])))
    assert result.passages == []
    # The table is still there and whole.
    assert engine.store.count() > 0


def test_filter_parsing_rejects_unknown_keys_and_bad_values() -> None:
    assert parse_field_filter("title=A = B") == ("title", "A = B")
    with pytest.raises(UsageError, match="Unknown filter field"):
        parse_field_filter("vector=1")
    with pytest.raises(UsageError, match="key=value"):
        parse_field_filter("title")
    with pytest.raises(UsageError, match="whole number"):
        parse_field_filter("page=two")
    with pytest.raises(UsageError, match="since"):
        parse_since("last tuesday")
    assert parse_since("2d", now=1_000_000.0) == 1_000_000.0 - 2 * 86400
    assert build_where(Filters(fields=[("page", "3")]), []) == "(page = 3)"


def test_ask_answers_with_citations(settings: Settings, embedder: CountingEmbedder, indexed: Path) -> None:
    result = _engine(settings, embedder).ask("At what pressure does the V-12 relief valve open?")
    assert not result.degraded
    assert "8 bar" in result.answer
    assert result.citations and result.citations[0]["source"].endswith("valves.md")
    assert set(result.timings_ms) >= {"embed", "retrieve", "rerank", "compress", "generate", "total"}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("embedder", "embedder_failed"), ("generator", "generator_failed"), ("reranker", "reranker_failed")],
)
def test_each_degradation_path_still_answers_with_citations_and_the_reason(
    settings: Settings,
    embedder: CountingEmbedder,
    indexed: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    reason: str,
) -> None:
    monkeypatch.setenv("RAGCLI_FAULTS", fault)
    result = _engine(settings, embedder).ask(
        "At what pressure does the relief valve open?", AskOptions(rerank=True)
    )
    assert result.degraded and result.degraded_reason and reason in result.degraded_reason
    assert "8 bar" in result.answer
    assert result.citations and any(c["source"].endswith("valves.md") for c in result.citations)
    if fault == "embedder":
        assert result.mode == "keyword"


def test_unreadable_store_is_a_clear_error(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_FAULTS", "store")
    with pytest.raises(StoreError):
        _engine(settings, embedder).ask("anything")


def test_ask_without_an_index_names_the_fix(settings: Settings, embedder: CountingEmbedder) -> None:
    with pytest.raises(StoreError, match="ragcli ingest"):
        _engine(settings, embedder).ask("anything")


def test_cli_ask_json_shape(indexed: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["ask", "When are fire drills held?", "--json", "--k", "3"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert set(data) >= {
        "question",
        "answer",
        "citations",
        "degraded",
        "degraded_reason",
        "timings_ms",
        "tokens",
        "request_id",
    }
    assert data["citations"][0]["source"].endswith("safety.txt")
    assert {"source", "chunk_id", "score", "text", "page", "heading"} <= set(data["citations"][0])
    bad = CliRunner().invoke(app, ["ask", "x", "--filter", "nope=1"])
    assert bad.exit_code == 2 and "Unknown filter field" in bad.stderr
    assert os.environ["RAGCLI_HOME"] == str(settings.home)


def test_rewrite_is_skipped_and_said_without_an_llm(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_RETRIEVAL__MULTI_QUERY", "2")
    monkeypatch.setenv("RAGCLI_HOME", str(settings.home))
    engine = _engine(load_settings(), embedder)
    result = engine.retrieve("When are fire drills held?")
    assert any("skipped" in note for note in result.notes)
    assert result.passages[0].source.endswith("safety.txt")


@pytest.mark.slow
def test_rewrite_and_multi_query_with_the_local_llm(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xllamacpp")
    monkeypatch.setenv("RAGCLI_HOME", str(settings.home))
    monkeypatch.setenv("RAGCLI_GENERATION__PROVIDER", "local")
    monkeypatch.setenv("RAGCLI_RETRIEVAL__REWRITE", "true")
    monkeypatch.setenv("RAGCLI_RETRIEVAL__MULTI_QUERY", "1")
    engine = _engine(load_settings(), embedder)
    result = engine.retrieve("When are fire drills held?", AskOptions(k=5))
    assert any(note.startswith("searched") for note in result.notes), result.notes
    assert "rewrite" in result.timings_ms
    assert any(p.source.endswith("safety.txt") for p in result.passages)


def test_prefetch_loads_the_cross_encoder_once_on_another_thread(tmp_path: Path) -> None:
    import threading

    engine = QueryEngine(load_settings(env={"RAGCLI_HOME": str(tmp_path)}))
    engine.prefetch()
    loaders = [t for t in threading.enumerate() if t.name == "ragcli-prefetch"]
    assert loaders  # the load runs beside the caller
    reranker = engine.reranker  # waits for the prefetch instead of loading a second copy
    for thread in loaders:
        thread.join(timeout=60)
    assert engine.reranker is reranker
    engine.prefetch()  # loaded: nothing more starts
    assert not [t for t in threading.enumerate() if t.name == "ragcli-prefetch"]
