"""One writer per index: an exclusive `flock` on a lock file in the state directory.

The kernel drops a flock when its process dies, however it dies, so a lock left by a killed ingest is
stale by construction and the next run simply takes it; the holder record in the file (pid, host, ISO
start time as `since=`) is only for the message shown to the second writer.

The record is written with one `pwrite` at offset 0 and then cut to its length, under the flock: a
write at the file offset (which a reader's `read` moves) once left a run of NUL bytes in front of the
record after repeated kills, and the messages lost the pid.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from ragcli.errors import LockHeldError, state_write_error
from ragcli.state import private_file

logger = logging.getLogger(__name__)


class IngestLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = private_file(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            _raise_state_error(exc, self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(fd)
            os.close(fd)
            raise LockHeldError(
                f"Another ingest is writing to this index ({holder}).",
                hint="Wait for it to finish; a lock left by a killed process is released automatically.",
            ) from None
        previous = read_holder(fd)
        if previous != "unknown process":
            # We got the lock although the file names a holder: that process died without cleaning up.
            logger.info("Took over a stale ingest lock (%s)", previous)
        try:
            _write_record(fd, holder_record())
        except OSError as exc:
            os.close(fd)
            _raise_state_error(exc, self.path)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:  # a full or read-only disk: the flock still goes with the descriptor
            logger.debug("Could not clear the lock record", exc_info=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> IngestLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _raise_state_error(exc: OSError, path: Path) -> NoReturn:
    mapped = state_write_error(exc, path)
    if mapped is None:
        raise exc
    raise mapped from exc


def holder_record() -> str:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid={os.getpid()} host={socket.gethostname()} since={started}\n"


def _write_record(fd: int, record: str) -> None:
    data = record.encode()
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def read_holder(fd: int) -> str:
    """The holder record as `pid=… host=… since=…`; NUL bytes or junk (an old, damaged record) are
    dropped, so the message never shows them."""
    raw = os.pread(fd, 400, 0).decode("utf-8", "replace")
    text = "".join(ch for ch in raw if ch.isprintable() or ch == "\n").strip()
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    if "pid" not in fields:
        return "unknown process"
    since = fields.get("since", "?")
    if since.replace(".", "").isdigit():  # a record written by an older ragcli: epoch seconds
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(since)))
    return f"pid={fields['pid']} host={fields.get('host', '?')} since={since}"


def holder_of(path: Path) -> str | None:
    """The record of the lock file at `path`, for `ragcli doctor` (None when there is no file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return read_holder(fd)
    finally:
        os.close(fd)
