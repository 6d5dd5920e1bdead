"""Documents on object storage: `ragcli ingest s3://bucket/docs/` through fsspec (s3fs, the `s3` extra).

Listing gives each object's ETag and size without downloading it. `ObjectCatalog` (objects.sqlite3 in the
state directory) remembers, per object, the ETag and size last seen and the content hash of those bytes,
so an unchanged object is recognised from the listing alone and never downloaded; a changed one is
downloaded, hashed and then treated exactly like a local file (a new ETag with the same bytes is still
skipped, by its content hash). The catalog is only a shortcut: the index's own content hashes decide
what is indexed, so a catalog lost, or one on another machine, costs downloads, never correctness.

Objects are selected with the same include/exclude globs as files (ragcli/loaders/walk.py), matched
against the key relative to the ingested prefix; keys with a hidden segment (".…") are skipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ragcli.errors import UsageError
from ragcli.loaders.walk import matches_any


@dataclass(frozen=True)
class RemoteObject:
    """One object to ingest; `str()` of it is its URL, the document's source."""

    url: str
    size: int
    etag: str
    mtime: float
    fs: Any

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return PurePosixPath(self.url).name

    @property
    def loader_path(self) -> Path:
        """What a loader is given as the path: the object's name (loaders read only name and suffix)."""
        return Path(self.name)

    def read(self) -> bytes:
        return bytes(self.fs.cat_file(_fs_path(self.url)))


def _fs_path(url: str) -> str:
    return url.partition("://")[2]


def _scheme(url: str) -> str:
    return url.partition("://")[0]


def list_objects(fs: Any, url: str, include: list[str], exclude: list[str]) -> list[RemoteObject]:
    """The objects under `url` (a prefix, or one object) that the globs select, sorted by key."""
    path = _fs_path(url).rstrip("/")
    hint = "Check the URL, the endpoint and the credentials (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …)."
    try:
        if not fs.exists(path.split("/", 1)[0]):
            raise UsageError(f"The bucket of {url} does not exist or cannot be read.", hint=hint)
        if fs.isfile(path):
            return [_remote(fs, url.rstrip("/"), fs.info(path))]
        found = fs.find(path, detail=True)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"Cannot list {url}: {exc}", hint=hint) from exc
    objects = []
    for name, info in sorted(found.items()):
        relative = name[len(path) + 1 :]
        if not relative or any(part.startswith(".") for part in relative.split("/")):
            continue
        if matches_any(relative, include) and not matches_any(relative, exclude):
            objects.append(_remote(fs, f"{_scheme(url)}://{name}", info))
    return objects


def _remote(fs: Any, url: str, info: dict[str, Any]) -> RemoteObject:
    modified = info.get("LastModified")
    mtime = float(modified.timestamp()) if modified is not None and hasattr(modified, "timestamp") else 0.0
    return RemoteObject(url, int(info.get("size") or 0), str(info.get("ETag", "")).strip('"'), mtime, fs)


class ObjectCatalog:
    """(source → ETag, size, content hash) of the objects last read, in a small SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=30)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS objects (source TEXT PRIMARY KEY, etag TEXT NOT NULL, "
                "size INTEGER NOT NULL, content_hash TEXT NOT NULL)"
            )
        return self._conn

    def known_hash(self, obj: RemoteObject) -> str | None:
        """The content hash of these exact bytes, when the listing shows the object as last read."""
        row = self.conn.execute(
            "SELECT content_hash FROM objects WHERE source = ? AND etag = ? AND size = ?",
            (obj.url, obj.etag, obj.size),
        ).fetchone()
        return str(row[0]) if row else None

    def remember(self, obj: RemoteObject, content_hash: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO objects (source, etag, size, content_hash) VALUES (?, ?, ?, ?)",
                (obj.url, obj.etag, obj.size, content_hash),
            )

    def forget(self, sources: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany("DELETE FROM objects WHERE source = ?", [(s,) for s in sources])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
