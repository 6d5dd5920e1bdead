"""Caches that are never wrong: exact and semantic hits, guards, staleness, damage, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ragcli.cache.guards import semantic_match_refused
from ragcli.cache.keys import normalise_question
from ragcli.config import Settings
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions, QueryEngine, ask_with_cache
from ragcli.retrieval.filters import Filters
from tests.conftest import REPO, CountingEmbedder, make_settings

DOCS = {
    "pumps.md": "# Pumps\n\nThe P-700 pump moves 40 litres per minute.\n\n## Service\n\n"
    "Replace the P-700 impeller seal every 2,000 hours of operation.\n",
    "valves.md": "# Valves\n\nThe V-12 relief valve opens at 8 bar of pressure.\n",
    "safety.txt": "Safety rules\n\nFire drills happen on the first Monday of each quarter.\n",
}

QUESTION = "How often must the impeller seal be replaced?"


@pytest.fixture
def indexed(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    Ingestor(settings, embedder=embedder).run([root])
    return root


def _ask(settings: Settings, embedder: CountingEmbedder, question: str, **options: Any) -> dict[str, Any]:
    engine = QueryEngine(settings, embedder=embedder)
    result, _ = ask_with_cache(settings, question, AskOptions(**options), engine=engine)
    return result


def test_exact_hit_after_a_miss_with_normalised_question(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    first = _ask(settings, embedder, QUESTION)
    assert first["cache"] is None
    again = _ask(settings, embedder, "  how often must the IMPELLER seal be replaced ")
    assert again["cache"] == "exact"
    assert again["answer"] == first["answer"] and again["citations"] == first["citations"]
    assert again["request_id"] != first["request_id"]


def test_paraphrase_is_a_semantic_hit(settings: Settings, embedder: CountingEmbedder, indexed: Path) -> None:
    _ask(settings, embedder, QUESTION)
    hit = _ask(settings, embedder, "How often should the impeller seal be replaced?")
    assert hit["cache"] == "semantic"
    assert hit["matched_question"] == QUESTION
    assert hit["similarity"] >= 0.97


@pytest.mark.parametrize(
    "other",
    [
        "Which valve opens at 8 bar?",  # a different question
        "How often must the impeller seal not be replaced?",  # negated
        "How often must the impeller seal be replaced after 3,000 hours?",  # a number
    ],
)
def test_different_negated_or_numbered_questions_miss(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, other: str
) -> None:
    _ask(settings, embedder, QUESTION)
    assert _ask(settings, embedder, other)["cache"] is None


def test_same_question_with_other_filters_or_mode_misses(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    _ask(settings, embedder, QUESTION)
    assert _ask(settings, embedder, QUESTION, filters=Filters(sources=["*.md"]))["cache"] is None
    assert _ask(settings, embedder, QUESTION, mode="keyword")["cache"] is None
    assert _ask(settings, embedder, QUESTION, k=2)["cache"] is None
    assert _ask(settings, embedder, QUESTION, filters=Filters(sources=["*.md"]))["cache"] == "exact"


def test_changed_cited_document_is_a_miss_and_unrelated_change_still_hits(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    first = _ask(settings, embedder, QUESTION, k=1)
    assert first["citations"][0]["source"].endswith("pumps.md")
    (indexed / "notes.md").write_text("# Notes\n\nThe canteen opens at noon.\n", encoding="utf-8")
    Ingestor(settings, embedder=embedder).run([indexed])
    assert _ask(settings, embedder, QUESTION, k=1)["cache"] == "exact"
    (indexed / "pumps.md").write_text(
        "# Pumps\n\n## Service\n\nReplace the P-700 impeller seal every 5,000 hours of operation.\n",
        encoding="utf-8",
    )
    Ingestor(settings, embedder=embedder).run([indexed])
    fresh = _ask(settings, embedder, QUESTION, k=1)
    assert fresh["cache"] is None
    assert "5,000" in fresh["answer"]
    # ...and the fresh answer replaced the stale one.
    assert _ask(settings, embedder, QUESTION, k=1)["cache"] == "exact"


def test_degraded_answers_are_not_cached(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_FAULTS", "generator")
    assert _ask(settings, embedder, QUESTION)["degraded"]
    monkeypatch.delenv("RAGCLI_FAULTS")
    assert _ask(settings, embedder, QUESTION)["cache"] is None


def test_one_edited_paragraph_reembeds_only_the_changed_chunks(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = tmp_path / "long"
    root.mkdir()
    paragraphs = [f"## Part {i}\n\nPart {i} explains subsystem {i} in detail. " * 3 for i in range(30)]
    doc = root / "manual.md"
    doc.write_text("# Manual\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    first = Ingestor(settings, embedder=embedder).run([root])
    assert first.chunks_embedded >= 30
    paragraphs[17] = "## Part 17\n\nPart 17 was rewritten entirely for the new firmware."
    doc.write_text("# Manual\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    embedder.reset()
    second = Ingestor(settings, embedder=embedder).run([root])
    assert second.updated == 1
    assert embedder.texts_embedded == second.chunks_embedded == 1
    assert second.chunks_reused >= 29


def test_reindex_with_unchanged_embedder_reembeds_nothing(
    settings: Settings, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ragcli.cli import app

    monkeypatch.setenv("RAGCLI_HOME", str(settings.home))
    monkeypatch.setenv("RAGCLI_RETRIEVAL__TOP_K", "3")  # a change that does not touch the embedder
    result = CliRunner().invoke(app, ["reindex", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["added"] == len(DOCS)
    assert summary["chunks_embedded"] == 0 and summary["chunks_reused"] > 0


def test_truncated_cache_file_is_moved_aside_and_rebuilt(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _ask(settings, embedder, QUESTION)
    db = settings.cache_dir / "answers" / "cache.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    for extra in db.parent.glob("cache.db-*"):
        extra.unlink()
    result = _ask(settings, embedder, QUESTION)
    assert result["cache"] is None and "2,000" in result["answer"]
    assert any(p.name.startswith("answers.corrupt-") for p in settings.cache_dir.iterdir())
    assert _ask(settings, embedder, QUESTION)["cache"] == "exact"


def _hammer(home: str, worker: int, count: int) -> None:
    settings = make_settings(Path(home))
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.keys import scope_key

    cache = AnswerCache(settings)
    scope = scope_key(settings.config, filters="", mode="hybrid", k=5, rerank=False)
    import numpy as np

    rng = np.random.default_rng(worker)
    for i in range(count):
        vector = rng.normal(size=384).astype("float32")
        vector /= np.linalg.norm(vector)
        question = f"worker {worker} question {i}"
        cache.put(question, scope, {"answer": question, "citations": []}, doc_ids=[], generation=0, vector=vector)
        hit = cache.get_exact(question, scope)
        assert hit is not None and hit.result["answer"] == question


def test_two_processes_writing_at_once_do_not_corrupt_the_cache(settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(settings.home), w, 150)) for w in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.semantic import FlatVectorFile

    assert AnswerCache(settings).stats()["entries"] == 300
    vectors = FlatVectorFile(settings.cache_dir / "questions-384.f32", 384)
    assert len(vectors) == 300


def test_exact_hit_in_a_fresh_process_imports_no_heavy_module(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    _ask(settings, embedder, QUESTION)
    code = (
        "import sys\n"
        "from ragcli.cli import main\n"
        f"sys.argv = ['ragcli', 'ask', {QUESTION!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('lancedb', 'pyarrow', 'onnxruntime', 'numpy', 'tiktoken') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | {"RAGCLI_HOME": str(settings.home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    first_line, heavy_line = out.stdout.strip().splitlines()
    assert json.loads(first_line)["cache"] == "exact"
    assert heavy_line == "HEAVY="


@pytest.mark.parametrize(
    ("cached", "asked", "why"),
    [
        ("Does aspirin reduce fever?", "Does aspirin not reduce fever?", "negation"),
        ("Is the dose 5 mg?", "Is the dose 50 mg?", "numbers"),
        ("What happened in March?", "What happened in May?", "numbers"),
        ("What is the capital of France?", "What is the capital of Spain?", "named entities"),
        ("Does X increase risk?", "Does X decrease risk?", "comparison direction"),
        ("Which is larger, A or B?", "Which is smaller, A or B?", "comparison direction"),
    ],
)
def test_guard_refuses_near_miss_pairs(cached: str, asked: str, why: str) -> None:
    assert semantic_match_refused(cached, asked) == why


def test_guard_allows_paraphrases() -> None:
    assert semantic_match_refused("How do I reset the P-700?", "How can I reset the P-700?") is None
    assert semantic_match_refused("What does the valve do?", "what does the valve do") is None


def test_normalise_question() -> None:
    assert normalise_question("  What IS   it?? ") == "what is it"
    assert normalise_question("Version 3.5?") == "version 3.5"


def test_unreadable_index_serves_a_flagged_cached_answer_to_a_similar_question(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli.errors import StoreError

    _ask(settings, embedder, QUESTION)
    monkeypatch.setenv("RAGCLI_FAULTS", "store")
    served = _ask(settings, embedder, "how often is the impeller seal changed")  # 0.94 similar: below 0.97
    assert served["degraded"] and served["degraded_reason"].startswith("store_unavailable")
    assert served["cache"] == "semantic" and "2,000" in served["answer"]
    with pytest.raises(StoreError, match="reindex"):
        _ask(settings, embedder, "At what pressure does the valve open?")


def test_guard_entities_ignore_the_askers_case_but_not_the_name() -> None:
    assert semantic_match_refused("Is the UK office open?", "is the uk office open") is None
    assert semantic_match_refused("Is the UK office open?", "is the us office open") == "named entities"


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("Are British female students bullied more than male students?", "Are British male students bullied more than female students?"),
        ("Is CPT positively related to dengue diffusion?", "Is CPT negatively related to dengue diffusion?"),
        ("Is joining 3' as tolerant as 5'?", "Is joining 5' as tolerant as 3'?"),
    ],
)
def test_guard_refuses_near_misses_seen_in_scifact(cached: str, asked: str) -> None:
    assert semantic_match_refused(cached, asked) is not None


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("rerank", "blend", 0.25), ("rerank", "top_n", 7), ("retrieval", "rrf_k", 10), ("compression", "budget_tokens", 99)],
)
def test_every_answer_shaping_setting_changes_the_fingerprint(
    settings: Settings, section: str, key: str, value: object
) -> None:
    from ragcli.cache.keys import answer_fingerprint

    before = answer_fingerprint(settings.config)
    changed = settings.config.model_copy(deep=True)
    setattr(getattr(changed, section), key, value)
    assert answer_fingerprint(changed) != before
    assert answer_fingerprint(settings.config) == before
