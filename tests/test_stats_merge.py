"""`ragcli stats --from DIR …`: several machines' event logs merged into one set of figures."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import load_settings
from ragcli.ingest.pipeline import IngestReport
from ragcli.telemetry.facade import Telemetry
from tests.test_telemetry_stats import NOW, make_ask


def machine_log(home: Path, asks: dict[str, float], ingest_seconds: float) -> Path:
    settings = load_settings(env={"RAGCLI_HOME": str(home)})
    with Telemetry(settings, clock=lambda: NOW) as telemetry:
        for n, (request_id, total) in enumerate(asks.items()):
            telemetry.record_ask(make_ask(request_id, total=total, cache="exact" if n == 0 else None), 0.1, at=NOW - 60 + n)
        telemetry.record_ingest(IngestReport(scanned=10, added=10, seconds=ingest_seconds), at=NOW - 120)
        telemetry.feedback(next(iter(asks)), "up")
    return home


def test_two_machines_logs_give_fleet_wide_percentiles_and_sums(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web1 = machine_log(tmp_path / "web1", {"a1": 100.0, "a2": 200.0}, 5.0)
    web2 = machine_log(tmp_path / "web2", {"a3": 300.0, "a4": 400.0, "a5": 1000.0}, 7.0)
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "local"))
    runner = CliRunner()
    # web2 given twice (as a folder and as its file): its events count once.
    result = runner.invoke(
        app, ["stats", "--from", str(web1), "--from", str(web2), "--from", str(web2 / "events.sqlite3"), "--json"]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["queries"] == 5
    assert stats["latency_ms"]["total"]["p50"] == 300.0  # the median of all five, not of per-machine medians
    assert stats["cache"]["exact_hits"] == 2
    assert stats["ingest"]["runs"] == 2
    assert stats["feedback"]["up"] == 2
    assert stats["merged_from"] == [str((web1 / "events.sqlite3").resolve()), str((web2 / "events.sqlite3").resolve())]
    # The sources are only read.
    with sqlite3.connect(web1 / "events.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM asks").fetchone()[0] == 2

    missing = runner.invoke(app, ["stats", "--from", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no event log" in missing.stderr
