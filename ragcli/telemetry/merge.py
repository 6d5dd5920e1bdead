"""`ragcli stats --from DIR …`: the event logs of several machines as one, for one set of figures.

Each machine keeps its own events.sqlite3 (a shared SQLite file over a network share would be slow and
unsafe). Copying them into one new file, then computing the usual figures on it, gives exact fleet-wide
percentiles (averaging per-machine percentiles would not). Asks and feedback are keyed by request id,
so a log given twice, or copied twice, counts once; ingest runs are keyed by (time, duration, counts).
The sources are opened read-only; a log written by an older ragcli contributes the columns it has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ragcli.errors import UsageError
from ragcli.telemetry.events import EVENTS_FILENAME, migrate

_TABLES = ("asks", "ingests", "feedback")


def event_log_of(location: Path) -> Path:
    """A state directory's event log, or the log file itself."""
    path = location / EVENTS_FILENAME if location.is_dir() else location
    if not path.is_file():
        raise UsageError(
            f"There is no event log at {path}.",
            hint="Give a state directory (holding events.sqlite3) or an events.sqlite3 file to --from.",
        )
    return path


def merge_event_logs(sources: Sequence[Path], target: Path) -> list[Path]:
    """Copy every event of `sources` (state directories or log files) into a new log at `target`."""
    logs = list(dict.fromkeys(event_log_of(s).resolve() for s in sources))
    # URI filenames, so that each source can be attached read-only.
    conn = sqlite3.connect(target.as_uri(), uri=True, isolation_level=None)
    try:
        migrate(conn)
        for number, log in enumerate(logs):
            _copy(conn, log, f"src{number}")
    finally:
        conn.close()
    return logs


def _copy(conn: sqlite3.Connection, log: Path, alias: str) -> None:
    conn.execute(f"ATTACH DATABASE ? AS {alias}", (f"{log.as_uri()}?mode=ro",))
    try:
        conn.execute("BEGIN")
        for table in _TABLES:
            columns = _common_columns(conn, table, alias)
            if not columns:
                continue
            names = ", ".join(columns)
            if table == "ingests":  # no natural key: skip a run already copied from another log
                match = " AND ".join(f"t.{c} IS s.{c}" for c in columns)
                conn.execute(
                    f"INSERT INTO main.ingests ({names}) SELECT {names} FROM {alias}.ingests AS s "  # noqa: S608
                    f"WHERE NOT EXISTS (SELECT 1 FROM main.ingests AS t WHERE {match})"
                )
            else:
                conn.execute(
                    f"INSERT OR IGNORE INTO main.{table} ({names}) SELECT {names} FROM {alias}.{table}"  # noqa: S608
                )
        conn.execute("COMMIT")
    finally:
        conn.execute(f"DETACH DATABASE {alias}")


def _common_columns(conn: sqlite3.Connection, table: str, alias: str) -> list[str]:
    ours = [row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")]
    theirs = {row[1] for row in conn.execute(f"PRAGMA {alias}.table_info({table})")}
    # The row id is per file; asks are matched by request id instead.
    return [c for c in ours if c in theirs and c != "id"]
