"""The event log: one row per ask, per ingest run and per feedback, in <home>/events.sqlite3.

SQLite in WAL mode with a busy timeout, so a crash loses at most the event being written and several
ragcli processes can write at once (each write is one short `BEGIN IMMEDIATE` transaction). The schema
version lives in `PRAGMA user_version`; `MIGRATIONS[i]` takes a database from version i to i + 1.

Privacy: with `telemetry.store_question_text = false` the question and answer columns stay NULL (an
answer can quote the question back) and only a salted
SHA-256 of the normalised question is kept (the salt is random per state directory, so equal questions
still group together but a hash cannot be looked up in a precomputed table). Degraded reasons, whose
error messages could quote the question back, are cut to their kinds ("generator_failed").
"""

from __future__ import annotations

import hmac
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.errors import StoreError, UsageError
from ragcli.state import private_dir, tighten

logger = logging.getLogger(__name__)

EVENTS_FILENAME = "events.sqlite3"
BUSY_TIMEOUT_MS = 10_000
PRUNE_EVERY_SECONDS = 3600.0
RATINGS = ("up", "down")
# Longer answers are cut to this many characters in the log.
ANSWER_MAX_CHARS = 8000

# Each entry is one migration: the statements that take the schema from version i to i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE asks (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL,
            question TEXT,
            question_hash TEXT NOT NULL,
            mode TEXT, provider TEXT,
            embed_model TEXT, rerank_model TEXT, generator_model TEXT,
            cache TEXT,
            retrieved INTEGER NOT NULL DEFAULT 0,
            top_score REAL,
            degraded INTEGER NOT NULL DEFAULT 0,
            degraded_reason TEXT,
            refused INTEGER NOT NULL DEFAULT 0,
            ms_embed REAL NOT NULL DEFAULT 0, ms_retrieve REAL NOT NULL DEFAULT 0,
            ms_rerank REAL NOT NULL DEFAULT 0, ms_compress REAL NOT NULL DEFAULT 0,
            ms_generate REAL NOT NULL DEFAULT 0, ms_total REAL NOT NULL DEFAULT 0,
            tok_query INTEGER NOT NULL DEFAULT 0,
            tok_context_in INTEGER NOT NULL DEFAULT 0, tok_context_out INTEGER NOT NULL DEFAULT 0,
            tok_prompt INTEGER NOT NULL DEFAULT 0, tok_completion INTEGER NOT NULL DEFAULT 0,
            rerank_searches INTEGER NOT NULL DEFAULT 0,
            cpu_s REAL
        )""",
        "CREATE INDEX asks_ts ON asks (ts)",
        # Makes "is any question text stored?" one index probe, for the privacy scrub.
        "CREATE INDEX asks_with_text ON asks (id) WHERE question IS NOT NULL",
        """CREATE TABLE ingests (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            duration_s REAL NOT NULL DEFAULT 0,
            embed_model TEXT,
            scanned INTEGER NOT NULL DEFAULT 0, added INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0, unsupported INTEGER NOT NULL DEFAULT 0,
            skipped_unchanged INTEGER NOT NULL DEFAULT 0, skipped_failed INTEGER NOT NULL DEFAULT 0,
            chunks_embedded INTEGER NOT NULL DEFAULT 0, chunks_reused INTEGER NOT NULL DEFAULT 0,
            embed_errors INTEGER NOT NULL DEFAULT 0, embed_retries INTEGER NOT NULL DEFAULT 0,
            embed_tokens INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX ingests_ts ON ingests (ts)",
        """CREATE TABLE feedback (
            request_id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
            note TEXT
        )""",
        "CREATE INDEX feedback_ts ON feedback (ts)",
    ),
    # 1 -> 2: the answer itself (its text and the sources it cited, as JSON), for `ragcli history`.
    (
        "ALTER TABLE asks ADD COLUMN answer TEXT",
        "ALTER TABLE asks ADD COLUMN sources TEXT",
    ),
    # 2 -> 3: how far the answer can be trusted: the gate's confidence, why it refused, and the share
    # of answer sentences their citation supports (LLM providers), so `stats` can watch them drift.
    (
        "ALTER TABLE asks ADD COLUMN confidence REAL",
        "ALTER TABLE asks ADD COLUMN refused_reason TEXT",
        "ALTER TABLE asks ADD COLUMN citations_verified REAL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

STAGE_COLUMNS = ("embed", "retrieve", "rerank", "compress", "generate", "total")
TOKEN_COLUMNS = ("query", "context_in", "context_out", "prompt", "completion")


@dataclass(frozen=True)
class AskEvent:
    request_id: str
    ts: float
    question: str | None
    question_hash: str
    mode: str | None = None
    provider: str | None = None
    embed_model: str | None = None
    rerank_model: str | None = None
    generator_model: str | None = None
    cache: str | None = None
    retrieved: int = 0
    top_score: float | None = None
    degraded: bool = False
    degraded_reason: str | None = None
    refused: bool = False
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    tokens: Mapping[str, int] = field(default_factory=dict)
    rerank_searches: int = 0
    cpu_seconds: float | None = None
    answer: str | None = None
    # The cited sources as JSON: [{"n": 1, "source": "...", "page": 3, "heading": "..."}].
    sources: str | None = None
    confidence: float | None = None
    refused_reason: str | None = None
    citations_verified: float | None = None


@dataclass(frozen=True)
class IngestEvent:
    ts: float
    duration_s: float = 0.0
    embed_model: str | None = None
    scanned: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    failed: int = 0
    unsupported: int = 0
    skipped_unchanged: int = 0
    skipped_failed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    embed_errors: int = 0
    embed_retries: int = 0
    embed_tokens: int = 0


def normalise_question(question: str) -> str:
    # Case and spacing differences are the same question for counting repeats.
    return " ".join(question.split()).casefold()


def reason_kinds(reason: str | None) -> list[str]:
    """'generator_failed: timeout; reranker_failed: x' -> ['generator_failed', 'reranker_failed']."""
    if not reason:
        return []
    kinds = [part.split(":", 1)[0].strip() for part in reason.split(";")]
    return [k for k in kinds if k]


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def connect_for_reading(path: Path) -> sqlite3.Connection:
    """A connection to read the log, also on a read-only or full disk, where SQLite cannot make the
    -shm file a WAL database needs: then read-only, and failing that the main file as it stands."""
    attempts = [lambda: connect(path)]
    uri = path.resolve().as_uri()
    attempts.append(lambda: sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None))
    attempts.append(lambda: sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None))
    for number, attempt in enumerate(attempts, 1):
        conn = attempt()
        try:
            conn.execute("PRAGMA user_version").fetchone()
            conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            why = str(exc).lower()
            if number == len(attempts) or not any(m in why for m in ("unable to open", "readonly", "disk i/o")):
                raise
    raise AssertionError("unreachable")


def _skip_checkpoint_on_close(conn: sqlite3.Connection) -> None:
    """The last connection to close checkpoints the WAL, with two fsyncs (~25 ms on a slow disk) that
    a one-question CLI process would pay every time; without it SQLite checkpoints every 1000 pages.
    Python 3.12+ only (Connection.setconfig); older versions keep the default."""
    setconfig = getattr(conn, "setconfig", None)
    flag = getattr(sqlite3, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE", None)
    if setconfig is not None and flag is not None:
        setconfig(flag, True)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION; safe when several processes open a new file at once."""
    if schema_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)  # re-read under the write lock: another process may have won
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The event log was written by a newer ragcli (schema {version}, this one knows "
                f"{SCHEMA_VERSION}).",
                hint="Upgrade ragcli, or move events.sqlite3 aside to start a new log.",
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[number]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class EventLog:
    """Writes events. Opens the file on first use; one instance per process is enough."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: float = 90,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.retention_seconds = retention_days * 86400
        self.clock = clock
        self._conn: sqlite3.Connection | None = None
        self._salt: bytes | None = None
        self._last_prune: float | None = None  # when the log was last pruned, as last read or done

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            private_dir(self.path.parent)
            self._conn = self._open_with_retries()
            tighten(self.path, sqlite=True)
        return self._conn

    def _open_with_retries(self, attempts: int = 40) -> sqlite3.Connection:
        """Two processes opening a new log at once race to switch it to WAL; that switch answers
        "database is locked" at once instead of waiting on the busy timeout, so wait and try again
        rather than drop the event."""
        for attempt in range(attempts):
            conn = connect(self.path)
            try:
                # WAL survives a crash mid-write and lets readers run beside a writer; NORMAL sync is
                # durable against process crashes, which is what an event log needs.
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                _skip_checkpoint_on_close(conn)
                migrate(conn)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _write(self, batch: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        if not batch and self._prune_not_due():
            # Every write is one statement (or a read and one statement), atomic on its own in
            # autocommit mode: a third of the SQLite calls of BEGIN … COMMIT, on every ask.
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            self._maybe_prune(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ----- question identity -----------------------------------------------------------------------
    def question_hash(self, question: str) -> str:
        if self._salt is None:
            self._salt = self._load_salt()
        # hmac.digest: the same HMAC-SHA256 as hmac.new(...).hexdigest(), in one C call (3× faster).
        return "sha256:" + hmac.digest(self._salt, normalise_question(question).encode("utf-8"), "sha256").hex()

    def _load_salt(self) -> bytes:
        conn = self.conn
        row = conn.execute("SELECT value FROM meta WHERE key = 'question_salt'").fetchone()
        if row is not None:
            return bytes.fromhex(str(row[0]))
        conn.execute("BEGIN IMMEDIATE")  # first use: create it, unless another process just did
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'question_salt'").fetchone()
            if row is None:
                salt = secrets.token_hex(16)
                conn.execute("INSERT INTO meta (key, value) VALUES ('question_salt', ?)", (salt,))
            else:
                salt = str(row[0])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return bytes.fromhex(salt)

    def forget_question_text(self) -> int:
        """Erase question text stored before the privacy switch was turned on; returns rows scrubbed.

        secure_delete overwrites the freed bytes instead of leaving them in free pages, and the
        checkpoint moves the overwritten pages out of the WAL into the database file.
        """
        conn = self.conn
        if conn.execute("SELECT 1 FROM asks WHERE question IS NOT NULL LIMIT 1").fetchone() is None:
            return 0
        conn.execute("PRAGMA secure_delete = ON")
        with self._write():
            scrubbed = conn.execute(
                "UPDATE asks SET question = NULL, answer = NULL, sources = NULL WHERE question IS NOT NULL"
            ).rowcount
            reasons = conn.execute("SELECT id, degraded_reason FROM asks WHERE degraded_reason LIKE '%:%'")
            conn.executemany(
                "UPDATE asks SET degraded_reason = ? WHERE id = ?",
                [("; ".join(reason_kinds(reason)), row_id) for row_id, reason in reasons.fetchall()],
            )
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        logger.info("Removed the question text of %d earlier events (store_question_text = false)", scrubbed)
        return int(scrubbed)

    # ----- writing ----------------------------------------------------------------------------------
    def record_ask(self, event: AskEvent) -> None:
        self.record_asks([event])

    def record_asks(self, events: Sequence[AskEvent]) -> None:
        """Write the events in one transaction."""
        if not events:
            return
        with self._write(batch=len(events) > 1) as conn:
            conn.executemany(INSERT_ASK, [_ask_row(event) for event in events])

    def record_ingest(self, event: IngestEvent) -> None:
        names = [f for f in IngestEvent.__dataclass_fields__]
        values = [getattr(event, f) for f in names]
        marks = ", ".join("?" * len(values))
        with self._write() as conn:
            conn.execute(f"INSERT INTO ingests ({', '.join(names)}) VALUES ({marks})", values)  # noqa: S608

    def record_feedback(
        self, request_id: str, rating: str, note: str | None = None, *, ts: float | None = None
    ) -> str | None:
        """Store a rating for an earlier answer; a second rating for the same answer replaces the first.
        Returns the rating replaced, if there was one. The rating is case-insensitive ('UP')."""
        rating = rating.strip().lower()
        if rating not in RATINGS:
            raise UsageError(f"Feedback must be 'up' or 'down', not {rating!r}.")
        request_id = request_id.strip()
        with self._write() as conn:
            known = conn.execute("SELECT 1 FROM asks WHERE request_id = ?", (request_id,)).fetchone()
            if known is None:
                raise UsageError(
                    f"No answer with request id {request_id!r} is in the event log.",
                    hint="`ragcli history` lists recent request ids (answers older than "
                    "telemetry.retention_days are gone).",
                )
            previous = conn.execute("SELECT rating FROM feedback WHERE request_id = ?", (request_id,)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO feedback (request_id, ts, rating, note) VALUES (?, ?, ?, ?)",
                (request_id, self.clock() if ts is None else ts, rating, note),
            )
        return None if previous is None else str(previous[0])

    # ----- retention --------------------------------------------------------------------------------
    def _prune_not_due(self) -> bool:
        """True while this process knows the last prune (by any process) is less than an hour old."""
        return self._last_prune is not None and self.clock() - self._last_prune < PRUNE_EVERY_SECONDS

    def _maybe_prune(self, conn: sqlite3.Connection) -> None:
        # Runs at most once an hour; a long-lived process checks the stored time once an hour too.
        now = self.clock()
        row = conn.execute("SELECT value FROM meta WHERE key = 'last_prune'").fetchone()
        if row is not None and now - float(row[0]) < PRUNE_EVERY_SECONDS:
            self._last_prune = float(row[0])
            return
        self._last_prune = now
        cutoff = now - self.retention_seconds
        deleted = 0
        for table in ("asks", "ingests", "feedback"):
            deleted += conn.execute(f"DELETE FROM {table} WHERE ts < ?", (cutoff,)).rowcount  # noqa: S608
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_prune', ?)", (repr(now),))
        if deleted:
            logger.debug("Event log: deleted %d events older than the retention period", deleted)


ASK_COLUMNS = (
    "request_id, ts, question, question_hash, mode, provider, embed_model, rerank_model, "
    "generator_model, cache, retrieved, top_score, degraded, degraded_reason, refused, "
    + ", ".join(f"ms_{s}" for s in STAGE_COLUMNS)
    + ", "
    + ", ".join(f"tok_{t}" for t in TOKEN_COLUMNS)
    + ", rerank_searches, cpu_s, answer, sources, confidence, refused_reason, citations_verified"
)
INSERT_ASK = (
    f"INSERT OR REPLACE INTO asks ({ASK_COLUMNS}) VALUES ({', '.join('?' * len(ASK_COLUMNS.split(',')))})"  # noqa: S608
)


def _ask_row(event: AskEvent) -> list[Any]:
    return [
        event.request_id,
        event.ts,
        event.question,
        event.question_hash,
        event.mode,
        event.provider,
        event.embed_model,
        event.rerank_model,
        event.generator_model,
        event.cache,
        int(event.retrieved),
        event.top_score,
        int(event.degraded),
        event.degraded_reason,
        int(event.refused),
        *(float(event.timings_ms.get(stage, 0.0) or 0.0) for stage in STAGE_COLUMNS),
        *(int(event.tokens.get(name, 0) or 0) for name in TOKEN_COLUMNS),
        int(event.rerank_searches),
        event.cpu_seconds,
        None if event.answer is None else event.answer[:ANSWER_MAX_CHARS],
        event.sources,
        event.confidence,
        event.refused_reason,
        event.citations_verified,
    ]


# ----- reading, for `ragcli history` -------------------------------------------------------------------
HISTORY_COLUMNS = (
    "a.request_id, a.ts, a.question, a.answer, a.sources, a.cache, a.mode, a.provider, a.retrieved, "
    "a.top_score, a.degraded, a.degraded_reason, a.refused, a.ms_total, a.confidence, a.refused_reason, "
    "a.citations_verified, f.rating, f.note"
)


@dataclass(frozen=True)
class HistoryFilter:
    limit: int | None = 20
    refused: bool = False
    degraded: bool = False
    since: float | None = None  # seconds since the epoch


def read_history(path: Path, query: HistoryFilter) -> list[dict[str, Any]]:
    """Past questions, newest first, with their feedback. An absent log is an empty history: reading
    never creates the file."""
    if not path.is_file():
        return []
    where, params = ["1 = 1"], []
    if query.refused:
        where.append("a.refused = 1")
    if query.degraded:
        where.append("a.degraded = 1")
    if query.since is not None:
        where.append("a.ts >= ?")
        params.append(query.since)
    sql = (
        f"SELECT {HISTORY_COLUMNS} FROM asks a LEFT JOIN feedback f ON f.request_id = a.request_id "  # noqa: S608
        f"WHERE {' AND '.join(where)} ORDER BY a.ts DESC, a.id DESC"
    )
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    with _reader(path) as conn:
        return [_history_row(row) for row in conn.execute(sql, params)]


def find_ask(path: Path, request_id: str) -> list[dict[str, Any]]:
    """The asks whose request id is `request_id` or starts with it (a prefix, as git takes short ids)."""
    if not path.is_file():
        return []
    prefix = request_id.strip().lower()
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    sql = (
        f"SELECT {HISTORY_COLUMNS} FROM asks a LEFT JOIN feedback f ON f.request_id = a.request_id "  # noqa: S608
        "WHERE a.request_id = ? OR lower(a.request_id) LIKE ? ESCAPE '\\' ORDER BY a.ts DESC LIMIT 10"
    )
    with _reader(path) as conn:
        rows = [_history_row(row) for row in conn.execute(sql, (request_id.strip(), escaped + "%"))]
    exact = [r for r in rows if r["request_id"] == request_id.strip()]
    return exact or rows


@contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection]:
    # The normal open path migrates an older log, so a log written before `answer` existed reads too.
    log = EventLog(path)
    try:
        yield log.conn
    finally:
        log.close()


def _history_row(row: Sequence[Any]) -> dict[str, Any]:
    import json

    (request_id, ts, question, answer, sources, cache, mode, provider, retrieved, top_score, degraded,
     reason, refused, ms_total, confidence, refused_reason, citations_verified, rating,
     note) = row  # fmt: skip
    return {
        "request_id": request_id,
        "ts": ts,
        "question": question,
        "answer": answer,
        "sources": json.loads(sources) if sources else [],
        "cache": cache,
        "mode": mode,
        "provider": provider,
        "retrieved": retrieved,
        "top_score": top_score,
        "degraded": bool(degraded),
        "degraded_reason": reason,
        "refused": bool(refused),
        "refused_reason": refused_reason,
        "confidence": confidence,
        "citations_verified": citations_verified,
        "latency_ms": ms_total,
        "feedback": rating,
        "feedback_note": note,
    }
