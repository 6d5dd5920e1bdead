"""The corpus journal: which documents each ingest generation changed, in a small SQLite file.

Caches key on it to stay correct without opening LanceDB (whose import alone costs seconds); the rule
they apply is in ragcli/cache/answers.py. Per generation the journal keeps the ids of the documents it
added, changed or removed, and hashes of the content words of the documents it added or changed (so a
cache can tell whether a new document could match a question without reading the document).

Ingestion records a document here *before* it writes the document to the index, so a crash in between
can only make a cache entry look stale, never make a stale one look fresh. A generation stays open
until its run finishes; `settled()` is the newest generation with no open one at or before it, the
generation an answer computed now may be filed under (a search during an ingest may have seen the old
or the new version of an open generation's documents).

It also keeps the source path of every indexed document, so `ragcli reindex` can rebuild an index whose
files are damaged. A journal that is damaged itself ("file is not a database", "malformed") is moved
aside (`corpus.sqlite3.corrupt-<time>`) and rebuilt from the index, with one warning: its one new
generation, numbered by the clock, marks every document changed, so no answer cached before is served
again. A journal that cannot be written (read-only folder, full disk) is still read; a write to it
raises a StateWriteError (exit 7).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.errors import StoreError, state_write_error
from ragcli.state import private_dir, sqlite_damaged, tighten

if TYPE_CHECKING:
    from ragcli.config import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (gen INTEGER PRIMARY KEY, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS changes (gen INTEGER NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (gen, doc_id));
CREATE INDEX IF NOT EXISTS changes_doc ON changes (doc_id, gen);
CREATE TABLE IF NOT EXISTS terms (term INTEGER NOT NULL, gen INTEGER NOT NULL, PRIMARY KEY (term, gen))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL);
"""
# Added later: journals written before it have their generations marked finished when first opened.
FINISHED_COLUMN = "ALTER TABLE generations ADD COLUMN finished REAL"


def term_hash(term: str) -> int:
    """A stable 56-bit hash of a content word (SQLite integers are signed 64-bit)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=7).digest(), "big")


def journal_for(settings: Settings) -> CorpusJournal:
    """The journal of this state, able to rebuild itself from this state's index."""

    def from_index() -> dict[str, str]:
        from ragcli.store.lance import LanceStore

        store = LanceStore.open(settings.store_uri, settings.config.store.table)
        return {d.doc_id: d.source for d in store.document_states().values()}

    return CorpusJournal(settings.journal_path, index_documents=from_index)


def is_damaged(exc: BaseException, path: Path) -> bool:
    return sqlite_damaged(exc) and state_write_error(exc, path) is None


class CorpusJournal:
    def __init__(self, path: Path, *, index_documents: Callable[[], dict[str, str]] | None = None) -> None:
        self.path = path
        self._gen: int | None = None
        self._index_documents = index_documents
        self.recovered_from: Path | None = None  # where a damaged journal was moved, this process

    # ----- connections -----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        private_dir(self.path.parent)
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(generations)")}
            if "finished" not in columns:
                with conn:
                    conn.execute(FINISHED_COLUMN)
                    conn.execute("UPDATE generations SET finished = started")
        except BaseException:
            conn.close()
            raise
        tighten(self.path, sqlite=True)
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri()
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
            conn.execute("SELECT COUNT(*) FROM generations").fetchone()
            return conn
        except sqlite3.DatabaseError:
            # A WAL file on a read-only mount cannot get its shared-memory file: read the main file.
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True)
            conn.execute("SELECT COUNT(*) FROM generations").fetchone()
            return conn

    def _use(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work` in one transaction; a damaged journal is rebuilt once, an unwritable one read."""
        for attempt in (1, 2):
            try:
                return _run(self._connect, work)
            except (sqlite3.DatabaseError, OSError) as exc:
                if is_damaged(exc, self.path) and attempt == 1 and self._recover(exc):
                    continue
                mapped = state_write_error(exc, self.path)
                if mapped is not None and write:
                    raise mapped from exc
                if mapped is not None and self.path.exists():
                    try:
                        return _run(self._connect_read_only, work)
                    except sqlite3.DatabaseError as inner:
                        exc = inner
                raise StoreError(
                    f"The corpus journal {self.path} cannot be used: {exc}",
                    hint=f"Run `ragcli doctor --repair` (or remove {self.path}; it is rebuilt from the index).",
                ) from exc
        raise AssertionError("unreachable")

    def _recover(self, exc: BaseException) -> bool:
        """Move the damaged journal aside and rebuild it from the index; False if it cannot be moved."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            self.path.rename(aside)
            for suffix in ("-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(self.path.name + suffix).unlink()
        except OSError:
            logger.debug("Cannot move the damaged journal aside", exc_info=True)
            return False
        documents: dict[str, str] = {}
        note = ""
        if self._index_documents is not None:
            try:
                documents = self._index_documents()
            except Exception as inner:  # the index is damaged too: `ragcli reindex` needs the journal
                note = f" (the index could not be read either: {inner})"
        self.rebuild(documents)
        self.recovered_from = aside
        logger.warning(
            "The corpus journal %s was damaged (%s); moved it to %s and rebuilt it from the index "
            "(%d documents)%s. Answers cached before are not served again.",
            self.path, exc, aside, len(documents), note,
        )
        return True

    def rebuild(self, documents: Mapping[str, str]) -> int:
        """Start a new journal holding `documents` (doc_id → source), all changed in one finished
        generation numbered by the clock, above any generation a cached answer could be filed under."""
        gen = int(time.time())

        def fill(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM documents")
            conn.execute("INSERT OR REPLACE INTO generations (gen, started, finished) VALUES (?, ?, ?)",
                         (gen, time.time(), time.time()))
            conn.executemany("INSERT OR IGNORE INTO changes (gen, doc_id) VALUES (?, ?)",
                             [(gen, d) for d in documents])
            conn.executemany("INSERT INTO documents (doc_id, source) VALUES (?, ?)", list(documents.items()))
            return gen

        return _run(self._connect, fill)

    # ----- reading ---------------------------------------------------------------------------------
    def current(self) -> int:
        """The newest generation; 0 for an index that never changed (or no journal yet)."""
        if not self.path.exists():
            return 0
        row = self._use(lambda c: c.execute("SELECT MAX(gen) FROM generations").fetchone(), write=False)
        return int(row[0] or 0)

    def settled(self) -> int:
        """The newest generation that no open (unfinished) generation precedes."""
        if not self.path.exists():
            return 0

        def read(conn: sqlite3.Connection) -> int:
            open_gen = conn.execute("SELECT MIN(gen) FROM generations WHERE finished IS NULL").fetchone()[0]
            if open_gen is not None:
                return int(open_gen) - 1
            return int(conn.execute("SELECT COALESCE(MAX(gen), 0) FROM generations").fetchone()[0])

        return self._use(read, write=False)

    def documents(self) -> dict[str, str]:
        """doc_id → source of every document the journal knows to be indexed."""
        if not self.path.exists():
            return {}
        return self._use(lambda c: dict(c.execute("SELECT doc_id, source FROM documents").fetchall()), write=False)

    def check(self) -> str:
        """SQLite's own verdict on the file (`PRAGMA quick_check`): "ok" or what is wrong."""
        if not self.path.exists():
            return "missing"
        try:
            return _run(
                self._connect_read_only,
                lambda c: "; ".join(str(r[0]) for r in c.execute("PRAGMA quick_check").fetchall()),
            )
        except sqlite3.DatabaseError as exc:
            return str(exc)

    # ----- writing ---------------------------------------------------------------------------------
    def finish(self) -> None:
        """The run holding the writer lock is done: its generation, and any that a killed run left open
        (this run redid or superseded their work), are complete."""
        if not self.path.exists():
            return
        self._use(
            lambda c: c.execute("UPDATE generations SET finished = ? WHERE finished IS NULL", (time.time(),)),
            write=True,
        )

    def remember_documents(self, documents: Mapping[str, str]) -> None:
        """Make the journal's document list match the index's (journals older than the list, or a
        list that a killed run left ahead of the index)."""

        def sync(conn: sqlite3.Connection) -> None:
            known = dict(conn.execute("SELECT doc_id, source FROM documents").fetchall())
            if known == dict(documents):
                return
            conn.execute("DELETE FROM documents")
            conn.executemany("INSERT INTO documents (doc_id, source) VALUES (?, ?)", list(documents.items()))

        self._use(sync, write=True)

    def record(
        self,
        doc_ids: Iterable[str],
        terms: Iterable[str] = (),
        *,
        sources: Mapping[str, str] | None = None,
        removed: bool = False,
    ) -> int:
        """Note that `doc_ids` are about to change (or be removed), the content words of their new
        versions and their sources; opens this run's generation on first use."""
        ids = list(doc_ids)

        def write(conn: sqlite3.Connection) -> int:
            if self._gen is None:
                row = conn.execute("SELECT COALESCE(MAX(gen), 0) + 1 FROM generations").fetchone()
                self._gen = int(row[0])
                conn.execute(
                    "INSERT INTO generations (gen, started, finished) VALUES (?, ?, NULL)", (self._gen, time.time())
                )
            conn.executemany("INSERT OR IGNORE INTO changes (gen, doc_id) VALUES (?, ?)", [(self._gen, d) for d in ids])
            conn.executemany(
                "INSERT OR IGNORE INTO terms (term, gen) VALUES (?, ?)",
                [(term_hash(t), self._gen) for t in set(terms)],
            )
            if removed:
                conn.executemany("DELETE FROM documents WHERE doc_id = ?", [(d,) for d in ids])
            elif sources:
                conn.executemany("INSERT OR REPLACE INTO documents (doc_id, source) VALUES (?, ?)",
                                 list(sources.items()))
            return self._gen

        return self._use(write, write=True)

    def terms_changed_since(self, gen: int, term_hashes: Iterable[int]) -> bool:
        """Whether a document added or changed after `gen` holds any of the words (see `term_hash`)."""
        hashes = sorted(set(term_hashes))
        if not hashes or not self.path.exists():
            return False

        def read(conn: sqlite3.Connection) -> bool:
            for start in range(0, len(hashes), 500):
                batch = hashes[start : start + 500]
                marks = ",".join("?" * len(batch))
                row = conn.execute(
                    f"SELECT 1 FROM terms WHERE term IN ({marks}) AND gen > ? LIMIT 1",  # noqa: S608
                    [*batch, gen],
                ).fetchone()
                if row:
                    return True
            return False

        return self._use(read, write=False)

    def changed_since(self, gen: int, doc_ids: Iterable[str]) -> bool:
        ids = list(set(doc_ids))
        if not ids or not self.path.exists():
            return False

        def read(conn: sqlite3.Connection) -> bool:
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                marks = ",".join("?" * len(batch))
                row = conn.execute(
                    f"SELECT 1 FROM changes WHERE gen > ? AND doc_id IN ({marks}) LIMIT 1",  # noqa: S608
                    [gen, *batch],
                ).fetchone()
                if row:
                    return True
            return False

        return self._use(read, write=False)


def _run(connect: Callable[[], sqlite3.Connection], work: Callable[[sqlite3.Connection], Any]) -> Any:
    """One transaction on a connection that is closed afterwards (an open one per call kept SQLite's
    page cache alive in long-lived processes)."""
    conn = connect()
    try:
        with conn:
            return work(conn)
    finally:
        conn.close()
