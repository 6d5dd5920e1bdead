"""Caches and the corpus journal in Redis, shared by several machines (a real redis-server on loopback).

"Machines" are state directories sharing one index on object storage (moto) and one Redis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ragcli.cache.factory import open_journal
from ragcli.cli import app
from ragcli.config import Settings, load_settings
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions, QueryEngine, ask_with_cache
from ragcli.store import get_store
from ragcli.store.journal import term_hash
from tests.conftest import CountingEmbedder
from tests.servers import RedisServer, S3Server
from tests.test_cache import DOCS, QUESTION

pytestmark = pytest.mark.slow


def machine(home: Path, index: str, redis_url: str | None) -> Settings:
    env = {"RAGCLI_HOME": str(home), "RAGCLI_STORE__URI": index}
    if redis_url:
        env |= {"RAGCLI_CACHE__BACKEND": "redis", "RAGCLI_CACHE__REDIS_URL": redis_url}
    return load_settings(env=env)


def ask(settings: Settings, embedder: CountingEmbedder, question: str, **options: Any) -> dict[str, Any]:
    result, _ = ask_with_cache(settings, question, AskOptions(**options), engine=QueryEngine(settings, embedder=embedder))
    return result


@pytest.mark.parametrize("backend", ["disk", "redis"])
def test_both_journals_keep_the_same_generations(backend: str, tmp_path: Path, redis_srv: RedisServer) -> None:
    settings = machine(tmp_path / "state", str(tmp_path / "index"), redis_srv.new_url() if backend == "redis" else None)
    journal = open_journal(settings)
    assert (journal.current(), journal.settled()) == (0, 0)
    assert journal.record(["d1"], ["impeller", "seal"]) == 1
    assert journal.record(["d2"]) == 1  # one run, one generation
    assert (journal.current(), journal.settled()) == (1, 0)  # open until the run finishes
    reader = open_journal(settings)
    assert reader.changed_since(0, ["d1", "zz"]) and not reader.changed_since(1, ["d1"])
    assert not reader.changed_since(0, ["zz"])
    assert reader.terms_changed_since(0, [term_hash("seal")]) and not reader.terms_changed_since(0, [term_hash("valve")])
    journal.finish()
    assert reader.settled() == 1
    later = open_journal(settings)
    assert later.record(["d1"]) == 2 and later.changed_since(1, ["d1"]) and not later.changed_since(1, ["d2"])


@pytest.fixture
def shared(s3: S3Server, aws_env: dict[str, str], redis_srv: RedisServer, tmp_path: Path) -> tuple[str, str]:
    return f"s3://{s3.new_bucket('shared')}/index", redis_srv.new_url()


def write(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_an_answer_cached_on_one_machine_is_served_on_another_until_an_ingest_anywhere_changes_it(
    shared: tuple[str, str], tmp_path: Path, embedder: CountingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, redis_url = shared
    a, b = machine(tmp_path / "a", index, redis_url), machine(tmp_path / "b", index, redis_url)
    root = write(tmp_path / "docs", DOCS)
    Ingestor(a, embedder=embedder).run([root])

    first = ask(a, embedder, QUESTION, k=1)
    assert first["cache"] is None and first["citations"][0]["source"].endswith("pumps.md")
    assert ask(b, embedder, QUESTION, k=1)["cache"] == "exact"
    semantic = ask(b, embedder, "How often should the impeller seal be replaced?", k=1)
    assert semantic["cache"] == "semantic" and semantic["matched_question"] == QUESTION

    # B ingests an unrelated document: A's cached answer still holds.
    write(root, {"notes.md": "# Notes\n\nThe canteen opens at noon.\n"})
    Ingestor(b, embedder=embedder).run([root])
    assert ask(a, embedder, QUESTION, k=1)["cache"] == "exact"
    # B changes the cited document: A sees it at once (the journal is shared) and answers afresh.
    write(root, {"pumps.md": "# Pumps\n\n## Service\n\nReplace the P-700 impeller seal every 5,000 hours.\n"})
    Ingestor(b, embedder=embedder).run([root])
    fresh = ask(a, embedder, QUESTION, k=1)
    assert fresh["cache"] is None and "5,000" in fresh["answer"]
    assert ask(b, embedder, QUESTION, k=1)["cache"] == "exact"

    # `cache stats` on a third machine, with no cache folder of its own, reads the shared counters.
    for name, value in {"RAGCLI_HOME": str(tmp_path / "c"), "RAGCLI_STORE__URI": index,
                        "RAGCLI_CACHE__BACKEND": "redis", "RAGCLI_CACHE__REDIS_URL": redis_url}.items():
        monkeypatch.setenv(name, value)
    stats = CliRunner().invoke(app, ["cache", "stats", "--json"])
    assert stats.exit_code == 0, stats.output
    counts = json.loads(stats.stdout)
    # One answer (the stale one was replaced); hits: B exact, A exact, B exact after the change; B semantic.
    assert counts["answers"]["entries"] == 1 and counts["answers"]["exact_hits"] == 3
    assert counts["answers"]["semantic_hits"] == 1
    assert counts["embeddings"]["chunk_entries"] > 0 and counts["directory"] == redis_url


def test_chunk_embeddings_computed_on_one_machine_are_reused_by_another(
    shared: tuple[str, str], tmp_path: Path, embedder: CountingEmbedder
) -> None:
    index, redis_url = shared
    root = write(tmp_path / "docs", DOCS)
    Ingestor(machine(tmp_path / "a", index, redis_url), embedder=embedder).run([root])
    assert embedder.texts_embedded > 0
    # Machine B rebuilds the same index from scratch: every vector comes from the shared cache.
    embedder.reset()
    other = machine(tmp_path / "b", index, redis_url)
    get_store(other).db.drop_table("chunks")
    report = Ingestor(other, embedder=embedder).run([root])
    assert report.added == len(DOCS) and embedder.texts_embedded == 0 and report.chunks_reused > 0


def test_an_index_on_object_storage_with_disk_caches_caches_no_answers(
    s3: S3Server, aws_env: dict[str, str], tmp_path: Path, embedder: CountingEmbedder
) -> None:
    settings = machine(tmp_path / "a", f"s3://{s3.new_bucket('nocache')}/index", None)
    Ingestor(settings, embedder=embedder).run([write(tmp_path / "docs", DOCS)])
    assert ask(settings, embedder, QUESTION)["cache"] is None
    assert ask(settings, embedder, QUESTION)["cache"] is None  # another machine's ingest would go unseen


def test_a_redis_that_is_down_costs_a_miss_not_the_answer(
    tmp_path: Path, embedder: CountingEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.servers import free_port

    local = machine(tmp_path / "a", str(tmp_path / "index"), None)
    Ingestor(local, embedder=embedder).run([write(tmp_path / "docs", DOCS)])
    down = machine(tmp_path / "a", str(tmp_path / "index"), f"redis://127.0.0.1:{free_port()}/0")
    result = ask(down, embedder, QUESTION)
    assert result["cache"] is None and result["citations"] and not result["degraded"]
    assert "Cache unavailable" in caplog.text


def test_an_answer_from_an_engine_behind_the_journal_is_filed_under_the_engines_generation(
    settings: Settings, tmp_path: Path, embedder: CountingEmbedder
) -> None:
    """A replica that has not reopened the index after another machine's ingest still answers from the
    old version; filing that answer under the journal's newer generation would make it look fresh."""
    root = write(tmp_path / "docs", DOCS)
    Ingestor(settings, embedder=embedder).run([root])
    write(root, {"pumps.md": "# Pumps\n\n## Service\n\nReplace the P-700 impeller seal every 5,000 hours.\n"})
    Ingestor(settings, embedder=embedder).run([root])
    behind, _ = ask_with_cache(
        settings, QUESTION, AskOptions(k=1), engine=QueryEngine(settings, embedder=embedder), generation_cap=1
    )
    assert behind["cache"] is None
    assert ask(settings, embedder, QUESTION, k=1)["cache"] is None  # filed under 1; pumps.md changed in 2
    assert ask(settings, embedder, QUESTION, k=1)["cache"] == "exact"
