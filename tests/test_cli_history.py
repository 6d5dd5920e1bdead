"""`ragcli history`, `history show` and feedback, over an event log written by the real EventLog."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from ragcli.cli import app
from ragcli.telemetry.events import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AskEvent,
    EventLog,
    HistoryFilter,
    read_history,
)
from tests.conftest import FIXTURES

runner = CliRunner()
DAY = 86400.0


def _run(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("RAGCLI_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("RAGCLI_HOME", str(state))
    return state


def _event(request_id: str, age_days: float, **fields: object) -> AskEvent:
    defaults: dict[str, object] = {
        "question": f"question {request_id}?",
        "question_hash": f"sha256:{request_id}",
        "answer": f"The answer to {request_id}.\nSecond line.",
        "sources": json.dumps([{"n": 1, "source": "/docs/manual.pdf", "page": 3, "cited": True}]),
        "cache": None,
        "mode": "hybrid",
        "timings_ms": {"total": 42.0},
    }
    return AskEvent(request_id=request_id, ts=time.time() - age_days * DAY, **(defaults | fields))  # type: ignore[arg-type]


@pytest.fixture
def recorded(home: Path) -> Path:
    log = EventLog(home / "events.sqlite3")
    log.record_asks(
        [
            _event("aaa111", 3.0),
            _event("bbb222", 0.5, refused=True, answer="I could not find this in the documents."),
            _event("bbb333", 0.2, degraded=True, degraded_reason="reranker_failed: timeout"),
            _event("ccc444", 0.1, cache="exact"),
        ]
    )
    log.close()
    return home


def _ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [row["request_id"] for row in json.loads(result.stdout)]


def test_history_lists_newest_first_and_filters(recorded: Path) -> None:
    assert _ids(_run("history", "--json")) == ["ccc444", "bbb333", "bbb222", "aaa111"]
    assert _ids(_run("history", "-n", "2", "--json")) == ["ccc444", "bbb333"]
    assert _ids(_run("history", "--refused", "--json")) == ["bbb222"]
    assert _ids(_run("history", "--degraded", "--json")) == ["bbb333"]
    assert _ids(_run("history", "--since", "1d", "--json")) == ["ccc444", "bbb333", "bbb222"]
    assert _ids(_run("history", "--refused", "--degraded", "--json")) == []
    assert _run("history", "-n", "0").exit_code == 2
    row = json.loads(_run("history", "-n", "1", "--json").stdout)[0]
    for key in ("question", "answer", "request_id", "cache", "latency_ms", "feedback", "sources"):
        assert key in row
    assert row["cache"] == "exact" and row["latency_ms"] == 42.0


def test_piped_history_is_tab_separated_with_a_summary_per_question(recorded: Path) -> None:
    lines = _run("history").stdout.splitlines()
    assert lines[0].split("\t") == ["when", "request id", "question", "answer", "cache", "ms", "feedback"]
    assert len(lines) == 5
    newest = lines[1].split("\t")
    assert newest[1] == "ccc444" and newest[2] == "question ccc444?"
    assert newest[3] == "The answer to ccc444. Second line."  # one line per question
    assert lines[3].split("\t")[3].startswith("refused: ")


def test_history_show_takes_an_id_or_its_start(recorded: Path) -> None:
    shown = _run("history", "show", "ccc")
    assert shown.exit_code == 0, shown.output
    assert "question ccc444?" in shown.stdout and "Second line." in shown.stdout
    assert "/docs/manual.pdf, page 3" in shown.stdout
    assert json.loads(_run("history", "show", "aaa111", "--json").stdout)["request_id"] == "aaa111"
    ambiguous = _run("history", "show", "bbb")
    assert ambiguous.exit_code == 2 and "bbb222" in ambiguous.stderr and "bbb333" in ambiguous.stderr
    missing = _run("history", "show", "zzz")
    assert missing.exit_code == 2 and "ragcli history" in missing.stderr


def test_feedback_is_case_insensitive_and_a_second_rating_replaces_the_first(recorded: Path) -> None:
    first = _run("feedback", "ccc444", "UP")
    assert first.exit_code == 0, first.output
    assert "already rated" not in first.stderr
    second = _run("feedback", "ccc", "Down", "--note", "wrong page")  # the start of the id is enough
    assert second.exit_code == 0, second.output
    assert "already rated up" in second.stderr and "replaced" in second.stderr
    row = json.loads(_run("history", "show", "ccc444", "--json").stdout)
    assert (row["feedback"], row["feedback_note"]) == ("down", "wrong page")
    assert _run("feedback", "ccc444", "sideways").exit_code == 2


def test_an_event_log_from_before_the_answer_column_is_migrated_and_read(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO asks (request_id, ts, question, question_hash) VALUES ('old1', 1.0, 'q?', 'h')")
    conn.commit()
    conn.close()
    rows = read_history(path, HistoryFilter())
    assert [(r["request_id"], r["answer"]) for r in rows] == [("old1", None)]
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reading_history_never_creates_the_log(tmp_path: Path) -> None:
    assert read_history(tmp_path / "nothing" / "events.sqlite3", HistoryFilter()) == []
    assert not (tmp_path / "nothing").exists()


@pytest.mark.slow
def test_an_asked_question_shows_up_with_its_answer_and_request_id(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run("ingest", str(FIXTURES / "docs"), "--json").exit_code == 0
    # On a terminal the request id is printed, dimmed, on stderr under the answer.
    terminal = io.StringIO()
    monkeypatch.setattr("ragcli.app.ask.stderr", Console(file=terminal, force_terminal=True, width=200))
    asked = _run("ask", "What is the default Wi-Fi password of the mount?")
    assert asked.exit_code == 0, asked.output
    latest = json.loads(_run("history", "-n", "1", "--json").stdout)[0]
    assert f"request id {latest['request_id']}" in terminal.getvalue()
    assert "\x1b[2m" in terminal.getvalue()  # dim
    assert latest["request_id"] not in asked.stdout  # not in what a pipe receives
    assert "northstar-58" in latest["answer"]
    assert any(s["source"].endswith("setup-guide.md") for s in latest["sources"])
    shown = _run("history", "show", latest["request_id"][:8])
    assert "northstar-58" in shown.stdout and "setup-guide.md" in shown.stdout
    # The stats report piped: whole lines, none cut to a terminal width.
    stats = _run("stats").stdout
    assert "(hits × the mean cost of a miss, less what the hits cost)." in stats


def test_privacy_mode_keeps_the_answer_out_of_the_log(home: Path) -> None:
    from ragcli.config import load_settings
    from ragcli.telemetry.facade import Telemetry

    settings = load_settings(env={"RAGCLI_HOME": str(home), "RAGCLI_TELEMETRY__STORE_QUESTION_TEXT": "false"})
    result = {"request_id": "p1", "question": "secret?", "answer": "secret answer", "citations": [{"n": 1, "source": "/x"}]}
    with Telemetry(settings) as telemetry:
        telemetry.record_ask(result)
    row = read_history(home / "events.sqlite3", HistoryFilter())[0]
    assert (row["question"], row["answer"], row["sources"]) == (None, None, [])
