"""OpenTelemetry traces: `rag_query` with one child span per stage, and `rag_ingest`.

Spans are emitted after the fact, from the event that was just recorded, with explicit start and end
times: the pipeline already measures every stage, so the hot path needs no OTel calls at all and a
missing or broken SDK cannot slow down or fail a question. Building spans in the SDK costs about 60 µs
each (attribute validation, ids, context), 0.3 ms for a query's six — more than 1% of a 20 ms warm
ask — so the asking thread only puts the event on a queue and one worker thread builds the spans,
mostly while the next question sits in onnxruntime or LanceDB, which release the GIL. close() drains
the queue before the provider flushes, so a command's spans are all exported before it exits. Stages ran one after another in the order
of ragcli.query.STAGES, so each stage span starts where the previous one ended, from the start of the
query (its end minus the total time); the small gaps between stages are therefore not placed exactly,
only the durations are exact.

Exporters (telemetry.otel_exporter): "none" never imports opentelemetry; "console" prints spans to
stderr (stdout is for answers and --json); "otlp" sends OTLP/HTTP to telemetry.otlp_endpoint through a
batch processor flushed when the command ends. Without the `otel` extra, asking for one logs a single
warning and ragcli carries on without traces.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ragcli.telemetry.events import STAGE_COLUMNS, AskEvent, IngestEvent, reason_kinds

if TYPE_CHECKING:
    from ragcli.config import TelemetryConfig

logger = logging.getLogger(__name__)

QUESTION_ATTRIBUTE_CHARS = 200
OTLP_TIMEOUT_S = 3.0  # bounds how long a command can wait at exit for an unreachable collector
SHUTDOWN_TIMEOUT_MS = 5000
STAGES = tuple(s for s in STAGE_COLUMNS if s != "total")
_NS = 1_000_000_000

_warned_missing = False


def _warn_missing(what: str) -> None:
    global _warned_missing
    if not _warned_missing:
        _warned_missing = True
        logger.warning(
            "telemetry.otel_exporter is set but %s is not installed; no traces are sent. "
            "Install it with: pip install 'ragcli[otel]'",
            what,
        )


def build_span_emitter(config: TelemetryConfig, exporter: Any = None) -> SpanEmitter | None:
    """The emitter for the configured exporter, or None. `exporter` (any SpanExporter) overrides it."""
    if exporter is None and config.otel_exporter == "none":
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        _warn_missing("opentelemetry-sdk")
        return None
    # A provider of our own rather than the global one: it can be shut down (flushing the batch) when
    # the command ends, and tests can build several.
    provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif config.otel_exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            _warn_missing("opentelemetry-exporter-otlp-proto-http")
            return None
        otlp = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=OTLP_TIMEOUT_S)
        provider.add_span_processor(BatchSpanProcessor(otlp, export_timeout_millis=OTLP_TIMEOUT_S * 1000))
    return SpanEmitter(provider)


def question_attributes(event: AskEvent) -> dict[str, str]:
    if event.question is None:
        return {"rag.question_hash": event.question_hash}
    return {"rag.question": event.question[:QUESTION_ATTRIBUTE_CHARS]}


class SpanEmitter:
    """Builds spans from events on a worker thread; `emit_*` only enqueue, `close` drains and flushes."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import trace

        self._provider = provider
        self._trace = trace
        self._tracer = provider.get_tracer("ragcli")
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._failed = False

    def emit_ask(self, event: AskEvent) -> None:
        self._submit(lambda: self._build_ask(event))

    def emit_ingest(self, event: IngestEvent) -> None:
        self._submit(lambda: self._build_ingest(event))

    def flush(self) -> None:
        """Wait until every submitted event has become spans (handed to the span processor)."""
        if self._worker is not None:
            self._queue.join()

    def close(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        self._provider.force_flush(SHUTDOWN_TIMEOUT_MS)
        self._provider.shutdown()

    def _submit(self, build: Callable[[], None]) -> None:
        if self._worker is None:
            # A daemon: an interpreter exiting without close() must not hang on it (spans are lost then).
            self._worker = threading.Thread(target=self._run, name="ragcli-spans", daemon=True)
            self._worker.start()
        self._queue.put(build)

    def _run(self) -> None:
        while True:
            build = self._queue.get()
            try:
                if build is None:
                    return
                build()
            except Exception as exc:  # a broken exporter or SDK costs one warning, never a question
                level = logging.DEBUG if self._failed else logging.WARNING
                self._failed = True
                logger.log(level, "Telemetry could not emit trace spans (%s); carrying on without them", exc)
            finally:
                self._queue.task_done()

    def _build_ask(self, event: AskEvent) -> None:
        timings = event.timings_ms
        end = int(event.ts * _NS)
        start = end - int(float(timings.get("total", 0.0)) * 1_000_000)
        root = self._tracer.start_span("rag_query", start_time=start, attributes=_ask_attributes(event))
        parent = self._trace.set_span_in_context(root)
        cursor = start
        for stage in STAGES:
            ms = float(timings.get(stage, 0.0) or 0.0)
            if ms <= 0:
                continue  # the stage did not run (keyword mode, rerank off, a cache hit)
            # Rounded stage times can add up to a hair more than the total: keep children inside it.
            stage_start = min(cursor, end)
            stage_end = min(cursor + int(ms * 1_000_000), end)
            span = self._tracer.start_span(
                f"rag.{stage}", context=parent, start_time=stage_start, attributes=_stage_attributes(event, stage)
            )
            span.end(end_time=stage_end)
            cursor = stage_end
        root.end(end_time=end)

    def _build_ingest(self, event: IngestEvent) -> None:
        end = int(event.ts * _NS)
        start = end - int(event.duration_s * _NS)
        attributes: dict[str, Any] = {
            f"rag.ingest.{name}": getattr(event, name)
            for name in (
                "scanned", "added", "updated", "removed", "failed", "unsupported", "chunks_embedded",
                "chunks_reused", "embed_errors", "embed_retries",
            )
        }
        attributes["rag.latency_ms.total"] = event.duration_s * 1000
        if event.embed_model:
            attributes["rag.embed.model"] = event.embed_model
        span = self._tracer.start_span("rag_ingest", start_time=start, attributes=attributes)
        span.end(end_time=end)


def _ask_attributes(event: AskEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "rag.request_id": event.request_id,
        **question_attributes(event),
        "rag.docs_returned": event.retrieved,
        "rag.cache": event.cache or "miss",
        "rag.degraded": event.degraded,
        "rag.refused": event.refused,
    }
    if event.top_score is not None:
        attributes["rag.top_score"] = float(event.top_score)
    if event.degraded_reason:
        attributes["rag.degraded_reason"] = event.degraded_reason
        attributes["rag.degraded_kinds"] = reason_kinds(event.degraded_reason)
    for key, value in (("rag.mode", event.mode), ("rag.provider", event.provider),
                       ("rag.generate.model", event.generator_model)):
        if value:
            attributes[key] = value
    for stage in STAGE_COLUMNS:
        attributes[f"rag.latency_ms.{stage}"] = float(event.timings_ms.get(stage, 0.0) or 0.0)
    for name, count in event.tokens.items():
        attributes[f"rag.tokens.{name}"] = int(count)
    if event.cpu_seconds is not None:
        attributes["rag.cpu_seconds"] = event.cpu_seconds
    return attributes


def _stage_attributes(event: AskEvent, stage: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "rag.request_id": event.request_id,
        "rag.latency_ms": float(event.timings_ms.get(stage, 0.0)),
    }
    tokens = event.tokens
    if stage == "embed":
        attributes["rag.tokens.query"] = int(tokens.get("query", 0))
        if event.embed_model:
            attributes["rag.embed.model"] = event.embed_model
    elif stage == "retrieve":
        attributes["rag.docs_returned"] = event.retrieved
        if event.mode:
            attributes["rag.mode"] = event.mode
        if event.top_score is not None:
            attributes["rag.top_score"] = float(event.top_score)
    elif stage == "rerank":
        if event.rerank_model:
            attributes["rag.rerank.model"] = event.rerank_model
    elif stage == "compress":
        attributes["rag.tokens.context_in"] = int(tokens.get("context_in", 0))
        attributes["rag.tokens.context_out"] = int(tokens.get("context_out", 0))
    elif stage == "generate":
        attributes["rag.tokens.prompt"] = int(tokens.get("prompt", 0))
        attributes["rag.tokens.completion"] = int(tokens.get("completion", 0))
        if event.generator_model:
            attributes["rag.generate.model"] = event.generator_model
    return attributes
