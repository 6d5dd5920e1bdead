"""One writer per index: an exclusive `flock` on a lock file in the state directory.

The kernel drops a flock when its process dies, however it dies, so a lock left by a killed ingest is
stale by construction and the next run simply takes it; the pid written into the file is only for the
message shown to the second writer.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from ragcli.errors import LockHeldError


class IngestLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockHeldError(
                f"Another ingest is writing to this index ({holder}).",
                hint="Wait for it to finish; a lock left by a killed process is released automatically.",
            ) from None
        previous = _read_holder(fd)
        if previous != "unknown process":
            # We got the lock although the file names a holder: that process died without cleaning up.
            import logging

            logging.getLogger(__name__).info("Took over a stale ingest lock (%s)", previous)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid={os.getpid()} host={socket.gethostname()} since={time.time():.0f}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
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


def _read_holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode("utf-8", "replace").strip()
    return text or "unknown process"
