"""Idempotent ingestion into a real LanceDB with the real ONNX embedder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings
from ragcli.errors import EmbedderMismatchError, LockHeldError, UsageError
from ragcli.ingest.deadletter import DeadLetterFile
from ragcli.ingest.lock import IngestLock
from ragcli.ingest.pipeline import Ingestor
from ragcli.store import get_store
from ragcli.store.lance import EmbedderIdentity, LanceStore
from tests.conftest import FIXTURES, REPO, CountingEmbedder, RecordingObserver, make_settings


def _tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "alpha.md").write_text(
        "# Alpha\n\nThe alpha valve opens at 42 kPa.\n\n## Maintenance\n\nGrease the alpha valve yearly.\n",
        encoding="utf-8",
    )
    (root / "beta.txt").write_text("Beta pumps run on 24 volt power.\n\nThey weigh 3 kg.\n", encoding="utf-8")
    sub = root / "sub"
    sub.mkdir(exist_ok=True)
    (sub / "gamma.md").write_text("# Gamma\n\nGamma sensors report every 15 seconds.\n", encoding="utf-8")
    return root


def _ingest(settings: Settings, embedder: Any, *paths: Path, **kwargs: Any) -> Any:
    return Ingestor(settings, embedder=embedder).run(list(paths), **kwargs)


def _rows(settings: Settings) -> list[tuple[str, str, str, str]]:
    store = get_store(settings)
    data = store.all_rows(["id", "chunk_hash", "source", "doc_hash"])
    return sorted(zip(data["id"], data["chunk_hash"], data["source"], data["doc_hash"], strict=True))


def test_first_ingest_indexes_everything_with_full_metadata(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    report = _ingest(settings, embedder, root)
    assert (report.scanned, report.added, report.failed, report.unsupported) == (3, 3, 0, 0)
    assert report.chunks_embedded == embedder.texts_embedded > 0
    store = get_store(settings)
    data = store.all_rows(
        ["source", "title", "heading", "chunk_index", "char_start", "char_end", "token_count", "text"]
    )
    assert set(data["source"]) == {str(p.resolve()) for p in root.rglob("*.*")}
    alpha = [i for i, s in enumerate(data["source"]) if s.endswith("alpha.md")]
    headings = {data["heading"][i] for i in alpha}
    assert "Alpha > Maintenance" in headings
    from ragcli.loaders import get_loader

    path = root / "alpha.md"
    loader = get_loader(path)
    assert loader is not None
    original = loader.load(path, path.read_bytes()).text
    for i in alpha:
        # Offsets point back into the document's (loaded) text, so a citation can show the exact span.
        assert original[data["char_start"][i] : data["char_end"][i]] == data["text"][i]
        assert data["token_count"][i] > 0


def test_second_ingest_of_unchanged_tree_embeds_and_writes_nothing(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    version = get_store(settings).table.version
    embedder.reset()
    report = _ingest(settings, embedder, root)
    assert embedder.texts_embedded == 0
    assert embedder.calls == 0
    assert report.skipped_unchanged == 3
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert get_store(settings).table.version == version


def test_a_loader_fixed_in_an_upgrade_parses_its_documents_again_once(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli.loaders.markdown import MarkdownLoader

    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    embedder.reset()
    monkeypatch.setattr(MarkdownLoader, "version", MarkdownLoader.version + 1)
    report = _ingest(settings, embedder, root)
    # The two Markdown files are parsed again; the text file is not. Their text did not change, so no
    # chunk is embedded again.
    assert (report.updated, report.skipped_unchanged) == (2, 1)
    assert embedder.texts_embedded == 0
    assert _ingest(settings, embedder, root).skipped_unchanged == 3


def test_changed_file_reembeds_only_its_own_chunks(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    before = _rows(settings)
    (root / "beta.txt").write_text("Beta pumps run on 48 volt power now.\n\nThey weigh 3 kg.\n", encoding="utf-8")
    embedder.reset()
    report = _ingest(settings, embedder, root)
    assert report.updated == 1 and report.skipped_unchanged == 2
    beta_chunks = [r for r in _rows(settings) if r[2].endswith("beta.txt")]
    assert 0 < embedder.texts_embedded <= len(beta_chunks)
    after = _rows(settings)
    assert [r for r in after if not r[2].endswith("beta.txt")] == [
        r for r in before if not r[2].endswith("beta.txt")
    ]
    assert len({r[3] for r in beta_chunks}) == 1  # one version of the document, never a mix


def test_deleted_file_leaves_the_index_and_rename_makes_no_duplicate(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    (root / "beta.txt").unlink()
    (root / "sub" / "gamma.md").rename(root / "sub" / "gamma-renamed.md")
    report = _ingest(settings, embedder, root)
    assert report.removed == 2 and report.added == 1
    sources = {r[2] for r in _rows(settings)}
    assert not any(s.endswith("beta.txt") for s in sources)
    assert sum(1 for s in sources if "gamma" in s) == 1
    texts = get_store(settings).all_rows(["text"])["text"]
    assert sum("Gamma sensors" in t for t in texts) == 1


def test_no_prune_keeps_removed_files(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> None:
    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    (root / "beta.txt").unlink()
    report = _ingest(settings, embedder, root, prune=False)
    assert report.removed == 0
    assert any(r[2].endswith("beta.txt") for r in _rows(settings))


def test_emptied_folder_is_not_pruned_without_force(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    root.mkdir(exist_ok=True)
    report = _ingest(settings, embedder, root)
    assert report.removed == 0 and report.warnings
    # The command it suggests is one that runs: the flag needs the folder.
    assert f"`ragcli ingest --force-prune {root}`" in report.warnings[0]
    assert _ingest(settings, embedder, root, force_prune=True).removed == 3


def test_keyword_search_sees_new_and_changed_documents(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    table = get_store(settings).table
    assert table.search("grease", query_type="fts").limit(5).to_list()
    (root / "delta.md").write_text("# Delta\n\nThe flux capacitor needs plutonium.\n", encoding="utf-8")
    (root / "alpha.md").write_text("# Alpha\n\nThe alpha valve is lubricated with tallow.\n", encoding="utf-8")
    _ingest(settings, embedder, root)
    table = get_store(settings).table
    assert [r["source"] for r in table.search("plutonium", query_type="fts").limit(5).to_list()] == [
        str((root / "delta.md").resolve())
    ]
    assert table.search("tallow", query_type="fts").limit(5).to_list()
    assert not table.search("grease", query_type="fts").limit(5).to_list()


def test_single_file_and_missing_path(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> None:
    root = _tree(tmp_path / "docs")
    report = _ingest(settings, embedder, root / "alpha.md")
    assert (report.scanned, report.added) == (1, 1)
    with pytest.raises(UsageError, match="does not exist"):
        _ingest(settings, embedder, tmp_path / "missing")


def test_empty_directory_is_a_quiet_success(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = _ingest(settings, embedder, empty)
    assert (report.scanned, report.failed, report.added) == (0, 0, 0)


def test_mismatched_embedder_is_refused_naming_reindex(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    _ingest(settings, embedder, _tree(tmp_path / "docs"))
    store = get_store(settings)
    with pytest.raises(EmbedderMismatchError, match="ragcli reindex"):
        store.ensure_identity(EmbedderIdentity("all-MiniLM-L6-v2", 384), create=False)
    with pytest.raises(EmbedderMismatchError):
        store.ensure_identity(EmbedderIdentity(embedder.name, 768), create=False)
    store.ensure_identity(EmbedderIdentity(embedder.name, embedder.dimension), create=False)


def test_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    with IngestLock(settings.lock_path), pytest.raises(LockHeldError, match="Another ingest"):
        _ingest(settings, embedder, root)
    # A lock file left by a killed process names it, but holds no flock: the next run takes over.
    settings.lock_path.write_text("pid=999999 host=gone since=0\n", encoding="utf-8")
    assert _ingest(settings, embedder, root).added == 3


BROKEN_EXPECTED_FAILED = {"corrupt.pdf", "encrypted.pdf", "empty.txt", "whitespace.txt", "binary.txt"}


def test_broken_files_go_to_the_dead_letter_file_and_are_not_retried_forever(
    settings: Settings, embedder: CountingEmbedder
) -> None:
    broken = FIXTURES / "broken"
    report = _ingest(settings, embedder, broken)
    failed = {Path(str(f["source"])).name for f in report.failures}
    assert failed == BROKEN_EXPECTED_FAILED
    assert report.unsupported >= 1
    assert report.added == report.scanned - report.failed - report.unsupported >= 2  # latin1, utf16 load
    dead = DeadLetterFile(settings.dead_letter_path)
    assert {Path(s).name for s in dead.entries} == BROKEN_EXPECTED_FAILED
    for entry in dead.entries.values():
        assert entry.message and entry.stage and entry.content_hash and entry.attempts == 1
    # Permanent failures of unchanged files are not tried again on the next run...
    again = _ingest(settings, embedder, broken)
    assert again.failed == 0 and again.skipped_failed == len(BROKEN_EXPECTED_FAILED)
    assert all(e.attempts == 1 for e in DeadLetterFile(settings.dead_letter_path).entries.values())
    # ...unless asked to.
    forced = _ingest(settings, embedder, broken, retry_failed=True)
    assert forced.failed == len(BROKEN_EXPECTED_FAILED)
    assert all(e.attempts == 2 for e in DeadLetterFile(settings.dead_letter_path).entries.values())


def test_a_fixed_file_leaves_the_dead_letter_file(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    (root / "later.txt").write_bytes(b"")
    report = _ingest(settings, embedder, root)
    assert report.failed == 1
    (root / "later.txt").write_text("Now it has text about zeppelins.\n", encoding="utf-8")
    report = _ingest(settings, embedder, root)
    assert report.added == 1 and report.failed == 0
    assert DeadLetterFile(settings.dead_letter_path).entries == {}


def test_a_failure_never_removes_the_indexed_version(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "docs")
    _ingest(settings, embedder, root)
    before = [r for r in _rows(settings) if r[2].endswith("beta.txt")]
    (root / "beta.txt").write_bytes(b"\x00\x01\x02binary now\x00")
    report = _ingest(settings, embedder, root)
    assert report.failed == 1
    assert [r for r in _rows(settings) if r[2].endswith("beta.txt")] == before


# ----- crash safety --------------------------------------------------------------------------------
def _run_cli(args: list[str], home: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update({"RAGCLI_HOME": str(home), "RAGCLI_INGEST__WRITE_BATCH_DOCS": "1"})
    if crash_at:
        env["RAGCLI_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )


def _index_state(home: Path, root: Path) -> list[tuple[str, int, str]]:
    """(path relative to the tree, chunk index, chunk hash) for every chunk; also checks that each id is
    the deterministic id of (document, index, hash), so equal states mean equal chunk ids."""
    from ragcli.models import chunk_id_for, doc_id_for

    store = LanceStore.open(str(home / "lancedb"))
    data = store.all_rows(["source", "id", "chunk_index", "chunk_hash"])
    rows = []
    for source, chunk_id, index, chunk_hash in zip(
        data["source"], data["id"], data["chunk_index"], data["chunk_hash"], strict=True
    ):
        assert chunk_id == chunk_id_for(doc_id_for(source), index, chunk_hash)
        rows.append((str(Path(source).relative_to(root.resolve())), index, chunk_hash))
    return sorted(rows)


def _assert_consistent(home: Path) -> None:
    store = LanceStore.open(str(home / "lancedb"))
    data = store.all_rows(["id", "doc_id", "doc_hash"])
    assert len(data["id"]) == len(set(data["id"])), "duplicate chunk ids"
    versions: dict[str, set[str]] = {}
    for doc_id, doc_hash in zip(data["doc_id"], data["doc_hash"], strict=True):
        versions.setdefault(doc_id, set()).add(doc_hash)
    assert all(len(v) == 1 for v in versions.values()), "a document has chunks of two versions"


def _edit(root: Path) -> None:
    (root / "alpha.md").write_text("# Alpha\n\nThe alpha valve now opens at 50 kPa.\n", encoding="utf-8")
    (root / "beta.txt").unlink()
    (root / "epsilon.md").write_text("# Epsilon\n\nEpsilon drives spin at 900 rpm.\n", encoding="utf-8")
    (root / "sub" / "gamma.md").write_text("# Gamma\n\nGamma sensors report hourly.\n", encoding="utf-8")


@pytest.fixture(scope="module")
def crash_base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An index of the first tree version, and the index a clean ingest of the edited tree produces."""
    base = tmp_path_factory.mktemp("crash")
    root = _tree(base / "docs")
    home_v1 = base / "home-v1"
    assert _run_cli(["ingest", str(root)], home_v1).returncode == 0
    edited = base / "edited"
    shutil.copytree(root, edited)
    _edit(edited)
    clean = base / "clean"
    assert _run_cli(["ingest", str(edited)], clean).returncode == 0
    return {"root": root, "home_v1": home_v1, "clean": _index_state(clean, edited)}


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["after_embed", "after_write:2", "before_prune", "before_refresh"])
def test_ingest_killed_at_any_point_then_rerun_equals_a_clean_ingest(
    tmp_path: Path, crash_base: dict[str, Any], crash_at: str
) -> None:
    # Same absolute source paths as the reference: edit a copy of the tree in place, on a copy of the index.
    root: Path = crash_base["root"]
    saved = tmp_path / "saved-docs"
    shutil.copytree(root, saved)
    home = tmp_path / "state"
    shutil.copytree(crash_base["home_v1"], home)
    try:
        _edit(root)
        crashed = _run_cli(["ingest", str(root)], home, crash_at=crash_at)
        assert crashed.returncode == -9, crashed.stderr
        _assert_consistent(home)
        rerun = _run_cli(["ingest", str(root)], home)
        assert rerun.returncode == 0, rerun.stderr
        assert _index_state(home, root) == crash_base["clean"]
        _assert_consistent(home)
    finally:
        shutil.rmtree(root)
        shutil.copytree(saved, root)


def test_import_cli_loads_no_heavy_module() -> None:
    code = (
        "import sys, ragcli.cli\n"
        "heavy = ['lancedb', 'pyarrow', 'onnxruntime', 'tiktoken', 'pypdf', 'numpy', 'torch', 'httpx',\n"
        # The scale-out extras (s3, redis, ray) load only when configured.
        "         'boto3', 'botocore', 'aiobotocore', 's3fs', 'fsspec', 'redis', 'ray']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_settings_home_holds_every_state_file(settings: Settings) -> None:
    assert settings.dead_letter_path.parent == settings.home
    assert settings.lock_path.parent == settings.home
    assert settings.store_uri == str(settings.home / "lancedb")
    assert make_settings(settings.home).home == settings.home


# ----- per-batch embedding: progress and kills inside one large document ---------------------------
def _large_document(path: Path, paragraphs: int = 40) -> Path:
    """One file of many distinct paragraphs: dozens of chunks, no two alike."""
    body = "\n\n".join(
        f"Section {n}. The relief valve number {n} on line {n * 7} opens at {100 + n} kPa; inspect gasket "
        f"{n * 13} every {n + 2} weeks and log torque {n * 3} Nm, pump speed {900 + n} rpm, seal {n}-B."
        for n in range(paragraphs)
    )
    path.write_text("# Valve register\n\n" + body + "\n", encoding="utf-8")
    return path


def test_one_large_document_reports_progress_per_embedded_batch(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    small = {"RAGCLI_EMBEDDING__BATCH_SIZE": "4", "RAGCLI_CHUNKING__CHUNK_SIZE": "48"}
    settings = make_settings(tmp_path / "state", **small, RAGCLI_CHUNKING__CHUNK_OVERLAP="0")
    docs = tmp_path / "docs"
    docs.mkdir()
    _large_document(docs / "register.md")
    observer = RecordingObserver()
    report = Ingestor(settings, embedder=embedder, observer=observer).run([docs])
    found = sum(n for kind, n in observer.events if kind == "found")
    batches = [n for kind, n in observer.events if kind == "embedded"]
    assert found == report.chunks_embedded > 12
    assert len(batches) == embedder.calls == -(-found // 4)  # one event per batch of four
    assert batches[:-1] == [4] * (len(batches) - 1) and sum(batches) == found
    assert observer.events[-1] == ("file_done", 0)  # the file is done only once all its batches are


@pytest.mark.slow
def test_a_run_killed_inside_one_large_document_re_embeds_only_the_rest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _large_document(docs / "register.md")
    home = tmp_path / "state"
    small = {"RAGCLI_EMBEDDING__BATCH_SIZE": "4", "RAGCLI_CHUNKING__CHUNK_SIZE": "48"}
    small["RAGCLI_CHUNKING__CHUNK_OVERLAP"] = "0"

    def run(crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
        env.update({"RAGCLI_HOME": str(home), **small})
        if crash_at:
            env["RAGCLI_TEST_CRASH_AT"] = crash_at
        return subprocess.run(
            [sys.executable, "-m", "ragcli", "ingest", str(docs), "--json"],
            env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
        )  # fmt: skip

    crashed = run("after_embed_batch:3")  # killed after the third batch of four was embedded and saved
    assert crashed.returncode == -9, crashed.stderr
    rerun = run()
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["chunks_reused"] == 12
    assert report["chunks_embedded"] > 0 and report["added"] == 1
    _assert_consistent(home)


def test_a_file_over_the_size_limit_is_a_failure_that_names_the_setting(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    from ragcli.config import load_settings

    settings = load_settings(env={"RAGCLI_HOME": str(tmp_path / "state"), "RAGCLI_INGEST__MAX_FILE_MB": "0.001"})
    root = tmp_path / "docs"
    root.mkdir()
    (root / "small.md").write_text("# Small\n\nThe pump runs at 40 litres a minute.\n", encoding="utf-8")
    (root / "large.md").write_text("# Large\n\n" + "The valve is checked weekly. " * 100, encoding="utf-8")
    report = _ingest(settings, embedder, root)
    assert report.added == 1 and report.failed == 1
    [failure] = report.failures
    assert failure["source"].endswith("large.md") and "over the 0.001 MB limit" in failure["error"]


def _niceness(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[16])  # field 19 of stat; the split starts at field 3


@pytest.mark.parametrize(("setting", "started", "expected"), [(None, 0, 10), ("0", 0, 0), (None, 15, 15)])
def test_an_ingest_runs_at_a_lower_cpu_priority(
    tmp_path: Path, setting: str | None, started: int, expected: int
) -> None:
    """[ingest] nice: an ingest lowers itself to niceness 10 by default, never raises a nicer start, and
    0 leaves it alone. Read from /proc while the real CLI runs."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nThe pump is serviced every spring.\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | {
        "RAGCLI_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(REPO),
    }
    if setting is not None:
        env["RAGCLI_INGEST__NICE"] = setting
    prefix = ["nice", "-n", str(started)] if started else []
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "ragcli", "-q", "ingest", str(docs)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: set[int] = set()
    while proc.poll() is None:
        value = _niceness(proc.pid)
        if value is not None:
            seen.add(value)
        time.sleep(0.01)
    assert proc.wait(timeout=120) == 0
    assert expected in seen
    assert max(seen) == expected
