"""`ragcli eval retrieval --ci --details` on the tiny BEIR folder, through the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app

TINY = Path(__file__).parent / "data" / "beir_tiny"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .ragcli.toml; the eval index goes under this home
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "state"))
    return tmp_path


def test_ci_and_details(home: Path) -> None:
    details = home / "out" / "per-query.jsonl"
    args = ["eval", "retrieval", str(TINY), "--variant", "vector", "--variant", "hybrid", "--variant", "keyword"]
    result = CliRunner().invoke(app, [*args, "--ci", "--details", str(details), "--json"])
    assert result.exit_code == 0, result.output
    variants = json.loads(result.stdout)["variants"]
    assert "ci" not in variants["vector"]  # the baseline
    for name in ("hybrid", "keyword"):
        iv = variants[name]["ci"]["ndcg@10"]
        assert iv["low"] <= iv["delta"] <= iv["high"]
        assert iv["delta"] == pytest.approx(variants[name]["ndcg@10"] - variants["vector"]["ndcg@10"])
        assert 0.0 <= iv["p"] <= 1.0 and iv["queries"] == variants[name]["queries"]
    rows = [json.loads(line) for line in details.read_text().splitlines()]
    assert {r["variant"] for r in rows} == {"vector", "hybrid", "keyword"}
    assert len(rows) == 3 * variants["vector"]["queries"]
    for row in rows:
        assert {"query_id", "ndcg@10", "recall@100", "ms"} <= row.keys()
    for name in variants:
        mine = [r["ndcg@10"] for r in rows if r["variant"] == name]
        assert sum(mine) / len(mine) == pytest.approx(variants[name]["ndcg@10"])

    table = CliRunner().invoke(app, [*args[:7], "--ci"])  # vector and hybrid
    assert table.exit_code == 0, table.output
    assert "95% interval" in table.stdout and "ndcg@10" in table.stdout
    lonely = CliRunner().invoke(app, [*args[:5], "--ci"])
    assert lonely.exit_code == 0 and "needs at least two variants" in lonely.output
