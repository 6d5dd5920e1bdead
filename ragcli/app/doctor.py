"""`ragcli doctor [--repair]`: checks every part of the state and says what is wrong in plain words.

Checks: the index (opens, rows, versions), the corpus journal (SQLite's quick_check), the journal
against the index (the same documents in both), the full-text and vector indexes (present when
expected, and readable), the caches and the event log (readable), the lock record, and the file modes.
Looking changes nothing. `--repair` rebuilds what can be rebuilt, under the writer lock:
- the index, from the source files and the chunk-vector cache (nothing is re-embedded while the cache
  has the vectors), the damaged one moved aside (ragcli/ingest/rebuild.py);
- the journal, from the index; the full-text and vector indexes, in place;
- a damaged cache or event log is moved aside (`.corrupt-<time>`), a garbled lock record cleared,
  lax file modes tightened.
Exit 0 when all is well (after repairs), 6 when problems are found (or remain after --repair).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.app.console import print_json, print_table, stdout
from ragcli.errors import EXIT_OK, EXIT_THRESHOLD, RagcliError

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.embedding import Embedder
    from ragcli.store.lance import LanceStore

logger = logging.getLogger("ragcli")


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    repair: str | None = None  # what --repair does about it (None: nothing to do, or nothing it can do)
    repaired: str | None = None  # what --repair did


@dataclass
class _Context:
    settings: Settings
    store: LanceStore | None = None
    index_ok: bool = False
    rows: int = 0


# ----- checks -------------------------------------------------------------------------------------------
def check_index(ctx: _Context) -> Finding:
    from ragcli.store.lance import LanceStore

    settings = ctx.settings
    ctx.store = LanceStore.open(settings.store_uri, settings.config.store.table)
    if not ctx.store.exists():
        return Finding("index", True, f"no index at {settings.store_uri} yet (`ragcli ingest PATH` builds it)")
    try:
        ctx.rows = ctx.store.count()
        versions = len(ctx.store.dataset.versions())
        ctx.store.all_rows(["doc_id"])  # reads every data file's column, where a cut-off file fails
    except RagcliError as exc:
        return Finding("index", False, f"the index cannot be read: {exc.message}",
                       repair="rebuild it from the source files and the chunk-vector cache")
    ctx.index_ok = True
    return Finding("index", True, f"{ctx.rows} chunks, {versions} table versions kept")


def check_journal(ctx: _Context) -> Finding:
    from ragcli.store.journal import CorpusJournal

    path = ctx.settings.journal_path
    verdict = CorpusJournal(path).check()
    if verdict == "missing":
        return Finding("corpus journal", True, "none yet (made by the next ingest)")
    if verdict != "ok":
        return Finding("corpus journal", False, f"{path} is damaged: {verdict}",
                       repair="move it aside and rebuild it from the index")
    return Finding("corpus journal", True, "SQLite quick_check: ok")


def check_consistency(ctx: _Context) -> Finding:
    from ragcli.store.journal import CorpusJournal

    if not ctx.index_ok or ctx.store is None or not ctx.store.exists():
        return Finding("journal vs index", True, "not checked (no readable index)")
    if CorpusJournal(ctx.settings.journal_path).check() not in ("ok", "missing"):
        return Finding("journal vs index", True, "not checked (the journal is damaged)")
    indexed = {d.doc_id for d in ctx.store.document_states().values()}
    journal = set(CorpusJournal(ctx.settings.journal_path).documents())
    only_index, only_journal = indexed - journal, journal - indexed
    if not only_index and not only_journal:
        return Finding("journal vs index", True, f"the same {len(indexed)} documents in both")
    return Finding(
        "journal vs index",
        False,
        f"{len(only_index)} documents only in the index, {len(only_journal)} only in the journal",
        repair="rewrite the journal's document list from the index",
    )


def check_fulltext(ctx: _Context) -> Finding:
    from ragcli.store.lance import FTS_COLUMN

    if not ctx.index_ok or ctx.store is None or not ctx.rows:
        return Finding("full-text index", True, "not checked (no readable index with rows)")
    if [FTS_COLUMN] not in ctx.store.index_fields():
        return Finding("full-text index", False, "missing: keyword search cannot run",
                       repair="build the full-text index")
    try:
        ctx.store.keyword_search("probe", 1)
    except Exception as exc:
        return Finding("full-text index", False, f"cannot be read: {_short(exc)}", repair="rebuild the full-text index")
    return Finding("full-text index", True, "present and readable")


def check_vectors(ctx: _Context) -> Finding:
    if not ctx.index_ok or ctx.store is None or not ctx.rows:
        return Finding("vector index", True, "not checked (no readable index with rows)")
    expected = ctx.rows >= ctx.settings.config.store.ann_min_rows
    present = ctx.store.has_vector_index_files()
    if not present:
        if expected:
            return Finding("vector index", False, f"missing although the table has {ctx.rows} rows",
                           repair="build the vector index")
        return Finding("vector index", True, "none needed yet (search is exact below [store] ann_min_rows)")
    try:
        import numpy as np

        first = ctx.store.dataset.to_table(columns=["vector"], limit=1).column("vector").to_pylist()[0]
        ctx.store.vector_search(np.asarray(first, dtype="float32"), 1)
    except Exception as exc:
        return Finding("vector index", False, f"cannot be read: {_short(exc)}", repair="rebuild the vector index")
    return Finding("vector index", True, "present and readable")


def _sqlite_verdict(path: Path) -> str:
    if not path.exists():
        return "missing"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        return "; ".join(str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall())
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        conn.close()


def check_sqlite_file(name: str, path: Path) -> Finding:
    verdict = _sqlite_verdict(path)
    if verdict == "missing":
        return Finding(name, True, "none yet")
    if verdict != "ok":
        return Finding(name, False, f"{path} is damaged: {verdict}", repair="move it aside (a new one is started)")
    return Finding(name, True, "readable")


def check_lock(ctx: _Context) -> Finding:
    import fcntl
    import os

    from ragcli.ingest.lock import holder_of

    path = ctx.settings.lock_path
    record = holder_of(path)
    if record is None:
        return Finding("lock", True, "no lock file (no ingest has run)")
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        held = False
    except BlockingIOError:
        held = True
    finally:
        os.close(fd)
    raw = path.read_bytes()
    if held:
        return Finding("lock", True, f"an ingest is running ({record})")
    if raw.strip() and (record == "unknown process" or b"\0" in raw):
        return Finding("lock", False, "the lock record is garbled (no ingest holds the lock)",
                       repair="clear the record")
    if record != "unknown process":
        return Finding("lock", True, f"free; last holder died without clearing it ({record})")
    return Finding("lock", True, "free")


def check_modes(ctx: _Context) -> Finding:
    from ragcli.state import lax_entries

    lax = lax_entries(ctx.settings.home)
    if lax:
        return Finding("file modes", False, f"{len(lax)}{'+' if len(lax) >= 20 else ''} files or folders others "
                       f"can read, e.g. {lax[0]}", repair="make them private (files 0600, folders 0700)")
    return Finding("file modes", True, "private (files 0600, folders 0700)")


def diagnose(settings: Settings) -> tuple[list[Finding], _Context]:
    from ragcli.state import private_umask

    ctx = _Context(settings)
    with private_umask():  # a read-only SQLite connection may leave a -wal or -shm file behind
        return _findings(ctx), ctx


def _findings(ctx: _Context) -> list[Finding]:
    settings = ctx.settings
    return [
        check_index(ctx),
        check_journal(ctx),
        check_consistency(ctx),
        check_fulltext(ctx),
        check_vectors(ctx),
        check_sqlite_file("answer cache", settings.cache_dir / "answers" / "cache.db"),
        check_sqlite_file("embedding cache", settings.cache_dir / "embeddings" / "cache.db"),
        check_sqlite_file("event log", _events_path(settings)),
        check_lock(ctx),
        check_modes(ctx),
    ]


def _events_path(settings: Settings) -> Path:
    from ragcli.telemetry.facade import events_path

    return events_path(settings)


# ----- repairs ------------------------------------------------------------------------------------------
def repair(settings: Settings, findings: list[Finding], *, embedder: Embedder | None = None) -> None:
    """Fix every finding that has a repair; each says what was done in `repaired`."""
    from ragcli.state import private_umask

    actions: dict[str, Callable[[], str]] = {
        "index": lambda: _rebuild_index(settings, embedder),
        "corpus journal": lambda: _rebuild_journal(settings),
        "journal vs index": lambda: _resync_journal(settings),
        "full-text index": lambda: _rebuild_search_indexes(settings, vector=False),
        "vector index": lambda: _rebuild_search_indexes(settings, vector=True),
        "answer cache": lambda: _move_aside(settings.cache_dir / "answers"),
        "embedding cache": lambda: _move_aside(settings.cache_dir / "embeddings"),
        "event log": lambda: _move_aside(_events_path(settings)),
        "lock": lambda: _clear_lock(settings),
        "file modes": lambda: _tighten(settings),
    }
    rebuilt_index = False
    for finding in findings:
        if finding.ok or finding.repair is None:
            continue
        if rebuilt_index and finding.check in ("journal vs index", "full-text index", "vector index"):
            finding.repaired = "done by the index rebuild"
            continue
        with private_umask():
            finding.repaired = actions[finding.check]()
        rebuilt_index = rebuilt_index or finding.check == "index"


def _rebuild_index(settings: Settings, embedder: Embedder | None) -> str:
    from ragcli.ingest.rebuild import rebuild_index

    result = rebuild_index(settings, embedder=embedder)
    if result.report is None:
        return " ".join(result.notes)
    report = result.report
    aside = f"; the damaged index is at {result.moved_aside}" if result.moved_aside else ""
    return (
        f"rebuilt from {result.sources} source files ({report.chunks_reused} chunk vectors from the cache, "
        f"{report.chunks_embedded} embedded, {result.sources_missing} files gone){aside}"
    )


def _index_documents(settings: Settings) -> dict[str, str]:
    from ragcli.store.lance import LanceStore

    store = LanceStore.open(settings.store_uri, settings.config.store.table)
    return {d.doc_id: d.source for d in store.document_states().values()} if store.exists() else {}


def _rebuild_journal(settings: Settings) -> str:
    from ragcli.ingest.lock import IngestLock
    from ragcli.store.journal import CorpusJournal

    path = settings.journal_path
    with IngestLock(settings.lock_path):
        aside = _move_aside(path)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        documents = _index_documents(settings)
        CorpusJournal(path).rebuild(documents)
    return f"{aside}; rebuilt it from the index ({len(documents)} documents)"


def _resync_journal(settings: Settings) -> str:
    from ragcli.ingest.lock import IngestLock
    from ragcli.store.journal import journal_for

    with IngestLock(settings.lock_path):
        documents = _index_documents(settings)
        journal_for(settings).remember_documents(documents)
    return f"the journal now lists the index's {len(documents)} documents"


def _rebuild_search_indexes(settings: Settings, *, vector: bool) -> str:
    from ragcli.ingest.lock import IngestLock
    from ragcli.store.lance import LanceStore

    with IngestLock(settings.lock_path):
        store = LanceStore.open(settings.store_uri, settings.config.store.table)
        if vector:
            store.rebuild_vector_index()
            return "rebuilt the vector index"
        store.rebuild_fulltext_index()
        return "rebuilt the full-text index"


def _move_aside(path: Path) -> str:
    if not path.exists():
        return "nothing to move"
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    path.rename(aside)
    return f"moved it to {aside}"


def _clear_lock(settings: Settings) -> str:
    from ragcli.ingest.lock import IngestLock

    with IngestLock(settings.lock_path):
        pass  # taking and releasing the lock rewrites, then clears, the record
    return "cleared the record"


def _tighten(settings: Settings) -> str:
    from ragcli.state import tighten_tree

    return f"made {tighten_tree(settings.home)} files and folders private"


def _short(exc: BaseException) -> str:
    from ragcli.store.lance import short_error

    return short_error(exc)


# ----- the command --------------------------------------------------------------------------------------
def run_doctor(settings: Settings, *, fix: bool, json_output: bool, embedder: Embedder | None = None) -> int:
    findings, _ = diagnose(settings)
    if fix and any(not f.ok for f in findings):
        repair(settings, findings, embedder=embedder)
        after, _ = diagnose(settings)
        remaining = [f for f in after if not f.ok]
    else:
        remaining = [f for f in findings if not f.ok]
    if json_output:
        print_json(
            {
                "healthy": not remaining,
                "home": str(settings.home),
                "findings": [asdict(f) for f in findings],
                "remaining": [asdict(f) for f in remaining],
            }
        )
    else:
        _print(findings, remaining, fix=fix, home=settings.home)
    return EXIT_OK if not remaining else EXIT_THRESHOLD


def _print(findings: list[Finding], remaining: list[Finding], *, fix: bool, home: Path) -> None:
    rows: list[tuple[Any, ...]] = []
    for f in findings:
        status = "ok" if f.ok else ("repaired" if f.repaired and not _still(f, remaining) else "PROBLEM")
        rows.append((f.check, status, f.detail + (f" → {f.repaired}" if f.repaired else "")))
    print_table(["check", "status", "detail"], rows)
    if not remaining:
        stdout.print(f"All well ({home}).", markup=False)
        return
    if fix:
        stdout.print(f"{len(remaining)} problems remain after repair: {', '.join(f.check for f in remaining)}.",
                     markup=False)
    else:
        stdout.print(f"{len(remaining)} problems found; `ragcli doctor --repair` fixes: "
                     + ", ".join(f"{f.check} ({f.repair})" for f in remaining if f.repair), markup=False)


def _still(finding: Finding, remaining: list[Finding]) -> bool:
    return any(r.check == finding.check for r in remaining)
