"""`ragcli ingest --engine ray` on a local Ray instance (num_cpus=2, loopback), started once per session.

The Ray run must leave exactly the index a local run leaves (same chunk ids and hashes), with the same
dead letters, skips and prunes, because it commits through the same code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings
from ragcli.ingest.deadletter import DeadLetterFile
from ragcli.ingest.pipeline import Ingestor
from ragcli.ingest.ray_engine import RayIngestor
from ragcli.store import get_store
from tests.conftest import REPO, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    ray = pytest.importorskip("ray")
    from ragcli.ingest.ray_engine import quiet_fork_warning

    with quiet_fork_warning():
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
            logging_level="WARNING",
        )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def index_state(settings: Settings) -> list[tuple[str, str, int, str]]:
    rows = get_store(settings).all_rows(["id", "source", "chunk_index", "chunk_hash"])
    return sorted(
        (Path(s).name, i, n, h)
        for s, i, n, h in zip(rows["source"], rows["id"], rows["chunk_index"], rows["chunk_hash"], strict=True)
    )


def test_a_ray_ingest_leaves_the_index_a_local_ingest_leaves(
    ray_cluster: str, docs_tree: Path, tmp_path: Path, embedder: Any
) -> None:
    (docs_tree / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (docs_tree / "sound.wav").write_bytes(b"RIFF")
    local = make_settings(tmp_path / "local")
    distributed = make_settings(tmp_path / "ray")
    expected = Ingestor(local, embedder=embedder).run([docs_tree])
    report = RayIngestor(distributed, embedder=embedder).run([docs_tree])
    assert (report.added, report.failed, report.unsupported) == (expected.added, 1, 1)
    assert report.chunks_embedded + report.chunks_reused == expected.chunks_embedded
    # Same source paths in both (the same tree), so even the chunk ids must agree.
    assert index_state(distributed) == index_state(local)
    dead = DeadLetterFile(distributed.dead_letter_path).entries
    assert [Path(s).name for s in dead] == ["broken.pdf"] and dead[str(docs_tree / "broken.pdf")].stage == "load"

    # Unchanged: nothing goes to Ray. Changed and removed files: replaced and pruned.
    again = RayIngestor(distributed, embedder=embedder).run([docs_tree])
    assert (again.skipped_unchanged, again.skipped_failed, again.chunks_embedded) == (expected.added, 1, 0)
    (docs_tree / "faq.txt").write_text("FAQ\n\nThe warranty now lasts five years.\n", encoding="utf-8")
    (docs_tree / "release-notes.md").unlink()
    changed = RayIngestor(distributed, embedder=embedder).run([docs_tree])
    assert (changed.updated, changed.removed) == (1, 1)
    Ingestor(local, embedder=embedder).run([docs_tree])
    assert index_state(distributed) == index_state(local)


def test_cli_ingest_with_the_ray_engine_on_an_existing_cluster(ray_cluster: str, docs_tree: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update(RAGCLI_HOME=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(docs_tree), "--engine", "ray", "--address", ray_cluster, "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == len(list(docs_tree.iterdir())) and summary["failed"] == 0
    assert summary["chunks_embedded"] > 0


def test_a_ray_ingest_killed_after_a_commit_is_finished_by_the_next_run(
    ray_cluster: str, docs_tree: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update(RAGCLI_HOME=str(tmp_path / "state"), RAGCLI_INGEST__WRITE_BATCH_DOCS="2")
    command = [sys.executable, "-m", "ragcli", "ingest", str(docs_tree), "--engine", "ray", "--address", ray_cluster]
    crashed = subprocess.run(
        [*command], env=env | {"RAGCLI_TEST_CRASH_AT": "after_write:2"}, cwd=REPO, capture_output=True, text=True,
        timeout=300,
    )
    assert crashed.returncode == -9, crashed.stderr
    partial = make_settings(tmp_path / "state")
    assert 0 < len({row[0] for row in index_state(partial)}) < len(list(docs_tree.iterdir()))
    rerun = subprocess.run([*command, "--json"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped_unchanged"] == 4 and summary["added"] == len(list(docs_tree.iterdir())) - 4
    local = make_settings(tmp_path / "local")
    Ingestor(local).run([docs_tree])
    assert index_state(partial) == index_state(local)


def test_an_unreachable_cluster_is_a_usage_error(tmp_path: Path, docs_tree: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update(RAGCLI_HOME=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(docs_tree), "--engine", "ray", "--address", "127.0.0.1:9"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Cannot reach the Ray cluster at 127.0.0.1:9" in result.stderr and "Fix:" in result.stderr
