"""Opening diskcache folders so that damage costs a miss, never a crash, a wrong answer or a
different answer path.

`open_cache` returns a `SafeCache`, whose every call succeeds:
- a cache whose database is damaged (garbage, cut off) is moved aside (`.corrupt-<time>`) and a fresh
  one made: only real corruption found when opening throws a cache away;
- a cache that cannot be written (read-only folder, full disk) is read through a read-only SQLite
  connection, so answers already cached are still served; writes are skipped;
- anything else that fails turns the cache off for this process.
Each of these is said in ONE warning per cache folder and process; a failed read is a miss.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragcli.errors import state_write_error
from ragcli.state import private_dir, sqlite_damaged, tighten

logger = logging.getLogger(__name__)

# SQLite page cache and memory map per connection: the defaults (8 MB cache, 64 MB map) grew a
# long-lived process by kilobytes per question (benchmarks/soak.py, docs/operations.md).
_SQLITE_TUNING = {"sqlite_cache_size": 256, "sqlite_mmap_size": 0}
_warned: set[tuple[str, str]] = set()


def warn_once(directory: Path | str, kind: str, message: str, *args: Any) -> None:
    key = (str(directory), kind)
    if key in _warned:
        logger.debug(message, *args)
        return
    _warned.add(key)
    logger.warning(message, *args)


def is_corruption(exc: BaseException) -> bool:
    return sqlite_damaged(exc)


def open_cache(directory: Path, *, size_limit_mb: int) -> SafeCache:
    """The cache at `directory`, as a `SafeCache` (see the module docstring)."""
    import diskcache

    settings = {
        "size_limit": size_limit_mb * 1024 * 1024,
        "eviction_policy": "least-recently-used",
        **_SQLITE_TUNING,
    }

    def fresh() -> Any:
        private_dir(directory)
        cache = diskcache.Cache(str(directory), timeout=10, **settings)
        cache.get("__probe__")  # reading the schema is what fails on a truncated database
        tighten(directory / "cache.db", sqlite=True)
        return cache

    try:
        return SafeCache(directory, fresh())
    except Exception as exc:
        if state_write_error(exc, directory) is not None:
            return _read_only(directory, exc)
        if not is_corruption(exc):
            warn_once(directory, "off", "Cache %s cannot be used (%s); answering without it", directory, exc)
            return SafeCache(directory, None)
    aside = directory.with_name(f"{directory.name}.corrupt-{int(time.time())}")
    try:
        directory.rename(aside)
    except OSError as exc:
        warn_once(directory, "off", "Cache %s is damaged and cannot be moved aside (%s); answering without it",
                  directory, exc)
        return SafeCache(directory, None)
    warn_once(directory, "moved", "Cache %s was damaged; moved it to %s and started afresh", directory, aside)
    try:
        return SafeCache(directory, fresh())
    except Exception as exc:
        warn_once(directory, "off", "Cache %s cannot be created (%s); answering without it", directory, exc)
        return SafeCache(directory, None)


def _read_only(directory: Path, exc: BaseException) -> SafeCache:
    db = directory / "cache.db"
    if not db.exists():
        warn_once(directory, "off", "Cache %s cannot be created (%s); answering without it", directory, exc)
        return SafeCache(directory, None)
    try:
        view = ReadOnlyCache(directory)
    except Exception as inner:
        warn_once(directory, "off", "Cache %s cannot be read (%s); answering without it", directory, inner)
        return SafeCache(directory, None)
    warn_once(directory, "ro", "Cache %s cannot be written (%s); reading it without saving to it", directory, exc)
    return SafeCache(directory, view, writable=False)


class ReadOnlyCache:
    """The few reads ragcli makes, straight from a diskcache database it cannot write."""

    def __init__(self, directory: Path) -> None:
        from diskcache.core import Disk

        self._disk = Disk(str(directory))
        uri = (directory / "cache.db").resolve().as_uri()
        try:
            self._conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
            self._conn.execute("SELECT 1 FROM Cache LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            # A WAL database on a read-only mount cannot make its shared-memory file; read the main
            # file as it stands (entries still in the -wal file are missed: a miss, not an error).
            self._conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
            self._conn.execute("SELECT 1 FROM Cache LIMIT 1").fetchall()

    def get(self, key: Any, default: Any = None) -> Any:
        db_key, raw = self._disk.put(key)
        row = self._conn.execute(
            "SELECT expire_time, mode, filename, value FROM Cache WHERE key = ? AND raw = ?", (db_key, raw)
        ).fetchone()
        if row is None or (row[0] is not None and row[0] < time.time()):
            return default
        return self._disk.fetch(row[1], row[2], row[3], False)

    def iterkeys(self) -> Iterator[Any]:
        for key, raw in self._conn.execute("SELECT key, raw FROM Cache ORDER BY rowid"):
            yield self._disk.get(key, raw)

    def volume(self) -> int:
        row = self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM Cache").fetchone()
        page = self._conn.execute("PRAGMA page_count").fetchone()[0] * 4096
        return int(row[0]) + int(page)

    def close(self) -> None:
        self._conn.close()


class SafeCache:
    """A diskcache.Cache (or a ReadOnlyCache, or nothing) whose calls never raise: see the module
    docstring. `writable` turns false at the first failed write, so a full disk costs one attempt."""

    def __init__(self, directory: Path, inner: Any, *, writable: bool = True) -> None:
        self.directory = directory
        self.inner = inner
        self.writable = writable and inner is not None

    @property
    def available(self) -> bool:
        return self.inner is not None

    def get(self, key: Any, default: Any = None) -> Any:
        if self.inner is None:
            return default
        try:
            return self.inner.get(key, default)
        except (sqlite3.DatabaseError, OSError) as exc:
            if state_write_error(exc, self.directory) is not None or is_corruption(exc):
                warn_once(self.directory, "read", "Cache %s cannot be read (%s); answering without it",
                          self.directory, exc)
                return default
            return self._drop(key, exc, default)
        except Exception as exc:  # pickle raises many types on a damaged value
            return self._drop(key, exc, default)

    def _drop(self, key: Any, exc: BaseException, default: Any) -> Any:
        warn_once(self.directory, "entry", "Dropping an unreadable cache entry (%s: %s)", type(exc).__name__, exc)
        self.delete(key)
        return default

    def _write(self, call: Any, default: Any = None) -> Any:
        if not self.writable:
            return default
        try:
            return call()
        except Exception as exc:
            self.writable = False
            warn_once(self.directory, "write", "Cache %s cannot be written (%s: %s); not saving to it",
                      self.directory, type(exc).__name__, exc)
            return default

    def set(self, key: Any, value: Any, expire: float | None = None) -> bool:
        return bool(self._write(lambda: self.inner.set(key, value, expire=expire), False))

    def delete(self, key: Any) -> None:
        self._write(lambda: self.inner.delete(key))

    def incr(self, key: Any, delta: int = 1) -> int | None:
        result = self._write(lambda: self.inner.incr(key, delta))
        return None if result is None else int(result)

    @contextlib.contextmanager
    def transact(self) -> Iterator[None]:
        if not self.writable:
            yield
            return
        try:
            with self.inner.transact():
                yield
        except (sqlite3.Error, OSError) as exc:
            self.writable = False
            warn_once(self.directory, "write", "Cache %s cannot be written (%s: %s); not saving to it",
                      self.directory, type(exc).__name__, exc)

    def iterkeys(self) -> Iterator[Any]:
        if self.inner is None:
            return iter(())
        try:
            return iter(list(self.inner.iterkeys()))
        except Exception as exc:
            warn_once(self.directory, "read", "Cache %s cannot be read (%s); answering without it",
                      self.directory, exc)
            return iter(())

    def volume(self) -> int:
        try:
            return int(self.inner.volume()) if self.inner is not None else 0
        except Exception:
            return 0

    def clear(self) -> int:
        """Empty the cache; a user asked for it, so a cache that cannot be written is an error."""
        from ragcli.errors import ReadOnlyStateError, StateWriteError

        if self.inner is None:
            return 0
        if not self.writable:
            raise ReadOnlyStateError(self.directory)
        try:
            return int(self.inner.clear())
        except Exception as exc:
            mapped: StateWriteError | None = state_write_error(exc, self.directory)
            if mapped is not None:
                raise mapped from exc
            raise

    def close(self) -> None:
        if self.inner is not None:
            with contextlib.suppress(Exception):
                self.inner.close()


def safe_get(cache: Any, key: str) -> Any:
    """`cache.get` that treats an unreadable value or an unreachable cache as a miss. A `SafeCache`
    handles its own damage and never raises; another backend (Redis) that cannot answer costs a miss,
    with one warning."""
    try:
        return cache.get(key)
    except Exception as exc:  # a cache may cost a miss, never an answer
        warn_once(type(cache).__name__, "get", "Cache unavailable (%s: %s); answering without it",
                  type(exc).__name__, exc)
        return None
