"""Recovery from damaged, full or read-only state (issue 12), outside the fault matrix (test_faults.py):
repair without re-embedding, the journal rebuilt from the index, caches that cannot be written, the lock
record after repeated kills, private file modes under umask 000."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings
from ragcli.errors import IndexUnreadableError, LockHeldError
from ragcli.ingest.lock import IngestLock
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions, QueryEngine, ask_with_cache
from ragcli.store.lance import LanceStore
from tests.conftest import FIXTURES, CountingEmbedder

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How do I do a factory reset?"


@pytest.fixture
def indexed(settings: Settings, embedder: CountingEmbedder, docs_tree: Path) -> Path:
    Ingestor(settings, embedder=embedder).run([docs_tree])
    embedder.reset()
    return docs_tree


def _store(settings: Settings) -> LanceStore:
    return LanceStore.open(settings.store_uri, settings.config.store.table)


def _cut_data_files(settings: Settings) -> None:
    for path in (Path(settings.store_uri) / "chunks.lance" / "data").glob("*.lance"):
        os.truncate(path, 100)


def _ask(settings: Settings, embedder: CountingEmbedder, question: str) -> dict[str, Any]:
    engine = QueryEngine(settings, embedder=embedder)
    result, _ = ask_with_cache(settings, question, AskOptions(), engine=engine)
    return result


# ----- the index ----------------------------------------------------------------------------------------
def test_doctor_repair_rebuilds_a_damaged_index_without_embedding(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragcli.app.doctor import run_doctor

    rows = _store(settings).count()
    _cut_data_files(settings)
    with pytest.raises(IndexUnreadableError):
        _store(settings).all_rows(["doc_id"])
    assert run_doctor(settings, fix=False, json_output=True) == 6
    found = json.loads(capsys.readouterr().out)
    assert [f["check"] for f in found["remaining"]] == ["index"]

    assert run_doctor(settings, fix=True, json_output=True, embedder=embedder) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] and "0 embedded" in report["findings"][0]["repaired"]
    assert embedder.calls == 0
    assert _store(settings).count() == rows
    assert any(p.name.startswith("lancedb.damaged-") for p in Path(settings.store_uri).parent.iterdir())


def test_reindex_finds_the_sources_in_the_journal_when_the_manifests_are_gone(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    from ragcli.ingest.rebuild import rebuild_index

    rows = _store(settings).count()
    for manifest in (Path(settings.store_uri) / "chunks.lance" / "_versions").iterdir():
        manifest.unlink()
    result = rebuild_index(settings, embedder=embedder)
    assert result.from_journal and result.report is not None and result.report.failed == 0
    assert embedder.calls == 0 and _store(settings).count() == rows


def test_doctor_repair_rebuilds_the_full_text_index_in_place(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    from ragcli.app.doctor import diagnose, repair
    from tests.faultkit import index_names

    shutil.rmtree(Path(settings.store_uri) / "chunks.lance" / "_indices" / index_names(settings.home)["fts"])
    findings, _ = diagnose(settings)
    assert [f.check for f in findings if not f.ok] == ["full-text index"]
    repair(settings, findings, embedder=embedder)
    assert [f for f in diagnose(settings)[0] if not f.ok] == []
    assert _store(settings).keyword_search("factory reset", 3)
    assert embedder.calls == 0


# ----- the journal --------------------------------------------------------------------------------------
def test_a_damaged_journal_is_rebuilt_from_the_index_with_one_warning(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _ask(settings, embedder, QUESTION)
    os.truncate(settings.journal_path, 500)
    caplog.clear()
    again = _ask(settings, embedder, QUESTION)
    assert again["answer"] == first["answer"] and again.get("cache") is None  # not served from before
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "rebuilt it from the index" in warnings[0].getMessage()
    from ragcli.store.journal import CorpusJournal

    assert len(CorpusJournal(settings.journal_path).documents()) == len(_store(settings).document_states())
    assert list(settings.home.glob("corpus.sqlite3.corrupt-*"))


# ----- caches -------------------------------------------------------------------------------------------
def test_a_cache_that_cannot_be_written_keeps_its_data_and_the_answer_path(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ragcli.cache.disk import SafeCache, _warned

    _warned.clear()
    _ask(settings, embedder, QUESTION)
    directory = settings.cache_dir / "embeddings"

    class Full:
        def __getattr__(self, name: str) -> Any:
            raise OSError(28, "No space left on device")

    cache = SafeCache(directory, Full())
    assert cache.get("k") is None and cache.set("k", b"v") is False and cache.incr("n") is None
    for _ in range(3):
        cache.set("k", b"v")
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and str(directory) in r.getMessage()]
    assert len(warnings) == 2  # one for reading, one for writing: never one per call
    assert directory.exists() and not list(settings.cache_dir.glob("embeddings.corrupt-*"))


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_a_read_only_state_folder_still_serves_a_cached_answer(tmp_path: Path) -> None:
    from tests import faultkit as fk

    home, _, _ = fk.build_state(tmp_path)
    asked = fk.ragcli(home, "ask", fk.CACHED_QUESTION, "--json", wrap=fk.wrapper("read-only", home, whole=True))
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["cache"] == "exact"
    fresh = fk.ragcli(home, "ask", fk.NEW_QUESTION, "--json", wrap=fk.wrapper("read-only", home, whole=True))
    assert fresh.returncode == 0, fresh.stderr
    result = json.loads(fresh.stdout)
    assert not result["degraded"], result.get("degraded_reason")  # no "falling back to keyword search"


# ----- the lock -----------------------------------------------------------------------------------------
_RECORD = re.compile(r"pid=\d+ host=\S+ since=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n")


def test_the_lock_record_stays_one_clean_line_after_repeated_kills(tmp_path: Path) -> None:
    lock = tmp_path / "ingest.lock"
    lock.write_text("pid=1 host=" + "x" * 300 + " since=1767225600\n")  # longer than any new record
    holder = (
        "import os, sys; from pathlib import Path; from ragcli.ingest.lock import IngestLock; "
        "IngestLock(Path(sys.argv[1])).acquire(); os.kill(os.getpid(), 9)"
    )
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", holder, str(lock)], cwd=REPO, capture_output=True, check=False)
        assert done.returncode == -9, done.stderr
        raw = lock.read_bytes()
        assert b"\0" not in raw and _RECORD.fullmatch(raw.decode()), raw


def test_a_held_lock_names_its_holder_with_pid_host_and_iso_time(tmp_path: Path) -> None:
    lock = tmp_path / "ingest.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from ragcli.ingest.lock import IngestLock; "
         "IngestLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(30)", str(lock)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match=rf"pid={holder.pid} host=\S+ since=\d{{4}}-\d\d-\d\dT"):
            IngestLock(lock).acquire()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


# ----- private state ------------------------------------------------------------------------------------
def _lax(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink() and path.stat().st_mode & 0o077:
            found.append(f"{path.relative_to(root)} {stat.filemode(path.stat().st_mode)}")
    return found


@pytest.mark.slow
def test_state_is_private_under_umask_000_and_lax_state_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update(RAGCLI_HOME=str(home), RAGCLI_STORE__ANN_MIN_ROWS="20")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # The umask is set by a shell: a preexec_fn would fork a process that runs threads.
        return subprocess.run(
            ["sh", "-c", 'umask 000 && exec "$@"', "sh", sys.executable, "-m", "ragcli", *args],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    for args in (("ingest", str(FIXTURES / "docs")), ("ask", QUESTION), ("ask", QUESTION), ("stats",)):
        done = run(*args)
        assert done.returncode == 0, done.stderr
    assert not _lax(home), _lax(home)
    assert (home / "events.sqlite3").exists() and (home / "cache" / "answers" / "cache.db").exists()

    for path in [home, *home.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    time.sleep(0.01)
    assert run("ask", QUESTION).returncode == 0
    for opened in (home, home / "corpus.sqlite3", home / "events.sqlite3",
                   home / "cache" / "answers" / "cache.db"):
        assert not opened.stat().st_mode & 0o077, opened


def test_an_ask_that_fails_before_its_prefetch_is_done_exits_with_its_code_not_an_abort(
    settings: Settings, indexed: Path
) -> None:
    """An ask against truncated manifests fails in ~0.1 s, while the prefetch thread is still loading
    pylance and the cross-encoder. Before the exit waited for that thread, 10 of 12 such runs died of
    SIGABRT ("terminate called without an active exception") instead of exiting 5."""
    for manifest in (Path(settings.store_uri) / "chunks.lance" / "_versions").iterdir():
        os.truncate(manifest, 10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | {
        "RAGCLI_HOME": str(settings.home),
        "RAGCLI_TELEMETRY__ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }
    for attempt in range(4):
        done = subprocess.run(
            [sys.executable, "-m", "ragcli", "ask", f"{QUESTION} ({attempt})"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 5, done.stderr
        assert "terminate called" not in done.stderr
