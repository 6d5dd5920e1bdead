"""One writer across machines: a lease object `_ragcli/writer.lease` beside an object-store index.

A flock (ingest/lock.py) only works between processes of one machine. Between machines, the object
store itself arbitrates, with conditional writes (which the S3 API has and tests/test_object_store.py
shows the test server enforcing):
- taking a free lease is a create that fails if the object exists (If-None-Match: *);
- renewing it, or taking over an expired one, is a replace that fails if the object changed since it was
  read (If-Match: its ETag), so of two machines racing for an expired lease exactly one wins.
The lease names its holder (pid, host, start time) for the message the second writer sees, and says
when it expires. The holder renews it every third of `[store] lease_seconds` on a background thread; a
killed holder stops renewing, and the next writer takes the lease over once it has expired. Expiry is
judged by the wall clock of the machine reading it, so clocks must agree to well within the lease time
(NTP does that); a writer that failed to renew in time stops before its next commit (`ensure_held`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ragcli.errors import LockHeldError, StoreError

if TYPE_CHECKING:
    from ragcli.config import Settings

logger = logging.getLogger(__name__)

LEASE_NAME = "_ragcli/writer.lease"
# How often acquiring retries when another machine changed the lease between our read and our write.
_CONTENDED_TRIES = 5


def lease_path(index_uri: str) -> str:
    """`bucket/prefix/_ragcli/writer.lease` (an s3fs path) for an index at s3://bucket/prefix."""
    _, _, rest = index_uri.partition("://")
    return f"{rest.rstrip('/')}/{LEASE_NAME}"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def _precondition_failed(exc: BaseException) -> bool:
    """s3fs reports HTTP 412 as FileExistsError (If-None-Match) or EINVAL (If-Match)."""
    if isinstance(exc, FileExistsError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.EINVAL and "condition" in str(exc)


def describe(lease: dict[str, Any]) -> str:
    return f"pid {lease.get('pid')} on {lease.get('host')}, since {lease.get('started')}"


class ObjectLease:
    def __init__(self, fs: Any, path: str, seconds: float) -> None:
        self.fs = fs
        self.path = path
        self.seconds = seconds
        self._bucket, _, self._key = path.partition("/")
        self._etag: str | None = None
        self._expires = 0.0
        self._record: dict[str, Any] = {}
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # ----- object store access --------------------------------------------------------------------------
    def _read(self) -> tuple[str, dict[str, Any]] | None:
        """(ETag, lease) or None when there is no lease. The ETag is read first: if the lease changes
        before its body is read, a write conditioned on that ETag fails, which is the safe side."""
        try:
            etag = self.fs.info(self.path)["ETag"]
            body = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        try:
            lease = json.loads(body)
            if not isinstance(lease, dict):
                raise ValueError("not an object")
        except ValueError:
            logger.warning("The writer lease %s is damaged; treating it as expired", self.path)
            lease = {}
        return etag, lease

    def _put(self, record: dict[str, Any], **condition: str) -> str:
        response = self.fs.call_s3(
            "put_object",
            Bucket=self._bucket,
            Key=self._key,
            Body=json.dumps(record).encode(),
            ContentType="application/json",
            **condition,
        )
        return str(response["ETag"])

    def _new_record(self, now: float) -> dict[str, Any]:
        record = self._record or {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _iso(now),
            "token": uuid.uuid4().hex,
        }
        return record | {"renewed": _iso(now), "expires": _iso(now + self.seconds), "expires_at": now + self.seconds}

    # ----- acquire, renew, release ------------------------------------------------------------------------
    def acquire(self) -> None:
        try:
            self._acquire()
        except LockHeldError:
            raise
        except Exception as exc:
            raise StoreError(
                f"Cannot take the writer lease s3://{self.path}: {exc}",
                hint="Check the object store's endpoint and credentials (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
                "[store] storage_options) and that the bucket exists.",
            ) from exc

    def _acquire(self) -> None:
        for _ in range(_CONTENDED_TRIES):
            now = time.time()
            found = self._read()
            record = self._new_record(now)
            try:
                if found is None:
                    self._etag = self._put(record, IfNoneMatch="*")
                else:
                    etag, lease = found
                    if float(lease.get("expires_at", 0)) > now:
                        raise LockHeldError(
                            f"Another ingest is writing to this index ({describe(lease)}; its lease on "
                            f"s3://{self.path} runs until {lease.get('expires')}).",
                            hint="Wait for it to finish; a lease left by a killed writer is taken over "
                            f"once it expires ([store] lease_seconds = {self.seconds:g}).",
                        )
                    self._etag = self._put(record, IfMatch=etag)
                    if lease:
                        logger.info("Took over an expired writer lease (%s)", describe(lease))
            except OSError as exc:
                if _precondition_failed(exc):
                    continue  # another machine wrote the lease between our read and our write: look again
                raise
            self._record, self._expires = record, float(record["expires_at"])
            self._start_renewing()
            return
        raise LockHeldError(
            f"Other ingests keep taking the writer lease s3://{self.path}.",
            hint="Wait for them to finish, then run the ingest again.",
        )

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="ragcli-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except LockHeldError:
                return
            except Exception as exc:  # a network hiccup: try again next round, until the lease runs out
                logger.warning("Could not renew the writer lease: %s", exc)

    def renew(self) -> None:
        record = self._new_record(time.time())
        try:
            self._etag = self._put(record, IfMatch=self._etag or "")
        except OSError as exc:
            if not _precondition_failed(exc):
                raise
            self._lost = "another writer replaced the lease"
            raise LockHeldError(f"This ingest lost its writer lease on s3://{self.path}.") from exc
        self._expires = float(record["expires_at"])

    def ensure_held(self) -> None:
        """Raise before a commit if the lease was lost or ran out (renewal failed for too long)."""
        if self._lost is None and time.time() >= self._expires:
            self._lost = "it expired before it could be renewed"
        if self._lost is not None:
            raise LockHeldError(
                f"This ingest no longer holds the writer lease on s3://{self.path}: {self._lost}.",
                hint="Run the ingest again; what was committed before is kept and skipped as unchanged.",
            )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
            self._renewer = None
        if self._etag is None or self._lost is not None:
            return
        try:
            self.fs.call_s3("delete_object", Bucket=self._bucket, Key=self._key, IfMatch=self._etag)
        except Exception as exc:  # it expires on its own
            logger.warning("Could not release the writer lease (it expires in %g s): %s", self.seconds, exc)
        self._etag = None

    def __enter__(self) -> ObjectLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class WriterLock:
    """The writer lock of an ingest: the local flock (one writer per state directory), plus the lease
    when the index is on object storage (one writer across machines)."""

    def __init__(self, settings: Settings) -> None:
        from ragcli.ingest.lock import IngestLock
        from ragcli.store.remote import is_remote

        self.local = IngestLock(settings.lock_path)
        self.lease: ObjectLease | None = None
        if is_remote(settings.store_uri):
            from ragcli.store.remote import filesystem

            self.lease = ObjectLease(
                filesystem(settings), lease_path(settings.store_uri), settings.config.store.lease_seconds
            )

    def ensure_held(self) -> None:
        if self.lease is not None:
            self.lease.ensure_held()

    def __enter__(self) -> WriterLock:
        self.local.acquire()
        if self.lease is not None:
            try:
                self.lease.acquire()
            except BaseException:
                self.local.release()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.lease is not None:
                self.lease.release()
        finally:
            self.local.release()
