"""`Telemetry`: what the app layer calls after an ask or an ingest, for `ragcli feedback` and `stats`.

Recording never fails a command: an event log that cannot be written (full disk, locked too long, a
file from a newer ragcli) costs one warning and the answer is still given. With telemetry.enabled =
false nothing is recorded and no spans are sent; feedback then has nothing to attach to.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from ragcli.errors import StoreError, UsageError
from ragcli.telemetry.events import (
    EVENTS_FILENAME,
    AskEvent,
    EventLog,
    IngestEvent,
    normalise_question,
    reason_kinds,
)
from ragcli.telemetry.otel import SpanEmitter, build_span_emitter

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.ingest.pipeline import IngestReport
    from ragcli.query import AskResult

logger = logging.getLogger(__name__)

AskLike = Union["AskResult", Mapping[str, Any]]


def events_path(settings: Settings) -> Path:
    return settings.home / EVENTS_FILENAME


class Telemetry:
    def __init__(
        self,
        settings: Settings,
        *,
        span_exporter: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = settings.config.telemetry
        self.enabled = self.config.enabled
        self.path = events_path(settings)
        self.clock = clock
        self.log = EventLog(self.path, retention_days=self.config.retention_days, clock=clock)
        self._spans: SpanEmitter | None = (
            build_span_emitter(self.config, span_exporter) if self.enabled else None
        )
        self._privacy_checked = False
        self._warned = False
        # Questions recorded but not yet written: (result, cpu seconds, finished at, recorded at).
        self._pending: list[tuple[AskLike, float | None, float, float]] = []
        self._atexit_registered = False

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.flush()
        if self._atexit_registered:
            atexit.unregister(self.flush)
            self._atexit_registered = False
        try:
            if self._spans is not None:
                self._spans.close()
                self._spans = None
        except Exception as exc:  # an exporter failing at exit must not turn a good run into an error
            self._warn("flush traces", exc)
        self.log.close()

    # ----- recording ---------------------------------------------------------------------------------
    def record_ask(self, result: AskLike, cpu_seconds: float | None = None, *, at: float | None = None) -> None:
        """Record one answered question — an AskResult or its to_json() dict (what a cache hit returns).
        `at` is when it finished (default: now), `cpu_seconds` the process CPU time it took (a
        time.process_time() delta).

        The event is written by flush(): at once when telemetry.flush_every is 1, else when that many
        are waiting or the oldest has waited telemetry.flush_seconds, and always at close() and at
        interpreter exit. Writing (and tracing) a batch in one go costs a fraction of doing it after
        every answer, when the CPU caches hold the answer's work instead of SQLite's and the SDK's.
        """
        if not self.enabled:
            return
        if not self._privacy_checked:  # a switch to privacy mode scrubs stored questions now, not later
            try:
                self._forget_question_text_once()
            except Exception as exc:
                self._warn("remove stored question text", exc)
        now = self.clock()
        self._pending.append((result, cpu_seconds, now if at is None else at, now))
        if not self._atexit_registered:
            atexit.register(self.flush)
            self._atexit_registered = True
        # The time of recording, not `at`: a caller may pass an old finish time, which must not force a flush.
        waited = now - self._pending[0][3]
        if len(self._pending) >= self.config.flush_every or waited >= self.config.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the recorded questions to the event log and hand their spans to the exporter."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        events: list[AskEvent] = []
        try:
            events = [self.ask_event(result, cpu, ended) for result, cpu, ended, _ in pending]
            self.log.record_asks(events)
        except Exception as exc:  # telemetry is best effort by design; see the module docstring
            self._warn("record the question", exc)
        if self._spans is not None:
            for event in events:
                try:
                    self._spans.emit_ask(event)
                except Exception as exc:
                    self._warn("emit trace spans", exc)

    def record_ingest(self, report: IngestReport, *, at: float | None = None) -> None:
        if not self.enabled:
            return
        event: IngestEvent | None = None
        try:
            self._forget_question_text_once()
            event = self.ingest_event(report, self.clock() if at is None else at)
            self.log.record_ingest(event)
        except Exception as exc:
            self._warn("record the ingest run", exc)
        if event is not None and self._spans is not None:
            try:
                self._spans.emit_ingest(event)
            except Exception as exc:
                self._warn("emit trace spans", exc)

    def feedback(self, request_id: str, rating: str, note: str | None = None) -> str | None:
        """Rate an earlier answer 'up' or 'down'; returns the rating this one replaced, if any.
        Raises UsageError for an unknown request id."""
        self.flush()  # the answer being rated may still be waiting to be written
        if not self.path.is_file():
            hint = (
                "Telemetry is disabled (telemetry.enabled = false), so answers are not recorded."
                if not self.enabled
                else "Ask a question first; its request id is printed under the answer and in `ragcli history`."
            )
            raise UsageError(f"No answer with request id {request_id!r} is in the event log.", hint=hint)
        with _event_log_errors(self.path):
            self._forget_question_text_once()
            return self.log.record_feedback(request_id, rating, note)

    def stats(
        self,
        since_seconds: float | None = None,
        *,
        index_path: Path | None = None,
        oldest_document_at: float | None = None,
    ) -> dict[str, Any]:
        from ragcli.telemetry.stats import compute_stats

        self.flush()
        with _event_log_errors(self.path):
            return compute_stats(
                self.path,
                since_seconds,
                self.settings,
                index_path=index_path,
                oldest_document_at=oldest_document_at,
                now=self.clock(),
            )

    # ----- events from results ---------------------------------------------------------------------
    def ask_event(self, result: AskLike, cpu_seconds: float | None, ended_at: float) -> AskEvent:
        get = _reader(result)
        cfg = self.settings.config
        question = str(get("question", ""))
        timings = {k: float(v) for k, v in (get("timings_ms") or {}).items()}
        cache = get("cache") or None
        embedded = timings.get("embed", 0.0) > 0
        reranked = timings.get("rerank", 0.0) > 0
        tokens = {k: int(v or 0) for k, v in (get("tokens") or {}).items()}
        if cache is not None:
            # A cached answer was not compressed or generated again: this request used none of that.
            tokens.update(context_in=0, context_out=0, prompt=0, completion=0)
        if "query" not in tokens:  # the pipeline may count it itself (0 on a query-embedding cache hit)
            tokens["query"] = self._query_tokens(question) if embedded else 0
        store_text = self.config.store_question_text
        reason = get("degraded_reason")
        if reason and not store_text:
            reason = "; ".join(reason_kinds(reason))
        provider = get("provider")
        return AskEvent(
            request_id=str(get("request_id")),
            ts=ended_at,
            question=question if store_text else None,
            question_hash=self._question_hash(question),
            mode=get("mode"),
            provider=provider,
            embed_model=cfg.embedding.model,
            rerank_model=cfg.rerank.model if reranked else None,
            generator_model=get("model") or cfg.generation.model or provider,
            cache=cache,
            retrieved=int(get("retrieved", 0) or 0),
            top_score=get("top_score"),
            degraded=bool(get("degraded", False)),
            degraded_reason=reason,
            refused=bool(get("refused", False)),
            timings_ms=timings,
            tokens=tokens,
            rerank_searches=1 if reranked and cache is None else 0,
            cpu_seconds=cpu_seconds,
            answer=_text_or_none(get("answer")) if store_text else None,
            sources=_cited_sources(get("citations")) if store_text else None,
            confidence=_number_or_none(get("confidence")),
            refused_reason=get("refused_reason") or None,
            citations_verified=_number_or_none(get("citations_verified")),
        )

    def ingest_event(self, report: IngestReport, ended_at: float) -> IngestEvent:
        embed_errors = sum(1 for f in report.failures if f.get("stage") == "embed")
        return IngestEvent(
            ts=ended_at,
            duration_s=float(report.seconds),
            embed_model=self.settings.config.embedding.model,
            scanned=report.scanned,
            added=report.added,
            updated=report.updated,
            removed=report.removed,
            failed=report.failed,
            unsupported=report.unsupported,
            skipped_unchanged=report.skipped_unchanged,
            skipped_failed=report.skipped_failed,
            chunks_embedded=report.chunks_embedded,
            chunks_reused=report.chunks_reused,
            embed_errors=embed_errors,
            embed_retries=report.embedding_retries,
            embed_tokens=report.embedding_tokens,
        )

    def _query_tokens(self, question: str) -> int:
        from ragcli.tokens import count_tokens, get_encoding

        # Loading the encoding costs about a second; pay it only when the count is priced, or when the
        # ask already loaded it (compression does), so a cache hit with a local embedder stays fast.
        priced = self.settings.config.embedding.model in self.settings.config.cost.prices
        if not priced and get_encoding.cache_info().currsize == 0:
            return 0
        return count_tokens(question)

    def _question_hash(self, question: str) -> str:
        try:
            return self.log.question_hash(question)
        except Exception:
            # Without the log's salt (it cannot be opened) spans still get a hash, an unsalted one.
            return "sha256:" + hashlib.sha256(normalise_question(question).encode("utf-8")).hexdigest()

    def _forget_question_text_once(self) -> None:
        if self._privacy_checked:
            return
        self._privacy_checked = True
        if not self.config.store_question_text and self.path.is_file():
            self.log.forget_question_text()

    def _warn(self, what: str, exc: BaseException) -> None:
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        logger.log(level, "Telemetry could not %s (%s); carrying on without it", what, exc)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _cited_sources(citations: Any) -> str | None:
    """What `ragcli history show` lists under the answer: number, source, page or heading."""
    import json

    if not citations:
        return None
    keep = ("n", "source", "page", "heading", "cited")
    return json.dumps(
        [{k: c.get(k) for k in keep if c.get(k) is not None} for c in citations if isinstance(c, Mapping)],
        ensure_ascii=False,
    )


def _reader(result: AskLike) -> Callable[..., Any]:
    if isinstance(result, Mapping):
        return result.get
    return lambda name, default=None: getattr(result, name, default)


@contextmanager
def _event_log_errors(path: Path) -> Iterator[None]:
    """For the commands that read the log on purpose (stats, feedback): a clear error, not a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(
            f"The event log {path} cannot be read: {exc}",
            hint=f"Move it aside to start a new log: `mv {path} {path}.damaged` (the index is not affected).",
        ) from exc
