"""Private state: every file ragcli keeps is 0600 and every folder 0700, whatever the umask.

The state holds question text (event log), answers (answer cache) and the documents' text (index), so
it is the owner's alone. Files ragcli opens itself are created with mode 0600; files that SQLite and
Lance create are made private after the fact: an ingest runs under umask 077 (so Lance's data, manifest
and index files are born private) and walks the state folder when it ends; every SQLite file is
tightened, with its -wal and -shm, when it is opened. A folder at 0700 already keeps others out of all
it holds, so state made by an older ragcli is private from the first command that opens it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_LAX = 0o077  # group and other bits
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
# What SQLite says about a file that is garbage or cut off (a short read is a "disk I/O error"; call
# this after ruling out a full or read-only disk with errors.state_write_error).
_DAMAGED_SQLITE = ("file is not a database", "malformed", "disk i/o error")


def sqlite_damaged(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and any(m in str(exc).lower() for m in _DAMAGED_SQLITE)


def private_dir(path: Path) -> Path:
    """`mkdir -p` whose new folders are 0700, and `path` itself made 0700 if it was lax."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR)
        _chmod(folder, PRIVATE_DIR)
    tighten(path)
    return path


def private_file(path: Path, flags: int) -> int:
    """`os.open` of a file that is created 0600 (and made 0600 if an older one was lax)."""
    private_dir(path.parent)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        mode = os.fstat(fd).st_mode
        if mode & _LAX:
            os.fchmod(fd, stat.S_IMODE(mode) & ~_LAX | 0o600)
    except OSError:  # a read-only file system: nothing can be changed, and nothing is at stake
        logger.debug("Could not tighten %s", path, exc_info=True)
    return fd


def tighten(path: Path, *, sqlite: bool = False) -> None:
    """Drop group and other permissions from `path` (and a SQLite file's sidecars)."""
    targets = [path, *(path.with_name(path.name + s) for s in SQLITE_SIDECARS)] if sqlite else [path]
    for target in targets:
        try:
            info = target.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode) or not info.st_mode & _LAX:
            continue
        _chmod(target, PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE)


def tighten_tree(root: Path) -> int:
    """Make everything under `root` private; the number of entries changed."""
    changed = 0
    if not root.is_dir():
        return 0
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in [*dirs, *files]:
            path = base / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & _LAX:
                changed += _chmod(path, PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE)
    changed += _chmod(root, PRIVATE_DIR) if root.stat().st_mode & _LAX else 0
    return changed


def lax_entries(root: Path, limit: int = 20) -> list[Path]:
    """Up to `limit` files or folders under `root` that others could read (for `ragcli doctor`)."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    if root.stat().st_mode & _LAX:
        found.append(root)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & _LAX:
                found.append(path)
                if len(found) >= limit:
                    return found
    return found


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside are private whatever the caller's umask (Lance and SQLite create files
    with 0644 less the umask). The umask is per process: used around ingest, which runs alone."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _chmod(path: Path, mode: int) -> int:
    try:
        path.chmod(mode)
        return 1
    except OSError:  # read-only: reported by `ragcli doctor`, never a reason to fail a command
        logger.debug("Could not chmod %s", path, exc_info=True)
        return 0
