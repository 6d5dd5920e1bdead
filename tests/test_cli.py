"""The command line end to end: exit codes, --json output, error messages, privacy, stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ragcli.cli import app
from ragcli.ingest.lock import IngestLock
from tests.conftest import FIXTURES

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("RAGCLI_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("RAGCLI_HOME", str(state))
    return state


def _run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def _json(result: Result) -> Any:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)


@pytest.fixture
def ingested(home: Path) -> Path:
    result = _run("ingest", str(FIXTURES / "docs"), "--json")
    assert result.exit_code == 0, result.output
    return home


def test_help_lists_commands_and_exit_codes() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    for word in ("ingest", "ask", "eval", "stats", "dlq", "cache", "reindex", "Exit codes"):
        assert word in result.stdout


def test_ingest_json_summary_and_second_run(ingested: Path) -> None:
    again = _json(_run("ingest", str(FIXTURES / "docs"), "--json"))
    for key in ("scanned", "skipped_unchanged", "added", "updated", "removed", "failed", "unsupported",
                "chunks_embedded", "seconds"):  # fmt: skip
        assert key in again
    assert again["skipped_unchanged"] == again["scanned"] == 9
    assert again["chunks_embedded"] == 0


def test_partial_failure_exit_code_and_dead_letter_commands(home: Path) -> None:
    result = _run("ingest", str(FIXTURES / "broken"), "--json")
    assert result.exit_code == 3
    summary = _json(result)
    assert summary["failed"] == 5 and summary["unsupported"] == 1
    listed = _json(_run("dlq", "list", "--json"))
    assert {Path(e["source"]).name for e in listed} == {
        "corrupt.pdf", "encrypted.pdf", "empty.txt", "whitespace.txt", "binary.txt",
    }  # fmt: skip
    for entry in listed:
        assert {"time", "source", "stage", "error_type", "message", "attempts", "content_hash"} <= set(entry)
    human = _run("dlq", "list")
    assert "encrypted" in human.stdout.lower()
    retried = _run("dlq", "retry", "--json")
    assert retried.exit_code == 3 and _json(retried)["failed"] == 5
    assert _json(_run("dlq", "clear", "--json")) == {"cleared": 5}
    assert _json(_run("dlq", "list", "--json")) == []


def test_missing_path_is_a_usage_error(home: Path) -> None:
    result = _run("ingest", "nope/not-here")
    assert result.exit_code == 2
    assert "Error:" in result.stderr and "does not exist" in result.stderr


def test_a_state_folder_that_is_a_file_or_a_config_that_is_a_folder_is_a_usage_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("", encoding="utf-8")
    monkeypatch.setenv("RAGCLI_HOME", str(afile))
    for args in (("ingest", str(FIXTURES / "docs")), ("ask", "What is E23?")):
        result = _run(*args)
        assert result.exit_code == 2, result.output
        assert "is a file, not a folder" in result.stderr and "RAGCLI_HOME" in result.stderr
    result = _run("--config", str(tmp_path), "stats")
    assert result.exit_code == 2 and "is a folder, not a file" in result.stderr


def test_stats_report_into_a_missing_folder_is_refused_not_created(ingested: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "report.md"
    result = _run("stats", "--report", str(target))
    assert result.exit_code == 2 and "mkdir -p" in result.stderr
    assert not (tmp_path / "no").exists()


def test_ingest_diagnostics_go_to_stderr(home: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha beta gamma delta epsilon.\n", encoding="utf-8")
    assert _run("ingest", str(docs)).exit_code == 0
    (docs / "a.md").unlink()
    result = _run("ingest", str(docs))
    assert result.exit_code == 0
    assert "Found no files" not in result.stdout and "--force-prune" in result.stderr


def test_a_bad_flag_reads_like_every_other_error(tmp_path: Path) -> None:
    """The console script (not CliRunner): click's usage errors as "Error: … / Fix: …", no box, exit 2."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | {"RAGCLI_HOME": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ragcli", *args], env=env, capture_output=True, text=True, timeout=120
        )

    for args, message, fix in (
        # (the program is named as it was run: `python -m ragcli` here)
        (("ask", "x", "--k", "abc"), "Error: Invalid value for '--k'", "ragcli ask --help`."),
        (("ingest",), "Error: Missing argument 'PATH'.", "ragcli ingest --help`."),
        (("nosuch",), "Error: No such command 'nosuch'.", "ragcli --help`."),
    ):
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(message) and fix in result.stderr and "╭" not in result.stderr
    bare = cli()
    assert bare.returncode == 2 and "Usage:" in bare.stdout and bare.stderr == ""
    assert cli("--version").returncode == 0


def test_malformed_config_names_key_and_file(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[embedding]\nbatch_sise = 3\n", encoding="utf-8")
    result = _run("--config", str(config), "ingest", str(FIXTURES / "docs"))
    assert result.exit_code == 2
    assert "embedding.batch_sise" in result.stderr and str(config) in result.stderr
    assert "Fix:" in result.stderr


def test_second_ingest_while_locked_exits_4(home: Path) -> None:
    with IngestLock(home / "ingest.lock"):
        result = _run("ingest", str(FIXTURES / "docs"))
    assert result.exit_code == 4
    assert "Another ingest" in result.stderr


def test_embedder_mismatch_exits_5_and_names_reindex(ingested: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same model files under another name stand in for "a different embedder".
    monkeypatch.setenv("RAGCLI_EMBEDDING__MODEL", "bge-small-renamed")
    from ragcli.embedding.onnx import resolve_model_dir

    monkeypatch.setenv("RAGCLI_EMBEDDING__MODEL_PATH", str(resolve_model_dir("bge-small-en-v1.5", None)))
    result = _run("ask", "What does error code E23 mean?", "--no-cache")
    assert result.exit_code == 5
    assert "ragcli reindex" in result.stderr


def test_config_show_reports_sources(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGCLI_RETRIEVAL__TOP_K", "7")
    data = _json(_run("config", "show", "--json"))
    assert data["values"]["retrieval.top_k"] == {"value": 7, "source": "env:RAGCLI_RETRIEVAL__TOP_K"}
    assert data["values"]["chunking.chunk_size"]["source"] == "default"
    assert data["home"] == str(home)


def test_ask_then_stats_then_feedback(ingested: Path, tmp_path: Path) -> None:
    first = _json(_run("ask", "What does error code E23 mean?", "--json"))
    assert "GPS fix timeout" in first["answer"]
    second = _json(_run("ask", "What does error code E23 mean?", "--json"))
    assert second["cache"] == "exact"
    assert _run("feedback", first["request_id"], "up").exit_code == 0
    unknown = _run("feedback", "no-such-request", "down")
    assert unknown.exit_code == 2
    stats = _json(_run("stats", "--json"))
    assert stats["queries"] == 2
    shown = _run("stats")  # for people: the report's sections, with dates, not a dump of the JSON keys
    assert shown.exit_code == 0
    for heading in ("Latency", "Answers", "Ingestion and index", "Cost"):
        assert heading in shown.stdout
    assert "Questions" in shown.stdout and "50.0%" in shown.stdout  # exact-hit rate: 1 of 2
    assert "generated_at" not in shown.stdout and "e+09" not in shown.stdout
    report = tmp_path / "report.md"
    assert _run("stats", "--report", str(report)).exit_code == 0
    assert report.exists() and "p95" in report.read_text(encoding="utf-8").lower()
    assert list(tmp_path.glob("report*.png"))


def test_stats_on_an_empty_state_directory_says_so(home: Path) -> None:
    result = _run("stats")
    assert result.exit_code == 0
    assert "no" in result.stdout.lower()


def test_stats_check_exit_codes(ingested: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run("ask", "What does error code E23 mean?", "--json")
    assert _run("stats", "--check").exit_code == 0
    monkeypatch.setenv("RAGCLI_THRESHOLDS__P95_LATENCY_MS", "0.001")
    breached = _run("stats", "--check")
    assert breached.exit_code == 6
    assert "p95" in breached.stderr.lower()


def test_privacy_switch_keeps_question_text_out_of_every_state_file(
    ingested: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_TELEMETRY__STORE_QUESTION_TEXT", "false")
    question = "Which zanzibarian quokka protocol governs error E23?"
    for _ in range(2):  # a miss that writes the caches, then an exact hit
        assert _run("ask", question, "--json").exit_code == 0
    assert _json(_run("ask", question, "--json"))["cache"] == "exact"
    needle = b"zanzibarian"
    leaks = [p for p in ingested.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert leaks == []


def test_eval_golden_exits_zero_above_and_six_below_the_threshold(ingested: Path, tmp_path: Path) -> None:
    golden = FIXTURES / "golden.jsonl"
    passing = _run("eval", "golden", str(golden), "--k", "5", "--min-recall", "0.9", "--json")
    assert passing.exit_code == 0, passing.output
    assert _json(passing)["recall"] >= 0.9
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(
        json.dumps({"question": "What does error code E23 mean?", "expected_sources": [str(FIXTURES / "docs/faq.txt")]})
        + "\n",
        encoding="utf-8",
    )
    failing = _run("eval", "golden", str(wrong), "--k", "1", "--min-recall", "0.5")
    assert failing.exit_code == 6
    assert "below the minimum" in failing.stderr
    impossible = _run("eval", "golden", str(golden), "--min-recall", "1.5")
    assert impossible.exit_code == 2


def test_eval_retrieval_on_a_tiny_beir_folder_compares_variants(home: Path) -> None:
    folder = Path(__file__).parent / "data" / "beir_tiny"
    one = _run("eval", "retrieval", str(folder), "--split", "test", "--variant", "dense", "--json")
    assert one.exit_code == 0, one.output
    data = _json(one)
    for key in ("ndcg@10", "recall@10", "recall@100", "mrr@10", "queries", "p50_ms", "p95_ms", "fingerprint"):
        assert key in data
    assert data["queries"] >= 2 and data["ndcg@10"] > 0.5
    both = _run("eval", "retrieval", str(folder), "--variant", "vector", "--variant", "keyword", "--json")
    variants = _json(both)["variants"]
    assert set(variants) == {"vector", "keyword"}
    assert variants["keyword"]["mode"] == "keyword"
    table = _run("eval", "retrieval", str(folder), "--variant", "vector", "--variant", "hybrid")
    assert table.exit_code == 0 and "ndcg@10" in table.stdout and "hybrid" in table.stdout
    assert _run("eval", "retrieval", str(folder), "--variant", "sparse").exit_code == 2


def test_cache_stats_and_clear(ingested: Path) -> None:
    _run("ask", "What does error code E23 mean?", "--json")
    _run("ask", "What does error code E23 mean?", "--json")
    stats = _json(_run("cache", "stats", "--json"))
    assert stats["answers"]["entries"] == 1 and stats["answers"]["exact_hits"] == 1
    assert stats["embeddings"]["chunk_entries"] > 0
    assert stats["hit_rate"] == 0.5
    cleared = _json(_run("cache", "clear", "--kind", "answers", "--json"))
    assert cleared["cleared"]["answers"] >= 1
    assert _json(_run("ask", "What does error code E23 mean?", "--json"))["cache"] is None
    assert _run("cache", "clear", "--kind", "everything").exit_code == 2


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_commands(sub, (*path, name)))
    return found


def test_no_help_text_is_lost_to_rich_markup() -> None:
    # Typer renders help through Rich, which takes "[word]" for a style tag and drops it silently.
    import re

    import typer

    for path, command in _commands(typer.main.get_command(app)):
        result = _run(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        shown = set(re.split(r"[\s│]+", result.stdout))
        for param in command.params:
            for word in (getattr(param, "help", None) or "").split():
                assert word in shown, (path, param.name, word)


def test_unreachable_embedding_service_fails_the_run_clearly_and_blames_no_document(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RAGCLI_EMBEDDING__BACKEND", "openai")
    monkeypatch.setenv("RAGCLI_EMBEDDING__BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("RAGCLI_EMBEDDING__MAX_RETRIES", "0")
    result = _run("ingest", str(FIXTURES / "docs"))
    assert result.exit_code == 5  # the model cannot be used as configured; not "internal error" (1)
    assert "Error: The embedding model cannot be used" in result.output
    assert "Fix: Check embedding.base_url" in result.output
    assert "Traceback" not in result.output
    # The service is down, not the documents: none of them is parked in the dead letter file.
    dead = home / "dead_letter.jsonl"
    assert not dead.exists() or dead.read_text(encoding="utf-8").strip() == ""
