"""The corpus journal: which documents each ingest generation changed, in a small SQLite file.

Caches key on it to stay correct without opening LanceDB (whose import alone costs seconds):
an answer cached at generation G is still valid if none of the documents it cites appears in a
generation after G. Ingestion records a document here *before* it writes the document to the index,
so a crash in between can only make a cache entry look stale, never make a stale one look fresh.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (gen INTEGER PRIMARY KEY, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS changes (gen INTEGER NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (gen, doc_id));
CREATE INDEX IF NOT EXISTS changes_doc ON changes (doc_id, gen);
"""


class CorpusJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._gen: int | None = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        return conn

    def current(self) -> int:
        """The newest generation; 0 for an index that never changed (or no journal yet)."""
        if not self.path.exists():
            return 0
        with self._connect() as conn:
            row = conn.execute("SELECT MAX(gen) FROM generations").fetchone()
        return int(row[0] or 0)

    def record(self, doc_ids: Iterable[str]) -> int:
        """Note that `doc_ids` are about to change; opens this run's generation on first use."""
        with self._connect() as conn:
            if self._gen is None:
                row = conn.execute("SELECT COALESCE(MAX(gen), 0) + 1 FROM generations").fetchone()
                self._gen = int(row[0])
                conn.execute("INSERT INTO generations (gen, started) VALUES (?, ?)", (self._gen, time.time()))
            conn.executemany(
                "INSERT OR IGNORE INTO changes (gen, doc_id) VALUES (?, ?)", [(self._gen, d) for d in doc_ids]
            )
        return self._gen

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
