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
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (gen INTEGER PRIMARY KEY, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS changes (gen INTEGER NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (gen, doc_id));
CREATE INDEX IF NOT EXISTS changes_doc ON changes (doc_id, gen);
CREATE TABLE IF NOT EXISTS terms (term INTEGER NOT NULL, gen INTEGER NOT NULL, PRIMARY KEY (term, gen))
    WITHOUT ROWID;
"""
# Added later: journals written before it have their generations marked finished when first opened.
FINISHED_COLUMN = "ALTER TABLE generations ADD COLUMN finished REAL"


def term_hash(term: str) -> int:
    """A stable 56-bit hash of a content word (SQLite integers are signed 64-bit)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=7).digest(), "big")


class CorpusJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._gen: int | None = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(generations)")}
        if "finished" not in columns:
            with conn:
                conn.execute(FINISHED_COLUMN)
                conn.execute("UPDATE generations SET finished = started")
        return conn

    def current(self) -> int:
        """The newest generation; 0 for an index that never changed (or no journal yet)."""
        if not self.path.exists():
            return 0
        with self._connect() as conn:
            row = conn.execute("SELECT MAX(gen) FROM generations").fetchone()
        return int(row[0] or 0)

    def settled(self) -> int:
        """The newest generation that no open (unfinished) generation precedes."""
        if not self.path.exists():
            return 0
        with self._connect() as conn:
            open_gen = conn.execute("SELECT MIN(gen) FROM generations WHERE finished IS NULL").fetchone()[0]
            if open_gen is not None:
                return int(open_gen) - 1
            return int(conn.execute("SELECT COALESCE(MAX(gen), 0) FROM generations").fetchone()[0])

    def finish(self) -> None:
        """The run holding the writer lock is done: its generation, and any that a killed run left open
        (this run redid or superseded their work), are complete."""
        if not self.path.exists():
            return
        with self._connect() as conn:
            conn.execute("UPDATE generations SET finished = ? WHERE finished IS NULL", (time.time(),))

    def record(self, doc_ids: Iterable[str], terms: Iterable[str] = ()) -> int:
        """Note that `doc_ids` are about to change, and the content words of their new versions; opens
        this run's generation on first use."""
        with self._connect() as conn:
            if self._gen is None:
                row = conn.execute("SELECT COALESCE(MAX(gen), 0) + 1 FROM generations").fetchone()
                self._gen = int(row[0])
                conn.execute(
                    "INSERT INTO generations (gen, started, finished) VALUES (?, ?, NULL)", (self._gen, time.time())
                )
            conn.executemany(
                "INSERT OR IGNORE INTO changes (gen, doc_id) VALUES (?, ?)", [(self._gen, d) for d in doc_ids]
            )
            conn.executemany(
                "INSERT OR IGNORE INTO terms (term, gen) VALUES (?, ?)",
                [(term_hash(t), self._gen) for t in set(terms)],
            )
        return self._gen

    def terms_changed_since(self, gen: int, term_hashes: Iterable[int]) -> bool:
        """Whether a document added or changed after `gen` holds any of the words (see `term_hash`)."""
        hashes = sorted(set(term_hashes))
        if not hashes or not self.path.exists():
            return False
        with self._connect() as conn:
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

    def changed_since(self, gen: int, doc_ids: Iterable[str]) -> bool:
        ids = list(set(doc_ids))
        if not ids or not self.path.exists():
            return False
        with self._connect() as conn:
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
