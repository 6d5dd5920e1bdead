"""Ingestion: files → loader → chunker → embedder → LanceDB, idempotent by content hash.

A run never stops for one bad document: it goes to the dead letter file and the run goes on. What is
already indexed is only ever replaced by a complete new version (see store/lance.py) or removed because
its file is gone. Unchanged documents cost one hash each and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ragcli.cache.embeddings import EmbeddingCache
from ragcli.cache.factory import open_journal
from ragcli.errors import (
    DocumentError,
    ModelError,
    PermanentError,
    TransientError,
    UnsupportedError,
    UsageError,
)
from ragcli.ingest.deadletter import DeadLetterFile
from ragcli.memory import release_free_memory
from ragcli.models import Chunk, ParsedDocument, Section, chunk_id_for, doc_id_for, sha256_hex
from ragcli.state import private_umask, tighten_tree

if TYPE_CHECKING:
    import numpy as np

    from ragcli.chunking import Chunker
    from ragcli.config import Settings
    from ragcli.embedding import Embedder
    from ragcli.loaders.objects import ObjectCatalog, RemoteObject
    from ragcli.store.lance import DocState, LanceStore

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    scanned: int = 0
    skipped_unchanged: int = 0
    skipped_failed: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    failed: int = 0
    unsupported: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    embedding_retries: int = 0  # transient embedding failures that were retried (by ragcli or a client)
    embedding_tokens: int = 0  # tiktoken count of the chunks embedded (what a priced embedder bills)
    seconds: float = 0.0
    generation: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)
    unsupported_types: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> dict[str, object]:
        return asdict(self)


class IngestObserver(Protocol):
    """Progress callbacks; the app layer draws a progress bar or writes log lines.

    `chunks_found` comes once per chunked document (so the chunk total grows as files are read) and
    `embedded` once per embedded batch (and once for the chunks whose vectors were reused), so progress
    moves steadily inside one huge document too."""

    def started(self, total_files: int) -> None: ...

    def file_done(self, source: str, outcome: str) -> None: ...

    def chunks_found(self, chunks: int) -> None: ...

    def embedded(self, chunks: int) -> None: ...


class _NullObserver:
    def started(self, total_files: int) -> None:
        pass

    def file_done(self, source: str, outcome: str) -> None:
        pass

    def chunks_found(self, chunks: int) -> None:
        pass

    def embedded(self, chunks: int) -> None:
        pass


def crash_point(name: str) -> None:
    """Test-only: `RAGCLI_TEST_CRASH_AT=name[:n]` kills this process with SIGKILL at the n-th pass."""
    wanted = os.environ.get("RAGCLI_TEST_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_crash_counts: dict[str, int] = {}


@dataclass
class _Pending:
    doc_id: str
    source: str
    content_hash: str
    chunks: list[Chunk]
    is_update: bool
    # An e-mail's attachments, indexed as documents of their own (source "<message>#attachment/<name>").
    attachments: list[_Pending] = field(default_factory=list)
    is_attachment: bool = False
    # The Ray engine: (loader path, bytes, mtime) to parse on a worker; chunks are empty until then.
    work: tuple[Path, bytes, float] | None = None


class Ingestor:
    """One ingest run. Build it with the pieces (tests pass their own embedder) and call `run`."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: LanceStore | None = None,
        observer: IngestObserver | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.config
        self._embedder = embedder
        self._store = store
        self.observer: IngestObserver = observer or _NullObserver()
        self._chunker: Chunker | None = None
        self.journal = open_journal(settings)
        self.embedding_cache = EmbeddingCache(settings)
        # A rebuild writes a new index beside the old one: the journal's document list stays the old
        # index's until the swap, so a killed rebuild still knows every source.
        self.keeps_document_list = True
        self._lock: Any = None
        # Sources found only when a batch is processed (the Ray engine's attachments), kept from pruning.
        self._seen_late: set[str] = set()
        self._object_fs: Any = None
        self._objects: ObjectCatalog | None = None
        # URL of each object-store root listed in this run -> the object URLs the listing returned.
        self._listed: dict[str, set[str]] = {}

    # Lazily built so that a run with nothing to do never loads the model.
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from ragcli.embedding import get_embedder

            self._embedder = get_embedder(self.config.embedding)
        return self._embedder

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            from ragcli.chunking import get_chunker

            needs_model = self.config.chunking.strategy == "semantic"
            self._chunker = get_chunker(self.config.chunking, self.embedder if needs_model else None)
        return self._chunker

    @property
    def store(self) -> LanceStore:
        if self._store is None:
            from ragcli.store import get_store

            self._store = get_store(self.settings)
        return self._store

    # ----- the run -------------------------------------------------------------------------------
    def run(
        self,
        paths: Sequence[Path | str],
        *,
        prune: bool | None = None,
        force_prune: bool = False,
        retry_failed: bool = False,
        only_sources: set[str] | None = None,
        locked: bool = False,
    ) -> IngestReport:
        """Ingest `paths` (local paths, or s3:// URLs as strings: loaders/objects.py). `locked=True` means
        the caller already holds the writer lock."""
        for path in paths:
            if isinstance(path, Path) and not path.exists():
                raise UsageError(f"{path} does not exist.", hint="Give an existing file or folder.")
        prune = self.config.ingest.prune if prune is None else prune
        started = time.perf_counter()
        report = IngestReport()
        lock = contextlib.nullcontext() if locked else self._writer_lock()
        with private_umask(), lock:
            dead = DeadLetterFile(self.settings.dead_letter_path)
            self._open_store()
            states = {s.source: s for s in self.store.document_states().values()}
            if self.keeps_document_list:
                self.journal.remember_documents({s.doc_id: s.source for s in states.values()})
            files = self._collect(paths, only_sources)
            self.observer.started(len(files))
            seen: set[str] = set()
            attachments_of = _attachment_sources(states)
            pending: list[_Pending] = []
            for entry in files:
                source = str(entry)
                seen.add(source)
                report.scanned += 1
                item = self._prepare(entry, states.get(source), dead, report, retry_failed)
                if item is None:
                    seen.update(attachments_of.get(source, ()))  # unchanged or failed: keep what is indexed
                    continue
                seen.update(child.source for child in item.attachments)
                pending.append(item)
                pending.extend(item.attachments)
                if self._batch_is_full(pending):
                    self._flush(pending, dead, report)
                    pending = []
            self._flush(pending, dead, report)
            self._finish_writes(dead, report)
            if prune:
                self._prune(paths, states, seen | self._seen_late, dead, report, force_prune)
            self._forget_vanished_failures(dead)
            dead.save()
            generation = self.journal.current()
            # A run killed after writing but before refreshing the indexes leaves a generation that was
            # never refreshed; the next run (even one with nothing to write) finishes that work.
            if report.changed or generation > self.store.refreshed_generation:
                crash_point("before_refresh")
                self._ensure_writer()
                self.store.refresh_indexes()
                if self.store.ensure_vector_index(self.config.store.ann_min_rows):
                    logger.info("Built an ANN vector index (%d rows)", self.store.count())
                self.store.mark_refreshed(generation)
                self._cleanup_versions()
            self.journal.finish()
            report.generation = generation
            if report.changed:
                tighten_tree(self.settings.home)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _writer_lock(self) -> Any:
        from ragcli.ingest.lease import WriterLock

        self._lock = WriterLock(self.settings)
        return self._lock

    def _ensure_writer(self) -> None:
        """Before each commit: an object-store lease lost or run out stops the run (ingest/lease.py)."""
        if self._lock is not None:
            self._lock.ensure_held()

    def _cleanup_versions(self) -> None:
        """Drop superseded table versions so the index does not keep a second copy of its data; a
        failure here loses nothing, so it is a warning, not a failed run."""
        store_cfg = self.config.store
        try:
            removed = self.store.cleanup_versions(store_cfg.keep_versions, store_cfg.keep_versions_minutes)
        except Exception as exc:
            logger.warning("Could not remove old index versions (the index is fine): %s", exc)
            return
        logger.debug("Removed %d old index versions", removed)

    def _open_store(self) -> None:
        from ragcli.store.lance import EmbedderIdentity

        identity = EmbedderIdentity(self.embedder.name, self.embedder_dimension())
        self.store.ensure_identity(identity, create=True)

    def embedder_dimension(self) -> int:
        try:
            return int(self.embedder.dimension)
        except TransientError as exc:
            # A remote embedder asks the service for its dimension before anything is embedded. If
            # the service is down, every document would fail alike: stop the run (exit 5) instead of
            # parking the whole corpus in the dead letter file.
            raise ModelError(
                f"The embedding model cannot be used: {exc.message}",
                hint=exc.hint or "Check that the embedding service is running, then run the ingest again.",
            ) from exc

    def _collect(self, paths: Sequence[Path | str], only: set[str] | None) -> list[Path | RemoteObject]:
        from ragcli.loaders.walk import iter_files

        files: dict[str, Path | RemoteObject] = {}
        for root in paths:
            if isinstance(root, str):
                for obj in self._list_objects(root):
                    if only is None or obj.url in only:
                        files.setdefault(obj.url, obj)
                continue
            for path in iter_files(root, self.config.ingest.include, self.config.ingest.exclude):
                resolved = path.resolve()
                if only is None or str(resolved) in only:
                    files.setdefault(str(resolved), resolved)
        return list(files.values())

    def _prepare(
        self,
        item: Path | RemoteObject,
        state: DocState | None,
        dead: DeadLetterFile,
        report: IngestReport,
        retry_failed: bool,
    ) -> _Pending | None:
        """Read, hash, parse and chunk one file; None when there is nothing to write for it."""
        from ragcli.loaders import get_loader, parse_key

        source = str(item)
        remote: RemoteObject | None = None
        if isinstance(item, Path):
            path = item
        else:
            remote, path = item, item.loader_path
        loader = get_loader(path, self.config.ingest.ocr)
        if loader is None:
            self._unsupported(path, report)
            return None
        content_hash: str | None = None
        data: bytes | None
        try:
            if remote is not None:
                data, mtime, content_hash = self._read_object(remote)
            else:
                data, mtime = self._read(path)
                content_hash = sha256_hex(data)
            content_hash = parse_key(content_hash, loader)
            if state is not None and state.doc_hash == content_hash:
                report.skipped_unchanged += 1
                dead.resolve(source)
                self.observer.file_done(source, "unchanged")
                return None
            previous = dead.get(source)
            if previous is not None and previous.content_hash == content_hash and not retry_failed:
                exhausted = previous.attempts >= self.config.ingest.max_attempts
                if not previous.retryable or exhausted:
                    report.skipped_failed += 1
                    self.observer.file_done(source, "skipped-failed")
                    return None
            if data is None:  # an object known from its listing, changed in the index: download it now
                assert remote is not None
                data, content_hash = self._download(remote)
                content_hash = parse_key(content_hash, loader)
            return self._build(loader, path, data, source, content_hash, mtime, is_update=state is not None)
        except UnsupportedError as exc:  # the reader is an extra that is not installed
            self._unsupported(path, report, exc.message)
            return None
        except DocumentError as exc:
            self._fail(source, exc, exc.stage, content_hash, exc.retryable, dead, report)
            return None
        except OSError as exc:
            error = TransientError(f"cannot read the file: {exc.strerror or exc}", stage="read")
            self._fail(source, error, "read", content_hash, True, dead, report)
            return None
        except Exception as exc:  # a loader bug or an input no one foresaw: record it, keep going
            logger.debug("Unexpected error on %s", source, exc_info=True)
            self._fail(source, exc, "load", content_hash, False, dead, report)
            return None

    def _build(
        self, loader: object, path: Path, data: bytes, source: str, content_hash: str, mtime: float, *, is_update: bool
    ) -> _Pending:
        """Parse and chunk one document and its attachments (the Ray engine does this on its workers)."""
        parsed = self._parse(loader, path, data)
        doc_id = doc_id_for(source)
        chunks = self._chunk(parsed, doc_id, source, content_hash, mtime)
        if not chunks:
            raise PermanentError("no text to index after chunking", stage="chunk")
        attachments = self._attachments(parsed, source, content_hash, mtime, is_update)
        # An e-mail's attachments are embedded with it, so progress counts their chunks too.
        self.observer.chunks_found(len(chunks) + sum(len(child.chunks) for child in attachments))
        return _Pending(doc_id, source, content_hash, chunks, is_update=is_update, attachments=attachments)

    def _unsupported(self, path: Path, report: IngestReport, why: str | None = None) -> None:
        report.unsupported += 1
        suffix = path.suffix.lower() or "(no extension)"
        key = f"{suffix} ({why})" if why else suffix
        report.unsupported_types[key] = report.unsupported_types.get(key, 0) + 1
        self.observer.file_done(str(path), "unsupported")

    def _attachments(
        self, parsed: ParsedDocument, source: str, content_hash: str, mtime: float, parent_known: bool
    ) -> list[_Pending]:
        """An e-mail's readable attachments as pending documents of their own."""
        found: list[_Pending] = []
        for name, document in parsed.attachments:
            child_source = f"{source}#attachment/{name}"
            child_id = doc_id_for(child_source)
            child_hash = sha256_hex(f"{content_hash}#{name}")
            chunks = self._chunk(document, child_id, child_source, child_hash, mtime)
            if chunks:
                found.append(_Pending(child_id, child_source, child_hash, chunks, parent_known, is_attachment=True))
        return found

    def _read(self, path: Path) -> tuple[bytes, float]:
        stat = path.stat()
        self._check_size(stat.st_size, "file")
        return path.read_bytes(), stat.st_mtime

    def _check_size(self, size: int, what: str) -> None:
        if size > self.config.ingest.max_file_mb * 1024 * 1024:
            raise PermanentError(
                f"{what} is {size / 1e6:.1f} MB, over the {self.config.ingest.max_file_mb:g} MB limit",
                stage="read",
                hint="Raise [ingest] max_file_mb to index it.",
            )

    def _list_objects(self, url: str) -> list[RemoteObject]:
        from ragcli.loaders.objects import list_objects

        if self._object_fs is None:
            from ragcli.store.remote import filesystem

            self._object_fs = filesystem(self.settings)
        objects = list_objects(self._object_fs, url, self.config.ingest.include, self.config.ingest.exclude)
        self._listed[url] = {obj.url for obj in objects}
        return objects

    def _read_object(self, obj: RemoteObject) -> tuple[bytes | None, float, str]:
        """(bytes, mtime, content hash); bytes None when the listing shows the object unchanged since it
        was last read (its hash comes from the object catalog, nothing is downloaded)."""
        self._check_size(obj.size, "object")
        known = self.objects.known_hash(obj)
        if known is not None:
            return None, obj.mtime, known
        data, content_hash = self._download(obj)
        return data, obj.mtime, content_hash

    def _download(self, obj: RemoteObject) -> tuple[bytes, str]:
        data = obj.read()
        content_hash = sha256_hex(data)
        self.objects.remember(obj, content_hash)
        return data, content_hash

    @property
    def objects(self) -> ObjectCatalog:
        if self._objects is None:
            from ragcli.loaders.objects import ObjectCatalog

            self._objects = ObjectCatalog(self.settings.home / "objects.sqlite3")
        return self._objects

    def _parse(self, loader: object, path: Path, data: bytes) -> ParsedDocument:
        parsed: ParsedDocument = loader.load(path, data)  # type: ignore[attr-defined]
        if not parsed.text.strip():
            raise PermanentError("empty document: no text to index", stage="load")
        encoding = parsed.metadata.get("encoding", "")
        if "fallback" in encoding:
            logger.info("%s: decoded as %s", path, encoding)
        return parsed

    def _chunk(
        self, parsed: ParsedDocument, doc_id: str, source: str, content_hash: str, mtime: float
    ) -> list[Chunk]:
        from ragcli.chunking.context import contextual_text

        template = self.config.chunking.context_template
        now = time.time()
        chunks: list[Chunk] = []
        for section in _fold_bare_headings(parsed.text, parsed.sections):
            section_text = parsed.text[section.start : section.end]
            if not section_text.strip():
                continue
            for span in self.chunker.split(section_text):
                text = section_text[span.start : span.end]
                indexed = contextual_text(template, parsed.title, section.heading, text)
                # The hash is of what is embedded, so a changed template re-embeds exactly the chunks
                # whose context changed (vectors are reused by hash).
                chunk_hash = sha256_hex(indexed)
                index = len(chunks)
                chunks.append(
                    Chunk(
                        chunk_id=chunk_id_for(doc_id, index, chunk_hash),
                        doc_id=doc_id,
                        source=source,
                        title=parsed.title,
                        heading=section.heading,
                        page=section.page,
                        chunk_index=index,
                        char_start=section.start + span.start,
                        char_end=section.start + span.end,
                        token_count=span.token_count,
                        chunk_hash=chunk_hash,
                        doc_hash=content_hash,
                        mtime=mtime,
                        ingested_at=now,
                        text=text,
                        search_text=indexed if indexed != text else "",
                    )
                )
        return chunks

    def _fail(
        self,
        source: str,
        error: BaseException,
        stage: str,
        content_hash: str | None,
        retryable: bool,
        dead: DeadLetterFile,
        report: IngestReport,
    ) -> None:
        entry = dead.record(source, stage=stage, error=error, content_hash=content_hash, retryable=retryable)
        report.failed += 1
        report.failures.append({"source": source, "stage": stage, "error": entry.message})
        logger.warning("Failed %s [%s]: %s", source, stage, entry.message)
        self.observer.file_done(source, "failed")

    # ----- embedding and writing -----------------------------------------------------------------
    def _batch_is_full(self, pending: list[_Pending]) -> bool:
        # Chunks count too: a write batch of War and Peace and its neighbours held ~4,500 chunks, and
        # its embedding and its merge into the table were the two largest steps of ingest's peak memory.
        config = self.config.ingest
        return len(pending) >= config.write_batch_docs or sum(len(p.chunks) for p in pending) >= config.write_batch_chunks

    def _flush(self, pending: list[_Pending], dead: DeadLetterFile, report: IngestReport) -> None:
        if not pending:
            return

        try:
            vectors = self._vectors_for(pending, report)
        except DocumentError as exc:
            # The whole batch failed to embed even after retries: every document in it is a failure,
            # and whatever was indexed for them before stays as it was.
            for item in pending:
                self._fail(item.source, exc, "embed", item.content_hash, exc.retryable, dead, report)
            return
        self._commit(pending, vectors, dead, report)
        del vectors
        release_free_memory()  # the batch's texts, vectors and Arrow copies are garbage now

    def _finish_writes(self, dead: DeadLetterFile, report: IngestReport) -> None:
        """Commit what is still in flight before pruning (the Ray engine keeps one batch in flight)."""

    def _commit(
        self, pending: list[_Pending], vectors: list[np.ndarray], dead: DeadLetterFile, report: IngestReport
    ) -> None:
        """Write embedded documents: journal first, then one index commit (see store/journal.py)."""
        import numpy as np

        crash_point("after_embed")
        all_chunks = [c for item in pending for c in item.chunks]
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, self.embedder_dimension()), "float32")
        self._ensure_writer()
        self.journal.record(
            (item.doc_id for item in pending),
            _content_words(all_chunks),
            sources={item.doc_id: item.source for item in pending},
        )
        self.store.replace_documents(all_chunks, matrix, [item.doc_id for item in pending])
        crash_point("after_write")
        for item in pending:
            if item.is_update:
                report.updated += 1
            else:
                report.added += 1
            dead.resolve(item.source)
            if not item.is_attachment:
                self.observer.file_done(item.source, "updated" if item.is_update else "added")
        dead.save()

    def _vectors_for(self, pending: list[_Pending], report: IngestReport) -> list[np.ndarray]:
        """Vectors per document. Unchanged chunks reuse the vector stored in the index or in the chunk
        embedding cache; identical chunks in one batch are embedded once."""
        import numpy as np

        by_hash: dict[str, np.ndarray] = {}
        for item in pending:
            if item.is_update:
                by_hash.update(self.store.vectors_by_chunk_hash(item.doc_id))
        wanted = {c.chunk_hash for item in pending for c in item.chunks} - by_hash.keys()
        by_hash.update(self.embedding_cache.get_chunks(wanted, self.embedder_dimension()))
        todo: dict[str, Chunk] = {}
        for item in pending:
            for chunk in item.chunks:
                if chunk.chunk_hash not in by_hash:
                    todo.setdefault(chunk.chunk_hash, chunk)
        total = sum(len(item.chunks) for item in pending)
        if total - len(todo):
            self.observer.embedded(total - len(todo))
        for batch in self._embedding_batches(list(todo.values())):
            by_hash.update(self._embed_batch(batch, report))
        report.chunks_embedded += len(todo)
        report.chunks_reused += total - len(todo)
        return [np.stack([by_hash[c.chunk_hash] for c in item.chunks]) for item in pending]

    def _embedding_batches(self, chunks: list[Chunk]) -> list[list[Chunk]]:
        """Chunks of every document in the write batch, shortest first (each batch pads to similar
        lengths), cut into the embedder's batches, so a folder of one-chunk files fills whole batches
        and one huge document is embedded, saved and reported a batch at a time."""
        size = self.config.embedding.batch_size
        ordered = sorted(chunks, key=lambda c: c.token_count)
        return [ordered[start : start + size] for start in range(0, len(ordered), size)]

    def _embed_batch(self, batch: list[Chunk], report: IngestReport) -> dict[str, np.ndarray]:
        """Embed one batch and save its vectors in the chunk cache at once: a run killed later loses
        at most the batch in flight, and the rerun finds the rest in the cache."""
        vectors = self._embed([c.indexed_text for c in batch], report)
        report.embedding_tokens += sum(c.token_count for c in batch)
        fresh = {c.chunk_hash: vector for c, vector in zip(batch, vectors, strict=True)}
        self.embedding_cache.put_chunks(fresh)
        crash_point("after_embed_batch")
        self.observer.embedded(len(batch))
        return fresh

    def _embed(self, texts: list[str], report: IngestReport) -> np.ndarray:
        from ragcli.embedding.retry import transient_retry

        def count_retry(attempt: int, exc: BaseException, delay: float) -> None:
            report.embedding_retries += 1

        retrying = transient_retry(self.config.embedding.max_retries, on_retry=count_retry)
        client_retries = getattr(self.embedder, "retries", 0)
        try:
            for attempt in retrying:
                with attempt:
                    return self.embedder.embed_documents(texts)
        except TransientError:
            raise
        except DocumentError:
            raise
        except Exception as exc:
            raise TransientError(f"embedding failed: {exc}", stage="embed") from exc
        finally:
            report.embedding_retries += getattr(self.embedder, "retries", 0) - client_retries
        raise AssertionError("unreachable")

    # ----- pruning -------------------------------------------------------------------------------
    def _prune(
        self,
        roots: Sequence[Path | str],
        states: dict[str, DocState],
        seen: set[str],
        dead: DeadLetterFile,
        report: IngestReport,
        force: bool,
    ) -> None:
        gone: list[str] = []
        for root in roots:
            if isinstance(root, str):
                prefix = root.rstrip("/") + "/"
            elif not root.is_dir():
                continue
            else:
                prefix = str(root.resolve()).rstrip("/") + "/"
            under = [s for s in states if s.startswith(prefix)]
            missing = [s for s in under if s not in seen]
            if under and len(missing) == len(under) and not force:
                # An empty scan of a folder with indexed documents is more often an unmounted disk
                # than a deliberate wipe; do not empty the index on that evidence alone.
                message = (
                    f"Found no files under {root}, which has {len(under)} indexed documents; not removing "
                    f"them. Run `ragcli ingest --force-prune {shlex.quote(str(root))}` if the folder really is "
                    "empty now."
                )
                logger.warning(message)
                report.warnings.append(message)
                continue
            gone.extend(missing)
        if not gone:
            return
        crash_point("before_prune")
        self._ensure_writer()
        self.journal.record((states[s].doc_id for s in gone), removed=True)
        self.store.delete_documents([states[s].doc_id for s in gone])
        for source in gone:
            dead.resolve(source)
            self.observer.file_done(source, "removed")
        if self._listed:
            self.objects.forget(gone)
        report.removed += len(gone)

    def _forget_vanished_failures(self, dead: DeadLetterFile) -> None:
        for source in list(dead.entries):
            if "://" in source:
                if self._object_vanished(source):
                    dead.resolve(source)
            elif not Path(source).exists():
                dead.resolve(source)

    def _object_vanished(self, source: str) -> bool:
        """Only a listing made in this run can tell that an object is gone."""
        return any(
            source.startswith(root.rstrip("/") + "/") and source not in listed for root, listed in self._listed.items()
        )


def _attachment_sources(states: dict[str, DocState]) -> dict[str, list[str]]:
    """Indexed attachment sources by their message's source."""
    found: dict[str, list[str]] = {}
    for source in states:
        parent, marker, _ = source.partition("#attachment/")
        if marker:
            found.setdefault(parent, []).append(source)
    return found


BARE_HEADING_CHARS = 120
_ADORNMENT = set("=-~^*#+`'\"_.:")


def _is_bare_heading(section_text: str) -> bool:
    """One line of words (plus reST/setext underlines), nothing else."""
    if len(section_text.strip()) >= BARE_HEADING_CHARS:
        return False
    lines = [line.strip() for line in section_text.splitlines() if line.strip()]
    words = [line for line in lines if not set(line) <= _ADORNMENT]
    return len(words) <= 1


def _fold_bare_headings(text: str, sections: Sequence[Section]) -> list[Section]:
    """A section that is little more than its heading line joins the section after it (on the same
    page), taking that section's more specific heading: a chunk holding only "Error codes" answers
    nothing, yet ranks well for any question that mentions the words."""
    folded: list[Section] = []
    pending: Section | None = None
    for section in sections:
        if pending is not None and pending.page == section.page:
            section = Section(pending.start, section.end, section.heading, section.page)
        elif pending is not None:
            folded.append(pending)
        pending = None
        if _is_bare_heading(text[section.start : section.end]):
            pending = section
        else:
            folded.append(section)
    if pending is not None:
        folded.append(pending)
    return folded


def _content_words(chunks: Sequence[Chunk]) -> set[str]:
    """The words the answer cache checks a question against (see ragcli/cache/answers.py)."""
    from ragcli.generation.extractive import content_terms

    words: set[str] = set()
    for chunk in chunks:
        words.update(content_terms(f"{chunk.title}\n{chunk.heading or ''}\n{chunk.text}"))
    return words
