"""What telemetry adds to one `ragcli ask`: the median time of record_ask (+ span emission), next to
the median time of a real ask on the fixture documents.

    .venv/bin/python benchmarks/telemetry_overhead.py            # telemetry only
    .venv/bin/python benchmarks/telemetry_overhead.py --ask 30   # and 30 real asks to compare with

Measured:
- warm:  record_ask on an open Telemetry (a long-lived process), SQLite insert in WAL mode;
- otel:  the same with tracing on (in-memory exporter, so the figure is ragcli's cost, not a
         network's): on the asking thread that is only handing the event to the span worker;
- end to end (--ask N): N real asks on the fixtures index, each followed by record_ask, in blocks of
         10 that rotate between telemetry off, recording, and recording + tracing (the span worker
         builds the six spans while the next question runs, so its cost shows up there, if anywhere);
         the overhead is the difference of the medians. The worker is drained between blocks, untimed.
- cold:  Telemetry(settings) + record_ask + close — what one `ragcli ask` process pays, opening the
         file and checking the schema included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ragcli.config import Settings, load_settings  # noqa: E402
from ragcli.query import AskResult  # noqa: E402
from ragcli.telemetry.facade import Telemetry  # noqa: E402


def sample_result(n: int) -> AskResult:
    return AskResult(
        question=f"How often must the impeller seal of pump {n} be replaced?",
        answer="Every 2,000 hours [1].",
        citations=[],
        degraded=False,
        degraded_reason=None,
        timings_ms={"embed": 8.0, "retrieve": 15.0, "rerank": 0.0, "compress": 4.0, "generate": 2.0, "total": 31.0},
        tokens={"context_in": 900, "context_out": 600, "prompt": 0, "completion": 0},
        request_id=f"bench-{n}",
        mode="hybrid",
        provider="extractive",
        model="",
        refused=False,
        retrieved=5,
        top_score=0.71,
        notes=[],
    )


def median_ms(calls: int, one: Callable[[int], None]) -> float:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        one(i)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench_warm(settings: Settings, calls: int, exporter: object = None) -> float:
    telemetry = Telemetry(settings, span_exporter=exporter)
    telemetry.record_ask(sample_result(-1), 0.01)  # opens the file and creates the schema
    try:
        return median_ms(calls, lambda i: telemetry.record_ask(sample_result(i), 0.01))
    finally:
        telemetry.close()


def bench_cold(settings: Settings, calls: int) -> float:
    def one(i: int) -> None:
        telemetry = Telemetry(settings)
        telemetry.record_ask(replace(sample_result(i), request_id=f"cold-{i}"), 0.01)
        telemetry.close()

    return median_ms(calls, one)


def bench_ask(home: Path, asks: int) -> float:
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.query import QueryEngine

    settings = load_settings(env={"RAGCLI_HOME": str(home)})
    Ingestor(settings).run([REPO / "fixtures" / "docs"])
    engine = QueryEngine(settings)
    questions = ["When was the company founded?", "How do I reset my password?", "What does the warranty cover?"]
    engine.ask(questions[0])  # loads the models
    return median_ms(asks, lambda i: engine.ask(questions[i % len(questions)]) and None)


def bench_end_to_end(home: Path, asks: int, block: int = 10) -> dict[str, float]:
    """Median ms of ask + record per configuration, blocks rotating so drift hits all three alike."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ragcli.ingest.pipeline import Ingestor
    from ragcli.query import QueryEngine

    settings = load_settings(env={"RAGCLI_HOME": str(home)})
    Ingestor(settings).run([REPO / "fixtures" / "docs"])
    engine = QueryEngine(settings)
    questions = ["When was the company founded?", "How do I reset my password?", "What does the warranty cover?"]
    engine.ask(questions[0])  # loads the models
    exporter = InMemorySpanExporter()
    telemetry = {
        "off": None,
        "record": Telemetry(load_settings(env={"RAGCLI_HOME": str(home / "record")})),
        "record+trace": Telemetry(load_settings(env={"RAGCLI_HOME": str(home / "trace")}), span_exporter=exporter),
    }
    times: dict[str, list[float]] = {name: [] for name in telemetry}
    n = 0
    while n < asks:
        for name, recorder in telemetry.items():
            for i in range(block):
                question = questions[(n + i) % len(questions)]
                started = time.perf_counter()
                result = engine.ask(question)
                if recorder is not None:
                    recorder.record_ask(result, 0.01)
                times[name].append((time.perf_counter() - started) * 1000)
            if recorder is not None and recorder._spans is not None:
                recorder._spans.flush()
                exporter.clear()
        n += block
    for recorder in telemetry.values():
        if recorder is not None:
            recorder.close()
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--ask", type=int, default=0, metavar="N", help="also time N real asks")
    args = parser.parse_args()

    from ragcli.tokens import count_tokens

    count_tokens("warm up")  # a real ask has loaded the encoding already (compression uses it)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm = bench_warm(load_settings(env={"RAGCLI_HOME": str(root / "warm")}), args.calls)
        print(f"record_ask, warm:                 {warm:.3f} ms median over {args.calls}")
        otel_ms = None
        try:
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        except ImportError:
            print("record_ask + spans:               skipped (opentelemetry-sdk is not installed)")
        else:
            otel_ms = bench_warm(
                load_settings(env={"RAGCLI_HOME": str(root / "otel")}), args.calls, InMemorySpanExporter()
            )
            print(f"record_ask + spans, warm:         {otel_ms:.3f} ms median over {args.calls}")
        cold_calls = max(1, args.calls // 5)
        cold = bench_cold(load_settings(env={"RAGCLI_HOME": str(root / "cold")}), cold_calls)
        print(f"open + record_ask + close (cold): {cold:.3f} ms median over {cold_calls}")
        if args.ask:
            ask = bench_ask(root / "ask", args.ask)
            print(f"ask in-process (extractive):      {ask:.1f} ms median over {args.ask}")
            print(f"  warm record_ask + spans:        {(otel_ms or warm) / ask:.2%} of it")
            print(f"  cold open + record + close:     {cold / ask:.2%} of it (a CLI ask also pays its own start-up)")
            if otel_ms is not None:
                medians = bench_end_to_end(root / "e2e", args.ask)
                base = medians["off"]
                print(f"end to end, {args.ask} asks per configuration, median ask + record:")
                for name, value in medians.items():
                    print(f"  {name:14} {value:7.2f} ms  overhead {value - base:+.3f} ms = {(value - base) / base:+.2%}")


if __name__ == "__main__":
    main()
