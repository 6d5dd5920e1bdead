"""The event log on disk: privacy switch, concurrent writers, retention, schema version, disabled mode."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings, load_settings
from ragcli.errors import StoreError
from ragcli.ingest.pipeline import IngestReport
from ragcli.query import AskResult
from ragcli.telemetry.events import SCHEMA_VERSION, AskEvent, EventLog
from ragcli.telemetry.facade import Telemetry
from ragcli.telemetry.report import write_report

SECRET = "Zanzibar quokka 7731 payroll question"
DAY = 86400.0


def make_ask(question: str, request_id: str, degraded_reason: str | None = None) -> AskResult:
    return AskResult(
        question=question,
        answer="an answer",
        citations=[],
        degraded=degraded_reason is not None,
        degraded_reason=degraded_reason,
        timings_ms={"embed": 3.0, "retrieve": 4.0, "rerank": 0.0, "compress": 1.0, "generate": 5.0, "total": 14.0},
        tokens={"context_in": 100, "context_out": 80, "prompt": 90, "completion": 20},
        request_id=request_id,
        mode="hybrid",
        provider="extractive",
        model="",
        refused=False,
        retrieved=3,
        top_score=0.5,
        notes=[],
    )


def settings_for(home: Path, **env: str) -> Settings:
    return load_settings(env={"RAGCLI_HOME": str(home), **env})


def files_containing(root: Path, needle: str) -> list[Path]:
    wanted = needle.encode("utf-8")
    return [p for p in root.rglob("*") if p.is_file() and wanted in p.read_bytes()]


def record_secret_everywhere(settings: Settings, request_id: str) -> Telemetry:
    telemetry = Telemetry(settings)
    # A degraded reason can quote the question back (an API error echoing the prompt).
    telemetry.record_ask(make_ask(SECRET, request_id, f"generator_failed: HTTP 400 for prompt {SECRET!r}"), 0.01)
    telemetry.record_ask(make_ask(f"  {SECRET.upper()}  ", request_id + "-2"), 0.01)
    telemetry.record_ingest(IngestReport(scanned=1, added=1, chunks_embedded=2, seconds=0.5))
    telemetry.feedback(request_id, "up")
    write_report(telemetry.stats(), settings.home / "report.md")
    return telemetry


def test_privacy_switch_keeps_the_question_out_of_every_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_for(tmp_path / "state", RAGCLI_TELEMETRY__STORE_QUESTION_TEXT="false")
    telemetry = record_secret_everywhere(settings, "req-private")
    # While the connection is open the WAL holds the newest pages: check it as well as the database.
    assert {p.name for p in settings.home.iterdir()} >= {"events.sqlite3", "events.sqlite3-wal", "events.sqlite3-shm"}
    assert files_containing(settings.home, SECRET) == []
    assert files_containing(settings.home, "Zanzibar") == []
    assert "Zanzibar" not in caplog.text
    telemetry.close()
    assert files_containing(settings.home, "Zanzibar") == []

    conn = sqlite3.connect(settings.home / "events.sqlite3")
    rows = conn.execute("SELECT question, question_hash, degraded_reason FROM asks ORDER BY id").fetchall()
    conn.close()
    assert rows[0][0] is None and rows[0][1].startswith("sha256:")
    assert rows[0][2] == "generator_failed"  # only the kind of failure is kept
    assert rows[0][1] == rows[1][1]  # the same question, differently cased and spaced, hashes alike


def test_without_the_privacy_switch_the_question_is_stored(tmp_path: Path) -> None:
    # The control for the test above: the same search does find the text when it is stored.
    settings = settings_for(tmp_path / "state")
    record_secret_everywhere(settings, "req-public").close()
    assert any(p.name.startswith("events.sqlite3") for p in files_containing(settings.home, SECRET))


def test_turning_the_privacy_switch_on_scrubs_earlier_questions(tmp_path: Path) -> None:
    home = tmp_path / "state"
    record_secret_everywhere(settings_for(home), "req-before").close()
    assert files_containing(home, "Zanzibar")
    private = Telemetry(settings_for(home, RAGCLI_TELEMETRY__STORE_QUESTION_TEXT="false"))
    private.record_ask(make_ask("an ordinary question", "req-after"), 0.01)
    assert files_containing(home, "Zanzibar") == []
    stats = private.stats()
    assert stats["queries"] == 3
    assert stats["degraded_by_reason"] == {"generator_failed": {"count": 1, "rate": pytest.approx(1 / 3)}}
    private.close()


def _write_events(home: str, worker: int, count: int, start: Any) -> None:
    telemetry = Telemetry(settings_for(Path(home)))
    start.wait(60)  # both processes start writing together, after their (slow) spawn-time imports
    for i in range(count):
        telemetry.record_ask(make_ask(f"question {i}", f"w{worker}-{i}"), 0.001)
    telemetry.close()


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    home = tmp_path / "state"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    workers = [ctx.Process(target=_write_events, args=(str(home), n, 200, start)) for n in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    conn = sqlite3.connect(home / "events.sqlite3")
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM asks").fetchone() == (400, 400)
    conn.close()


def test_retention_deletes_old_events_at_most_hourly(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    now = 1_700_000_000.0
    clock = [now - 100 * DAY]

    def event(request_id: str, ts: float) -> AskEvent:
        return AskEvent(request_id=request_id, ts=ts, question=None, question_hash="sha256:x",
                        timings_ms={"total": 1.0})

    log = EventLog(path, retention_days=90, clock=lambda: clock[0])
    for i in range(5):  # written 100 days ago, when they were new
        log.record_ask(event(f"old-{i}", now - 100 * DAY))
    clock[0] = now
    log.record_ask(event("new-1", now))  # first write in more than an hour: prunes
    count = "SELECT COUNT(*) FROM asks"
    assert log.conn.execute(count).fetchone()[0] == 1
    log.record_ask(event("old-late", now - 100 * DAY))  # pruned less than an hour ago: kept for now
    assert log.conn.execute(count).fetchone()[0] == 2
    clock[0] = now + 3601
    log.record_ask(event("new-2", now + 3601))
    ids = {r[0] for r in log.conn.execute("SELECT request_id FROM asks")}
    assert ids == {"new-1", "new-2"}
    log.close()


def test_schema_version_and_wal_mode(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state")
    with Telemetry(settings) as telemetry:
        telemetry.record_ask(make_ask("q", "r1"), None)
    conn = sqlite3.connect(settings.home / "events.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")  # as if a newer ragcli wrote it
    conn.close()
    with pytest.raises(StoreError, match="newer ragcli"):
        EventLog(settings.home / "events.sqlite3").record_ask(
            AskEvent(request_id="r2", ts=1.0, question=None, question_hash="h")
        )


def test_a_broken_event_log_never_fails_the_command(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path / "state")
    (settings.home / "events.sqlite3").mkdir(parents=True)  # cannot be opened as a database
    with Telemetry(settings) as telemetry:
        telemetry.record_ask(make_ask("q", "r1"), 0.1)
        telemetry.record_ask(make_ask("q", "r2"), 0.1)
        telemetry.record_ingest(IngestReport())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning, not one per event
    assert "Telemetry could not record" in warnings[0].getMessage()


def test_disabled_telemetry_records_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state", RAGCLI_TELEMETRY__ENABLED="false")
    with Telemetry(settings) as telemetry:
        telemetry.record_ask(make_ask("q", "r1"), 0.1)
        telemetry.record_ingest(IngestReport(added=1))
        stats = telemetry.stats()
    assert not settings.home.exists()
    assert stats["empty"] is True
    assert stats["telemetry_enabled"] is False


def test_ingest_event_columns(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state")
    report = IngestReport(scanned=9, added=3, updated=2, removed=1, failed=2, unsupported=1, chunks_embedded=11,
                          chunks_reused=4, seconds=2.5)
    report.failures = [{"source": "a", "stage": "embed", "error": "x"}, {"source": "b", "stage": "load", "error": "y"}]
    with Telemetry(settings, clock=lambda: 1_700_000_000.0) as telemetry:
        telemetry.record_ingest(report)
    conn = sqlite3.connect(settings.home / "events.sqlite3")
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM ingests").fetchone())
    conn.close()
    assert {k: row[k] for k in ("scanned", "added", "updated", "removed", "failed", "unsupported",
                                "chunks_embedded", "chunks_reused", "embed_errors", "duration_s", "ts")} == {
        "scanned": 9, "added": 3, "updated": 2, "removed": 1, "failed": 2, "unsupported": 1,
        "chunks_embedded": 11, "chunks_reused": 4, "embed_errors": 1, "duration_s": 2.5, "ts": 1_700_000_000.0,
    }
    assert row["embed_model"] == settings.config.embedding.model


def test_a_corrupt_event_log_is_a_clear_error_for_stats_and_feedback(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state")
    settings.home.mkdir(parents=True)
    (settings.home / "events.sqlite3").write_bytes(b"this is not a database" * 100)
    with Telemetry(settings) as telemetry:
        telemetry.record_ask(make_ask("q", "r1"), 0.1)  # only warns
        with pytest.raises(StoreError, match="cannot be read"):
            telemetry.stats()
        with pytest.raises(StoreError, match="cannot be read"):
            telemetry.feedback("r1", "up")


def _rows_on_disk(settings: Settings) -> int:
    conn = sqlite3.connect(settings.home / "events.sqlite3")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM asks").fetchone()[0])
    except sqlite3.OperationalError:  # no table yet: nothing was written
        return 0
    finally:
        conn.close()


def test_a_long_lived_process_writes_questions_in_batches(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state", RAGCLI_TELEMETRY__FLUSH_EVERY="3")
    clock = [1_700_000_000.0]
    telemetry = Telemetry(settings, clock=lambda: clock[0])
    telemetry.record_ingest(IngestReport(scanned=1, added=1, seconds=0.1))  # creates the file
    for i in range(2):
        telemetry.record_ask(make_ask("q", f"b{i}"), 0.01)
    assert _rows_on_disk(settings) == 0  # waiting for a batch of 3
    telemetry.record_ask(make_ask("q", "b2"), 0.01)
    assert _rows_on_disk(settings) == 3
    telemetry.record_ask(make_ask("q", "b3"), 0.01)
    clock[0] += 2.5  # past flush_seconds (2.0 by default): the next question writes both
    telemetry.record_ask(make_ask("q", "b4"), 0.01)
    assert _rows_on_disk(settings) == 5
    telemetry.record_ask(make_ask("q", "b5"), 0.01)
    assert telemetry.stats()["queries"] == 6  # reading flushes first
    telemetry.record_ask(make_ask("q", "b6"), 0.01)
    telemetry.feedback("b6", "down")  # the answer being rated is written before the rating
    telemetry.record_ask(make_ask("q", "b7"), 0.01)
    telemetry.close()
    assert _rows_on_disk(settings) == 8


def test_flush_every_one_writes_each_question_at_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state", RAGCLI_TELEMETRY__FLUSH_EVERY="1")
    telemetry = Telemetry(settings)
    telemetry.record_ask(make_ask("q", "now"), 0.01)
    assert _rows_on_disk(settings) == 1
    telemetry.close()


def test_questions_not_yet_written_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "state"
    script = f"""
from ragcli.config import load_settings
from ragcli.telemetry.facade import Telemetry
from tests.test_telemetry_events import make_ask
t = Telemetry(load_settings(env={{"RAGCLI_HOME": {str(home)!r}}}))
t.record_ask(make_ask("q", "left-open"), 0.01)
# no close(): a library user who forgets it still gets the event
"""
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _rows_on_disk(settings_for(home)) == 1


def test_trust_figures_reach_the_log_history_and_stats(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state")
    refused = make_ask("Who won in 2019?", "r-refused")
    refused = refused.__class__(**{**refused.__dict__, "refused": True, "refused_reason": "constraint_mismatch",
                                   "confidence": 0.05})
    answered = make_ask("How long is the warranty?", "r-answered")
    answered = answered.__class__(**{**answered.__dict__, "confidence": 0.9, "citations_verified": 0.5})
    with Telemetry(settings) as telemetry:
        telemetry.record_ask(refused, 0.01)
        telemetry.record_ask(answered, 0.01)
        stats = telemetry.stats()
    from ragcli.telemetry.events import HistoryFilter, read_history

    rows = {r["request_id"]: r for r in read_history(settings.home / "events.sqlite3", HistoryFilter())}
    assert rows["r-refused"]["refused_reason"] == "constraint_mismatch" and rows["r-refused"]["confidence"] == 0.05
    assert rows["r-answered"]["citations_verified"] == 0.5 and rows["r-answered"]["refused_reason"] is None
    assert stats["refused_by_reason"] == {"constraint_mismatch": {"count": 1, "rate": 0.5}}
    assert stats["confidence"]["p50"] == pytest.approx(0.475)
    assert stats["citations_verified"] == {"mean": 0.5, "answers_checked": 1}


def test_a_version_2_log_gains_the_trust_columns(tmp_path: Path) -> None:
    from ragcli.telemetry.events import MIGRATIONS

    path = tmp_path / "events.sqlite3"
    conn = sqlite3.connect(path)
    for statements in MIGRATIONS[:2]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    settings = settings_for(tmp_path / "state")
    from ragcli.telemetry.stats import compute_stats

    assert compute_stats(path, None, settings)["refused_by_reason"] == {}  # read-only: no migration, no error
    log = EventLog(path)
    log.record_ask(AskEvent(request_id="r", ts=time.time(), question=None, question_hash="h", refused=True,
                            refused_reason="no_relevant_passage", confidence=0.1))
    log.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert conn.execute("SELECT refused_reason, confidence FROM asks").fetchone() == ("no_relevant_passage", 0.1)
