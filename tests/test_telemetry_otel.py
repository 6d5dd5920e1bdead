"""OpenTelemetry spans built after the fact from a recorded ask: names, parents, times, attributes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings, load_settings
from ragcli.ingest.pipeline import IngestReport
from ragcli.query import AskResult
from ragcli.telemetry import otel
from ragcli.telemetry.facade import Telemetry

REPO = Path(__file__).resolve().parents[1]
END = 1_700_000_000.0
QUESTION = "What is the opening pressure of the V-12 relief valve? " * 8  # longer than the 200-char cap


@pytest.fixture
def exporter() -> Any:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    return InMemorySpanExporter()


def make_ask(question: str = QUESTION, *, rerank: float = 30.0) -> AskResult:
    return AskResult(
        question=question,
        answer="8 bar [1]",
        citations=[],
        degraded=True,
        degraded_reason="reranker_failed: model file missing",
        timings_ms={"embed": 10.0, "retrieve": 20.0, "rerank": rerank, "compress": 5.0, "generate": 35.0,
                    "total": 110.0},
        tokens={"context_in": 900, "context_out": 400, "prompt": 450, "completion": 30},
        request_id="req-otel-1",
        mode="hybrid",
        provider="openai",
        model="gpt-test",
        refused=False,
        retrieved=4,
        top_score=0.83,
        notes=[],
    )


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return load_settings(env={"RAGCLI_HOME": str(tmp_path / "state"), **env})


def test_query_and_stage_spans(tmp_path: Path, exporter: Any) -> None:
    with Telemetry(settings_for(tmp_path), span_exporter=exporter) as telemetry:
        telemetry.record_ask(make_ask(), 0.25, at=END)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"rag_query", "rag.embed", "rag.retrieve", "rag.rerank", "rag.compress", "rag.generate"}
    root = spans.pop("rag_query")
    assert root.parent is None
    end_ns = int(END * 1e9)
    assert root.end_time == end_ns
    assert root.end_time - root.start_time == pytest.approx(110e6, abs=1000)
    for stage, span in spans.items():
        assert span.parent is not None and span.parent.span_id == root.context.span_id, stage
        assert span.context.trace_id == root.context.trace_id
        assert root.start_time <= span.start_time < span.end_time <= root.end_time
    # Stages follow each other in pipeline order with their measured durations.
    order = ["rag.embed", "rag.retrieve", "rag.rerank", "rag.compress", "rag.generate"]
    assert [spans[n].start_time for n in order] == sorted(spans[n].start_time for n in order)
    assert spans["rag.retrieve"].start_time == spans["rag.embed"].end_time
    assert spans["rag.generate"].end_time - spans["rag.generate"].start_time == pytest.approx(35e6, abs=1000)

    a = root.attributes
    assert a["rag.request_id"] == "req-otel-1"
    assert a["rag.question"] == QUESTION[:200]
    assert "rag.question_hash" not in a
    assert a["rag.docs_returned"] == 4
    assert a["rag.top_score"] == pytest.approx(0.83)
    assert a["rag.cache"] == "miss"
    assert a["rag.degraded"] is True
    assert a["rag.degraded_reason"] == "reranker_failed: model file missing"
    assert a["rag.latency_ms.total"] == 110.0
    assert a["rag.latency_ms.rerank"] == 30.0
    assert (a["rag.tokens.context_in"], a["rag.tokens.context_out"]) == (900, 400)
    assert (a["rag.tokens.prompt"], a["rag.tokens.completion"]) == (450, 30)
    assert a["rag.cpu_seconds"] == 0.25
    assert spans["rag.generate"].attributes["rag.tokens.completion"] == 30
    assert spans["rag.compress"].attributes["rag.tokens.context_out"] == 400
    assert spans["rag.retrieve"].attributes["rag.docs_returned"] == 4


def test_privacy_mode_puts_the_hash_not_the_question_in_spans(tmp_path: Path, exporter: Any) -> None:
    settings = settings_for(tmp_path, RAGCLI_TELEMETRY__STORE_QUESTION_TEXT="false")
    with Telemetry(settings, span_exporter=exporter) as telemetry:
        telemetry.record_ask(make_ask(), None, at=END)
        expected_hash = telemetry.log.question_hash(QUESTION)
    root = next(s for s in exporter.get_finished_spans() if s.name == "rag_query")
    assert root.attributes["rag.question_hash"] == expected_hash
    assert "rag.question" not in root.attributes
    assert root.attributes["rag.degraded_reason"] == "reranker_failed"
    dumped = json.dumps([json.loads(s.to_json()) for s in exporter.get_finished_spans()])
    assert "relief valve" not in dumped


def test_stages_that_did_not_run_have_no_span(tmp_path: Path, exporter: Any) -> None:
    with Telemetry(settings_for(tmp_path), span_exporter=exporter) as telemetry:
        telemetry.record_ask(make_ask(rerank=0.0), None, at=END)
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["rag.compress", "rag.embed", "rag.generate", "rag.retrieve", "rag_query"]


def test_ingest_span(tmp_path: Path, exporter: Any) -> None:
    report = IngestReport(scanned=7, added=3, updated=1, failed=1, chunks_embedded=12, seconds=2.5)
    with Telemetry(settings_for(tmp_path), span_exporter=exporter) as telemetry:
        telemetry.record_ingest(report, at=END)
    (span,) = exporter.get_finished_spans()
    assert span.name == "rag_ingest"
    assert span.end_time - span.start_time == pytest.approx(2.5e9, abs=1000)
    assert span.attributes["rag.ingest.added"] == 3
    assert span.attributes["rag.ingest.failed"] == 1
    assert span.attributes["rag.ingest.chunks_embedded"] == 12


def test_console_exporter_writes_to_stderr_not_stdout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("opentelemetry.sdk")
    settings = settings_for(tmp_path, RAGCLI_TELEMETRY__OTEL_EXPORTER="console")
    with Telemetry(settings) as telemetry:
        telemetry.record_ask(make_ask(), None, at=END)
    out, err = capfd.readouterr()
    assert out == ""  # stdout carries answers and --json
    assert '"name": "rag_query"' in err


def test_missing_sdk_logs_one_warning_and_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # makes the import fail
    monkeypatch.setattr(otel, "_warned_missing", False)
    settings = settings_for(tmp_path, RAGCLI_TELEMETRY__OTEL_EXPORTER="otlp")
    for i in range(2):
        with Telemetry(settings) as telemetry:
            telemetry.record_ask(replace(make_ask(), request_id=f"r{i}"), None)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ragcli[otel]" in warnings[0].getMessage()
    assert Telemetry(settings).stats()["queries"] == 2


def test_no_exporter_imports_neither_opentelemetry_nor_numpy(tmp_path: Path) -> None:
    script = f"""
import sys
from ragcli.config import load_settings
from ragcli.telemetry.facade import Telemetry
from tests.test_telemetry_otel import make_ask
t = Telemetry(load_settings(env={{"RAGCLI_HOME": {str(tmp_path / "state")!r}}}))
t.record_ask(make_ask(), 0.1)
t.close()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "numpy", "lancedb", "tiktoken"))
print(heavy)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_otlp_exporter_posts_the_spans_to_the_collector(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        settings = settings_for(
            tmp_path, RAGCLI_TELEMETRY__OTEL_EXPORTER="otlp", RAGCLI_TELEMETRY__OTLP_ENDPOINT=endpoint
        )
        with Telemetry(settings) as telemetry:
            telemetry.record_ask(make_ask(), None, at=END)
    finally:
        server.shutdown()
        server.server_close()
    assert received, "nothing was exported"
    path, content_type, body = received[0]
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    for name in (b"rag_query", b"rag.embed", b"rag.generate", b"req-otel-1", b"ragcli"):
        assert name in body


def test_every_attribute_is_one_the_sdk_would_accept_unchanged(tmp_path: Path, exporter: Any) -> None:
    # Spans are built as finished ReadableSpans, past the SDK's attribute validation: this checks that
    # nothing we emit would have been dropped or altered by it.
    from opentelemetry.attributes import BoundedAttributes

    with Telemetry(settings_for(tmp_path), span_exporter=exporter) as telemetry:
        telemetry.record_ask(make_ask(), 0.25, at=END)
        telemetry.record_ingest(IngestReport(scanned=1, added=1, seconds=1.0), at=END)
    spans = exporter.get_finished_spans()
    assert len(spans) == 7
    for span in spans:
        given = dict(span.attributes)
        assert dict(BoundedAttributes(attributes=given, immutable=False)) == given, span.name
        json.loads(span.to_json())  # what the console exporter prints
        assert span.resource.attributes["service.name"] == "ragcli"
        assert span.instrumentation_scope.name == "ragcli"
        assert span.context.trace_flags.sampled


def test_span_emission_that_fails_costs_one_warning_and_keeps_the_events(
    tmp_path: Path, exporter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: otel.SpanEmitter, event: Any) -> None:
        raise RuntimeError("sdk exploded")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(otel.SpanEmitter, "emit_ask", broken)
        with Telemetry(settings_for(tmp_path), span_exporter=exporter) as telemetry:
            for i in range(3):
                telemetry.record_ask(replace(make_ask(), request_id=f"b{i}"), None)
    assert Telemetry(settings_for(tmp_path)).stats()["queries"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "sdk exploded" in warnings[0]
    assert exporter.get_finished_spans() == ()


def test_spans_of_a_batch_leave_with_its_events_each_in_its_own_trace(tmp_path: Path, exporter: Any) -> None:
    settings = settings_for(tmp_path, RAGCLI_TELEMETRY__FLUSH_EVERY="4")
    telemetry = Telemetry(settings, span_exporter=exporter)
    for i in range(3):
        telemetry.record_ask(replace(make_ask(), request_id=f"t{i}"), None, at=END + i)
    assert exporter.get_finished_spans() == ()  # written and traced together, at the 4th or at close
    telemetry.close()
    roots = [s for s in exporter.get_finished_spans() if s.name == "rag_query"]
    assert [s.attributes["rag.request_id"] for s in roots] == ["t0", "t1", "t2"]
    assert len({s.context.trace_id for s in roots}) == 3
    assert [s.end_time for s in roots] == [int((END + i) * 1e9) for i in range(3)]
