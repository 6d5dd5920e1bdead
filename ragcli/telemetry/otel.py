"""OpenTelemetry traces: `rag_query` with one child span per stage, and `rag_ingest`.

Spans are emitted after the fact, from the event that was just recorded, with explicit start and end
times: the pipeline already measures every stage, so the hot path needs no OTel calls at all and a
missing or broken SDK cannot slow down or fail a question. Stages ran one after another in the order
of ragcli.query.STAGES, so each stage span starts where the previous one ended, from the start of the
query (its end minus the total time); the small gaps between stages are therefore not placed exactly,
only the durations are exact.

Why finished spans are built directly (ReadableSpan, handed to the span processor) instead of through
a Tracer: the tracer path costs about 70 µs a span here (sampling, context variables, validating every
attribute), 0.4 ms for a query's six, 2-3% of a 20 ms warm ask; a ReadableSpan is a few µs. Spans that
end when they are made need none of that machinery, and our attributes are typed by construction. A
worker thread was measured too and was worse (+1.1 ms a question): span building is pure Python, so it
fights the asking thread for the GIL. Exporters receive the same ReadableSpan objects either way.

Exporters (telemetry.otel_exporter): "none" never imports opentelemetry; "console" prints spans to
stderr (stdout is for answers and --json); "otlp" sends OTLP/HTTP to telemetry.otlp_endpoint through a
batch processor flushed when the command ends. Without the `otel` extra, asking for one logs a single
warning and ragcli carries on without traces.
"""

from __future__ import annotations

import logging
import sys
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
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        _warn_missing("opentelemetry-sdk")
        return None
    processor: Any
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    elif config.otel_exporter == "console":
        processor = SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            _warn_missing("opentelemetry-exporter-otlp-proto-http")
            return None
        otlp = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=OTLP_TIMEOUT_S)
        processor = BatchSpanProcessor(otlp, export_timeout_millis=OTLP_TIMEOUT_S * 1000)
    return SpanEmitter(processor, Resource.create({"service.name": config.service_name}))


def question_attributes(event: AskEvent) -> dict[str, str]:
    if event.question is None:
        return {"rag.question_hash": event.question_hash}
    return {"rag.question": event.question[:QUESTION_ATTRIBUTE_CHARS]}


class SpanEmitter:
    """Turns recorded events into finished spans for one span processor; `close` flushes it."""

    def __init__(self, processor: Any, resource: Any) -> None:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, TraceFlags

        self._processor = processor
        self._resource = resource
        self._scope = InstrumentationScope("ragcli")
        self._ids = RandomIdGenerator()
        self._readable_span = ReadableSpan
        self._span_context = SpanContext
        self._sampled = TraceFlags(TraceFlags.SAMPLED)

    def emit_ask(self, event: AskEvent) -> None:
        timings = event.timings_ms
        end = int(event.ts * _NS)
        start = end - int(float(timings.get("total", 0.0)) * 1_000_000)
        trace_id = self._ids.generate_trace_id()
        root = self._context(trace_id)
        cursor = start
        for stage in STAGES:
            ms = float(timings.get(stage, 0.0) or 0.0)
            if ms <= 0:
                continue  # the stage did not run (keyword mode, rerank off, a cache hit)
            # Rounded stage times can add up to a hair more than the total: keep children inside it.
            stage_start = min(cursor, end)
            stage_end = min(cursor + int(ms * 1_000_000), end)
            self._finish(f"rag.{stage}", self._context(trace_id), root, stage_start, stage_end,
                         _stage_attributes(event, stage))
            cursor = stage_end
        self._finish("rag_query", root, None, start, end, _ask_attributes(event))

    def emit_ingest(self, event: IngestEvent) -> None:
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
        context = self._context(self._ids.generate_trace_id())
        self._finish("rag_ingest", context, None, start, end, attributes)

    def close(self) -> None:
        self._processor.force_flush(SHUTDOWN_TIMEOUT_MS)
        self._processor.shutdown()

    def _context(self, trace_id: int) -> Any:
        return self._span_context(trace_id, self._ids.generate_span_id(), is_remote=False,
                                  trace_flags=self._sampled)

    def _finish(self, name: str, context: Any, parent: Any, start: int, end: int,
                attributes: dict[str, Any]) -> None:
        self._processor.on_end(
            self._readable_span(
                name,
                context=context,
                parent=parent,
                resource=self._resource,
                attributes=attributes,
                instrumentation_scope=self._scope,
                start_time=start,
                end_time=end,
            )
        )


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
        attributes["rag.degraded_kinds"] = tuple(reason_kinds(event.degraded_reason))
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
