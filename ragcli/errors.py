"""Domain errors. Library code raises these; only the CLI turns them into `Error: …` and an exit code.

    RagcliError                      every error ragcli raises on purpose; has .hint (the fix) and .exit_code
    ├── ConfigError                  bad key, bad value, unreadable config file            exit 2
    ├── UsageError                   a path that does not exist, a bad filter, …          exit 2
    ├── LockHeldError                another ingest holds the index's writer lock         exit 4
    ├── StoreError                   the index cannot be opened, read or written          exit 5
    │   ├── EmbedderMismatchError    the index was built with another embedder            exit 5
    │   └── IndexUnreadableError     the index's files are damaged (`ragcli reindex` rebuilds) exit 5
    ├── StateWriteError              state cannot be written: disk full or read-only     exit 7
    │   ├── DiskFullError            no space left on the device holding the state
    │   └── ReadOnlyStateError       the state folder (or a file in it) is read-only
    ├── ModelError                   a model file is missing or cannot be loaded          exit 5
    └── DocumentError                one document failed; the run goes on (dead letter file)
        ├── PermanentError           retrying cannot help: corrupt, encrypted, empty, undecodable
        │   └── UnsupportedError     no loader for this file type: counted, not a failure
        └── TransientError           may work next time: I/O hiccup, HTTP 429/5xx, timeout

Exit codes of the CLI: 0 all well; 1 unexpected internal error; 2 usage or configuration error;
3 some documents failed (the rest was indexed); 4 another ingest holds the lock; 5 the index or a model
cannot be used as configured; 6 a quality or health threshold was breached (eval golden, stats --check),
or `doctor` found problems; 7 state cannot be written: disk full or read-only (nothing already indexed
was lost; free space or make the folder writable and run again).
"""

from __future__ import annotations

import errno
from pathlib import Path

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_LOCKED = 4
EXIT_STORE = 5
EXIT_THRESHOLD = 6
EXIT_STATE = 7


class RagcliError(Exception):
    """Base of every deliberate ragcli error. `hint` tells the user what to do about it."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  Fix: {self.hint}"


class ConfigError(RagcliError):
    exit_code = EXIT_USAGE


class UsageError(RagcliError):
    exit_code = EXIT_USAGE


class LockHeldError(RagcliError):
    exit_code = EXIT_LOCKED


class StoreError(RagcliError):
    exit_code = EXIT_STORE


class EmbedderMismatchError(StoreError):
    pass


class IndexUnreadableError(StoreError):
    """The index's files are damaged (data cut off, manifests gone); `rebuild_index` recovers."""


class StateWriteError(RagcliError):
    exit_code = EXIT_STATE


class DiskFullError(StateWriteError):
    def __init__(self, path: Path | str) -> None:
        super().__init__(
            f"No space left on device at {path}.",
            hint="Free space and run again; nothing already indexed was lost.",
        )
        self.path = str(path)


class ReadOnlyStateError(StateWriteError):
    def __init__(self, path: Path | str) -> None:
        super().__init__(
            f"The state at {path} is read-only.",
            hint="Make the folder writable (or point RAGCLI_HOME at a writable one) and run again; "
            "nothing already indexed was lost.",
        )
        self.path = str(path)


_FULL_TEXT = ("no space left on device", "disk quota exceeded", "database or disk is full")
_READ_ONLY_TEXT = ("read-only file system", "attempt to write a readonly database", "permission denied")


def state_write_error(exc: BaseException, path: Path | str) -> StateWriteError | None:
    """The StateWriteError an OS, SQLite, Lance or Arrow error stands for, or None when it is another
    kind of failure. Lance and Arrow report I/O errors as RuntimeError/OSError subclasses carrying only
    the text, so the text is read too."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(path)
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ReadOnlyStateError(path)
    text = str(exc).lower()
    if any(marker in text for marker in _FULL_TEXT):
        return DiskFullError(path)
    if any(marker in text for marker in _READ_ONLY_TEXT):
        return ReadOnlyStateError(path)
    if "unable to open database file" in text or "disk i/o error" in text:
        # SQLite says no more than that when it cannot create a -wal/-shm file or grow the database.
        return _probe(Path(path))
    return None


def _probe(path: Path) -> StateWriteError | None:
    """Why the folder of `path` cannot take a write, if it cannot."""
    import os

    folder = path if path.is_dir() else path.parent
    try:
        if not os.access(folder, os.W_OK):
            return ReadOnlyStateError(folder)
        if os.statvfs(folder).f_bavail == 0:
            return DiskFullError(folder)
    except OSError:
        return None
    return None


class ModelError(RagcliError):
    exit_code = EXIT_STORE


class DocumentError(RagcliError):
    """One document could not be processed; `stage` names where (load, chunk, embed, write)."""

    retryable = False

    def __init__(self, message: str, *, stage: str = "load", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stage = stage


class PermanentError(DocumentError):
    retryable = False


class UnsupportedError(PermanentError):
    pass


class TransientError(DocumentError):
    retryable = True
