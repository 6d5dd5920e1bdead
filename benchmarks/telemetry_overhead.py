"""What telemetry adds to one `ragcli ask`: the median time of record_ask (+ span emission), next to
the median time of a real ask on the fixture documents.

    .venv/bin/python benchmarks/telemetry_overhead.py            # telemetry only
    .venv/bin/python benchmarks/telemetry_overhead.py --ask 600  # and in a loop of real asks
    .venv/bin/python benchmarks/telemetry_overhead.py --ask 300 --squad ../shared/eval/squad-v2-part/dev-v2.0-part.json

Measured:
- warm:  record_ask on an open Telemetry (a long-lived process), SQLite insert in WAL mode;
- otel:  the same with tracing on: the rag_query span and its stage spans handed to a
         SimpleSpanProcessor with the in-memory exporter, so the figure is ragcli's cost, not a
         network's (the OTLP exporter's BatchSpanProcessor only queues a span in on_end);
- in the ask loop (--ask N): real asks with caches off (on fixtures/docs with the golden questions,
         or with --squad FILE on its paragraphs with its questions), each followed by record_ask;
         telemetry off, recording, and recording + tracing take turns question by question, so
         drift hits all three alike. The recording is timed on its own, right after a real ask (its
         caches cold), which is its cost in use; the ask time shows any spill-over.
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
    return timed(calls, one)[0]


def mean_ms(calls: int, one: Callable[[int], None]) -> float:
    """The mean: with batched writes most calls only queue, and every flush_every-th pays for all."""
    return timed(calls, one)[1]


def timed(calls: int, one: Callable[[int], None]) -> tuple[float, float]:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        one(i)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), statistics.fmean(times)


def bench_warm(settings: Settings, calls: int, exporter: object = None) -> float:
    telemetry = Telemetry(settings, span_exporter=exporter)
    telemetry.record_ask(sample_result(-1), 0.01)  # opens the file and creates the schema
    try:
        return mean_ms(calls, lambda i: telemetry.record_ask(sample_result(i), 0.01))
    finally:
        telemetry.close()


def bench_cold(settings: Settings, calls: int) -> float:
    def one(i: int) -> None:
        telemetry = Telemetry(settings)
        telemetry.record_ask(replace(sample_result(i), request_id=f"cold-{i}"), 0.01)
        telemetry.close()

    return median_ms(calls, one)


def ask_engine(home: Path, squad: Path | None) -> tuple[object, list[str]]:
    """A warm QueryEngine with caches off (every ask does the real work) and the questions to ask."""
    import json

    from ragcli.evaluation.harness import build_index
    from ragcli.evaluation.squad import load_squad, paragraph_documents
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.query import QueryEngine

    settings = load_settings(env={"RAGCLI_HOME": str(home), "RAGCLI_CACHE__ENABLED": "false"})
    if squad is None:
        Ingestor(settings).run([REPO / "fixtures" / "docs"])
        lines = (REPO / "fixtures" / "golden.jsonl").read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]
    else:
        examples = load_squad(squad)
        build_index(settings, paragraph_documents(examples))
        questions = [e.question for e in examples if not e.is_impossible][:200]
    engine = QueryEngine(settings)
    engine.ask(questions[0])  # loads the models
    return engine, questions


def bench_end_to_end(home: Path, asks: int, squad: Path | None = None) -> dict[str, dict[str, float]]:
    """Per configuration: median ms of the ask, of the recording after it, and of both together.

    The configurations take turns question by question, so drift and the machine's other load hit all
    three alike; timing the ask and the recording separately shows the recording's own cost in
    context (caches cold after a real ask) and any spill-over into the ask that follows.
    """
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    engine, questions = ask_engine(home, squad)
    exporter = InMemorySpanExporter()
    telemetry = {
        "off": None,
        "record": Telemetry(load_settings(env={"RAGCLI_HOME": str(home / "record")})),
        "record+trace": Telemetry(load_settings(env={"RAGCLI_HOME": str(home / "trace")}), span_exporter=exporter),
    }
    samples: dict[str, dict[str, list[float]]] = {name: {"ask": [], "record": [], "both": []} for name in telemetry}
    names = list(telemetry)
    for n in range(asks):
        # Rotate who goes first: the second and third ask of a question are not timed like the first.
        for name in names[n % 3 :] + names[: n % 3]:
            recorder = telemetry[name]
            started = time.perf_counter()
            result = engine.ask(questions[n % len(questions)])  # type: ignore[attr-defined]
            asked = time.perf_counter()
            if recorder is not None:
                recorder.record_ask(result, 0.01)
            done = time.perf_counter()
            samples[name]["ask"].append((asked - started) * 1000)
            samples[name]["record"].append((done - asked) * 1000)
            samples[name]["both"].append((done - started) * 1000)
        if n % 100 == 99:
            exporter.clear()
    for recorder in telemetry.values():
        if recorder is not None:
            recorder.close()
    medians = {name: {k: statistics.median(v) for k, v in parts.items()} for name, parts in samples.items()}
    for name, parts in samples.items():
        medians[name]["record_mean"] = statistics.fmean(parts["record"])
    # The same question asked back to back under each configuration: the paired difference cancels
    # the spread between questions, which the difference of two medians does not.
    off = samples["off"]["ask"]
    for name, parts in samples.items():
        medians[name]["paired"] = statistics.median(b - a for a, b in zip(off, parts["both"], strict=True))
        medians[name]["paired_mean"] = statistics.fmean(b - a for a, b in zip(off, parts["both"], strict=True))
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--ask", type=int, default=0, metavar="N", help="also time N real asks per configuration")
    parser.add_argument("--squad", type=Path, help="ask on an index of this SQuAD file's paragraphs instead")
    args = parser.parse_args()

    from ragcli.tokens import count_tokens

    count_tokens("warm up")  # a real ask has loaded the encoding already (compression uses it)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm = bench_warm(load_settings(env={"RAGCLI_HOME": str(root / "warm")}), args.calls)
        print(f"record_ask, warm:                 {warm:.3f} ms mean over {args.calls} (batches included)")
        try:
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        except ImportError:
            print("record_ask + spans:               skipped (opentelemetry-sdk is not installed)")
            return
        traced = bench_warm(
            load_settings(env={"RAGCLI_HOME": str(root / "otel")}), args.calls, InMemorySpanExporter()
        )
        print(f"record_ask + spans, warm:         {traced:.3f} ms mean over {args.calls} (batches included)")
        cold_calls = max(1, args.calls // 5)
        cold = bench_cold(load_settings(env={"RAGCLI_HOME": str(root / "cold")}), cold_calls)
        print(f"open + record_ask + close (cold): {cold:.3f} ms median over {cold_calls}")
        if not args.ask:
            return
        medians = bench_end_to_end(root / "e2e", args.ask, args.squad)
        base = medians["off"]["ask"]
        index = f"SQuAD paragraphs of {args.squad.name}" if args.squad else "fixtures/docs"
        print(f"in the ask loop on {index}, caches off, {args.ask} asks per configuration taking turns, medians:")
        print(f"  {'configuration':14} {'ask ms':>8} {'record ms median/mean':>22} {'mean share':>10}"
              f" {'ask+record ms':>14} {'paired diff ms (median / mean)':>32}")
        for name, m in medians.items():
            print(f"  {name:14} {m['ask']:8.2f} {m['record']:10.3f} / {m['record_mean']:.3f}"
                  f" {m['record_mean'] / base:10.2%} {m['both']:14.2f}"
                  f" {m['paired']:+15.3f} = {m['paired'] / base:+.2%} / {m['paired_mean']:+.3f}")
        print(f"isolated record_ask + spans (mean) = {traced / base:.2%} of the median ask; "
              f"a CLI process's open + record + close = {cold / base:.2%} (paid after the answer is printed)")


if __name__ == "__main__":
    main()
