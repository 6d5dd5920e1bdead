"""`ragcli ingest --engine ray`: parsing, chunking and embedding as Ray tasks, one writer committing.

What runs where:
- this process (the driver) lists the sources, reads and hashes them, and decides exactly as a local run
  does what is unchanged (skipped), what failed before (the dead letter rules) and what is gone (pruned);
- each changed document's bytes go to a pool of Ray actors, each holding the loaders, the chunker and
  one embedding model (loaded once per actor, not per document), which return its chunks and vectors —
  reusing stored and cached vectors as a local run does (the chunk embedding cache is shared when
  `[cache] backend = "redis"`);
- the driver commits every batch through the same code as a local run (journal first, one index commit,
  dead letters, crash points), under the same writer lock or lease. So a run killed anywhere leaves
  the same states as a local run, and reruns skip what was committed. One batch is in flight on the
  workers while the driver commits the one before it, so the serial commit overlaps the parallel work.
A document whose task fails (a parse error, a worker that died) is a dead letter, as locally.

The driver sends the bytes, so workers need no access to the documents; they do need the index (to
reuse vectors of a changed document) and the cache, with the same environment (AWS_*, Redis URL).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import ConfigError, DocumentError, PermanentError, TransientError
from ragcli.ingest.pipeline import Ingestor, IngestReport, _Pending

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy as np

    from ragcli.config import Settings
    from ragcli.ingest.deadletter import DeadLetterFile

logger = logging.getLogger(__name__)

_COUNTERS = ("chunks_embedded", "chunks_reused", "embedding_retries", "embedding_tokens")


@dataclass
class _Outcome:
    """What a worker returns for one document: its pending documents (itself and its attachments) with
    vectors, or the error that stopped it."""

    items: list[_Pending]
    vectors: list[Any]
    counters: dict[str, int]
    error: tuple[str, str, str, bool] | None = None  # (exception type, message, stage, retryable)


class DocumentWorker:
    """A Ray actor: a local Ingestor's parse, chunk and embed steps, with its model loaded once."""

    def __init__(self, settings: Settings) -> None:
        logging.basicConfig(level=logging.WARNING)
        embedding = settings.config.embedding
        if embedding.threads == 0:  # one actor per CPU: one thread each
            embedding.threads = 1
        self.ingestor = Ingestor(settings)

    def process(
        self, source: str, path: Path, data: bytes, content_hash: str, mtime: float, is_update: bool
    ) -> _Outcome:
        from ragcli.loaders import get_loader

        report = IngestReport()
        try:
            loader = get_loader(path, self.ingestor.config.ingest.ocr)
            item = self.ingestor._build(loader, path, data, source, content_hash, mtime, is_update=is_update)
            items = [item, *item.attachments]
            vectors = self.ingestor._vectors_for(items, report)
        except DocumentError as exc:
            return _Outcome([], [], {}, (type(exc).__name__, exc.message, exc.stage, exc.retryable))
        except Exception as exc:  # a loader bug or an input no one foresaw, as in a local run
            return _Outcome([], [], {}, ("PermanentError", f"{type(exc).__name__}: {exc}", "load", False))
        item.attachments = []
        return _Outcome(items, vectors, {name: getattr(report, name) for name in _COUNTERS})


class RayIngestor(Ingestor):
    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._pool: Any = None
        self._actors: list[Any] = []
        self._in_flight: list[list[_Pending]] = []

    def run(self, paths: Sequence[Path | str], **kwargs: Any) -> IngestReport:
        try:
            return super().run(paths, **kwargs)
        finally:
            self._in_flight = []
            self._stop_workers()

    # ----- the driver defers parsing to the workers ------------------------------------------------------
    def _build(
        self, loader: object, path: Path, data: bytes, source: str, content_hash: str, mtime: float, *, is_update: bool
    ) -> _Pending:
        from ragcli.models import doc_id_for

        return _Pending(doc_id_for(source), source, content_hash, [], is_update=is_update, work=(path, data, mtime))

    def _flush(self, pending: list[_Pending], dead: DeadLetterFile, report: IngestReport) -> None:
        """Queue this batch on the workers, then commit the one before it: the workers go on with this
        batch while the driver commits (the commit is the serial part of a distributed ingest)."""
        if pending:
            self._submit(pending)
            self._in_flight.append(pending)
        while len(self._in_flight) > 1:
            self._write_batch(self._in_flight.pop(0), dead, report)

    def _finish_writes(self, dead: DeadLetterFile, report: IngestReport) -> None:
        while self._in_flight:
            self._write_batch(self._in_flight.pop(0), dead, report)

    def _write_batch(self, pending: list[_Pending], dead: DeadLetterFile, report: IngestReport) -> None:
        done: list[_Pending] = []
        vectors: list[np.ndarray] = []
        for item, outcome in zip(pending, self._results(len(pending)), strict=True):
            if isinstance(outcome, BaseException):  # the worker died or Ray failed: may work next time
                error = TransientError(f"the Ray task failed: {outcome}", stage="embed")
                self._fail(item.source, error, "embed", item.content_hash, True, dead, report)
                continue
            if outcome.error is not None:
                self._record_error(item, outcome.error, dead, report)
                continue
            for name, value in outcome.counters.items():
                setattr(report, name, getattr(report, name) + value)
            for child in outcome.items[1:]:
                self._seen_late.add(child.source)
            self.observer.chunks_found(sum(len(i.chunks) for i in outcome.items))
            self.observer.embedded(sum(len(i.chunks) for i in outcome.items))
            done.extend(outcome.items)
            vectors.extend(outcome.vectors)
        if done:
            self._commit(done, vectors, dead, report)

    def _record_error(
        self, item: _Pending, error: tuple[str, str, str, bool], dead: DeadLetterFile, report: IngestReport
    ) -> None:
        kind, message, stage, retryable = error
        if kind == "UnsupportedError":
            assert item.work is not None
            self._unsupported(item.work[0], report, message)
            return
        exc: DocumentError = (TransientError if retryable else PermanentError)(message, stage=stage)
        self._fail(item.source, exc, stage, item.content_hash, retryable, dead, report)

    # ----- Ray ---------------------------------------------------------------------------------------------
    def _submit(self, pending: list[_Pending]) -> None:
        pool = self._workers()
        for item in pending:
            assert item.work is not None
            path, data, mtime = item.work
            pool.submit(
                lambda actor, job: actor.process.remote(*job),
                (item.source, path, data, item.content_hash, mtime, item.is_update),
            )
            item.work = (path, b"", mtime)  # the bytes travel with the task; the driver lets them go

    def _results(self, count: int) -> list[_Outcome | BaseException]:
        """The next `count` outcomes, in submission order."""
        results: list[_Outcome | BaseException] = []
        for _ in range(count):
            try:
                results.append(self._pool.get_next())
            except Exception as exc:
                results.append(exc)
        return results

    def _workers(self) -> Any:
        if self._pool is not None:
            return self._pool
        ray = _init_ray(self.config.ingest.ray_address)
        from ray.util import ActorPool

        count = self.config.ingest.ray_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1)(DocumentWorker)
        self._actors = [remote.remote(self.settings) for _ in range(count)]
        self._pool = ActorPool(self._actors)
        logger.info("Ingesting on Ray with %d workers", count)
        return self._pool

    def _stop_workers(self) -> None:
        if not self._actors:
            return
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors, self._pool = [], None


@contextlib.contextmanager
def quiet_fork_warning() -> Iterator[None]:
    """Ray starts its processes with fork + exec, which lance (once imported) warns about as if the child
    went on running Python; it does not."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="lance is not fork-safe")
        yield


def _check_reachable(address: str) -> None:
    """ray.init retries an address that does not answer for minutes; a closed port is said at once."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local": Ray's own lookups
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"Cannot reach the Ray cluster at {address}: {exc.strerror or exc}",
            hint="Check [ingest] ray_address (--address), or leave it unset to start a local Ray.",
        ) from exc


def _init_ray(address: str | None) -> Any:
    """Connect to the cluster at `address`, or start a local Ray on this machine's CPUs (loopback only)."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "The ray ingest engine needs the ray extra, which is not installed.", hint="pip install 'ragcli[ray]'"
        ) from exc
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        _check_reachable(address)
        options["address"] = address
    else:
        options |= {"num_cpus": os.cpu_count() or 1, "_node_ip_address": "127.0.0.1"}
    try:
        with quiet_fork_warning():
            ray.init(**options)
    except Exception as exc:
        raise ConfigError(
            f"Cannot reach the Ray cluster at {address or 'a new local instance'}: {exc}",
            hint="Check [ingest] ray_address (--address), or leave it unset to start a local Ray.",
        ) from exc
    return ray
