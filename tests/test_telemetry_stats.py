"""`ragcli stats` figures from a known set of events, checked against arithmetic done by hand."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings, ThresholdsConfig, load_settings
from ragcli.errors import UsageError
from ragcli.ingest.pipeline import IngestReport
from ragcli.query import AskResult
from ragcli.telemetry.facade import Telemetry
from ragcli.telemetry.report import write_report
from ragcli.telemetry.stats import check_thresholds, compute_stats
from ragcli.tokens import count_tokens

NOW = 1_700_000_040.0  # a whole minute (28,333,334 × 60), so minute buckets are easy to reason about
HOUR = 3600.0

CONFIG = """
[embedding]
model = "embed-test"
[rerank]
model = "rerank-test"
[cost.prices.gpt-test]
input_per_1k_tokens = 0.5
output_per_1k_tokens = 1.5
[cost.prices.embed-test]
embedding_per_1k_tokens = 0.1
[cost.prices.rerank-test]
rerank_per_1k_searches = 2.0
"""

QUESTIONS = {  # every one is 5 cl100k tokens (asserted below), so each embedding costs 5/1000 × 0.1
    "a1": "How do pumps work?",
    "a2": "Where is the valve?",
    "a3": "What is the pressure?",
    "a4": "Who opened the plant?",
    "a5": "When are fire drills?",
    "old": "Which seal fails first?",
}


def make_ask(
    request_id: str,
    *,
    total: float,
    stages: dict[str, float] | None = None,
    cache: str | None = None,
    tokens: dict[str, int] | None = None,
    retrieved: int = 5,
    refused: bool = False,
    degraded_reason: str | None = None,
) -> AskResult:
    timings = {"embed": 0.0, "retrieve": 0.0, "rerank": 0.0, "compress": 0.0, "generate": 0.0}
    timings.update(stages or {})
    timings["total"] = total
    result = AskResult(
        question=QUESTIONS[request_id],
        answer="an answer",
        citations=[],
        degraded=degraded_reason is not None,
        degraded_reason=degraded_reason,
        timings_ms=timings,
        tokens=tokens or {"context_in": 0, "context_out": 0, "prompt": 0, "completion": 0},
        request_id=request_id,
        mode="hybrid",
        provider="openai",
        model="gpt-test",
        refused=refused,
        retrieved=retrieved,
        top_score=0.9 if retrieved else None,
        notes=[],
    )
    result.cache = cache
    return result


@pytest.fixture
def priced_settings(tmp_path: Path) -> Settings:
    config = tmp_path / "ragcli.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return load_settings(config, env={"RAGCLI_HOME": str(tmp_path / "state")})


@pytest.fixture
def telemetry(priced_settings: Settings) -> Any:
    t = Telemetry(priced_settings, clock=lambda: NOW)
    yield t
    t.close()


@pytest.fixture
def recorded(telemetry: Telemetry) -> Telemetry:
    assert all(count_tokens(q) == 5 for q in QUESTIONS.values())
    t = telemetry
    # Three asks within one wall-clock minute (NOW-3000 .. NOW-2980), then two more.
    t.record_ask(
        make_ask("a1", total=100, stages={"embed": 10, "retrieve": 20, "rerank": 30, "compress": 5, "generate": 35},
                 tokens={"context_in": 1000, "context_out": 400, "prompt": 500, "completion": 100}),
        0.2, at=NOW - 3000,
    )
    t.record_ask(
        make_ask("a2", total=200, stages={"embed": 20, "retrieve": 40, "compress": 10}, retrieved=0, refused=True),
        0.1, at=NOW - 2990,
    )
    # An exact hit, recorded from the JSON dict a cache hit is served as. The cached answer's tokens
    # are not this request's, so they must not be billed.
    hit = make_ask("a3", total=300, tokens={"context_in": 1000, "context_out": 400, "prompt": 500, "completion": 100})
    t.record_ask(hit.to_json() | {"cache": "exact"}, None, at=NOW - 2980)
    t.record_ask(make_ask("a4", total=400, stages={"embed": 15}, cache="semantic"), 0.05, at=NOW - 1200)
    t.record_ask(
        make_ask("a5", total=1000, stages={"embed": 10, "retrieve": 30, "rerank": 50, "compress": 10, "generate": 900},
                 tokens={"context_in": 2000, "context_out": 1000, "prompt": 0, "completion": 0},
                 degraded_reason="generator_failed: timeout after 60 s; reranker_failed: boom"),
        0.4, at=NOW - 600,
    )
    t.record_ask(make_ask("old", total=5000, stages={"embed": 10}), 1.0, at=NOW - 2 * HOUR)  # outside 1 h

    t.record_ingest(IngestReport(scanned=100, added=100, chunks_embedded=300, seconds=60.0), at=NOW - 2 * HOUR)
    report = IngestReport(scanned=15, added=8, updated=2, removed=1, failed=2, chunks_embedded=30,
                          chunks_reused=10, seconds=12.0)
    report.failures = [{"source": "x.pdf", "stage": "embed", "error": "e"}, {"source": "y", "stage": "load", "error": "e"}]
    t.record_ingest(report, at=NOW - 2000)
    # A run that only failed is not a successful ingest.
    t.record_ingest(IngestReport(scanned=1, failed=1, seconds=1.0,
                                 failures=[{"source": "z", "stage": "load", "error": "e"}]), at=NOW - 100)

    t.feedback("a1", "up")
    t.feedback("a4", "up", "quick")
    t.feedback("a5", "down", "it timed out")
    return t


def test_figures_for_the_last_hour_match_hand_arithmetic(recorded: Telemetry) -> None:
    s = recorded.stats(HOUR)
    assert s["empty"] is False
    assert s["queries"] == 5
    # 5 asks over a 3,600 s window; the busiest minute holds a1, a2, a3 → 3 / 60 s.
    assert s["qps"]["average"] == pytest.approx(5 / 3600)
    assert s["qps"]["peak"] == pytest.approx(0.05)
    assert s["qps"]["peak_minute_start"] == NOW - 3000

    total = s["latency_ms"]["total"]
    # Sorted totals [100, 200, 300, 400, 1000]; linear method: h = (n - 1) × q.
    assert total["p50"] == pytest.approx(300)  # h = 2 → 300
    assert total["p95"] == pytest.approx(880)  # h = 3.8 → 400 + 0.8 × (1000 - 400)
    assert total["p99"] == pytest.approx(976)  # h = 3.96 → 400 + 0.96 × 600
    embed = s["latency_ms"]["embed"]  # asks that embedded: [10, 10, 15, 20]
    assert embed["n"] == 4
    assert embed["p50"] == pytest.approx(12.5)  # h = 1.5 → 10 + 0.5 × 5
    assert embed["p95"] == pytest.approx(19.25)  # h = 2.85 → 15 + 0.85 × 5
    rerank = s["latency_ms"]["rerank"]  # [30, 50]
    assert rerank["p50"] == pytest.approx(40)
    assert rerank["p95"] == pytest.approx(49)  # h = 0.95 → 30 + 0.95 × 20

    assert s["cache"]["exact_hit_rate"] == pytest.approx(1 / 5)
    assert s["cache"]["semantic_hit_rate"] == pytest.approx(1 / 5)
    assert s["cache"]["hit_rate"] == pytest.approx(2 / 5)
    assert s["empty_retrieval_rate"] == pytest.approx(1 / 5)  # a2
    assert s["refusal_rate"] == pytest.approx(1 / 5)  # a2
    assert s["degraded_rate"] == pytest.approx(1 / 5)  # a5
    assert s["degraded_by_reason"] == {
        "generator_failed": {"count": 1, "rate": pytest.approx(0.2)},
        "reranker_failed": {"count": 1, "rate": pytest.approx(0.2)},
    }
    # CPU: 0.2 + 0.1 + 0.05 + 0.4 over the 4 asks that measured it.
    assert s["cpu"]["seconds_total"] == pytest.approx(0.75)
    assert s["cpu"]["seconds_per_query"] == pytest.approx(0.1875)


def test_ingest_figures_match_hand_arithmetic(recorded: Telemetry) -> None:
    ing = recorded.stats(HOUR)["ingest"]
    assert ing["runs"] == 2
    assert ing["documents_ingested"] == 10  # 8 added + 2 updated
    assert ing["documents_per_hour"] == pytest.approx(10.0)  # 10 over a 1 h window
    assert ing["failed_rate"] == pytest.approx(3 / 13)  # failed 2 + 1 over (8 + 2 + 3)
    assert ing["embedding_errors"] == 1
    assert ing["embedding_error_rate"] == pytest.approx(1 / 11)  # 1 / (10 indexed + 1)
    assert ing["avg_chunks_per_document"] == pytest.approx(4.0)  # (30 embedded + 10 reused) / 10
    # The failed-only run at NOW-100 does not count; the one at NOW-2000 does.
    assert ing["last_success_at"] == NOW - 2000
    assert ing["last_success_age_hours"] == pytest.approx(2000 / 3600)


def test_costs_and_savings_match_hand_arithmetic(recorded: Telemetry) -> None:
    cost = recorded.stats(HOUR)["cost"]
    # embed: a1, a2, a4, a5 embedded 5 tokens each → 20 / 1000 × 0.1 = 0.002 (a3, an exact hit, did not)
    # rerank: a1 and a5 → 2 / 1000 × 2.0 = 0.004
    # generate: a1 only → 500 / 1000 × 0.5 + 100 / 1000 × 1.5 = 0.25 + 0.15 = 0.4
    assert cost["window"]["embed"] == pytest.approx(0.002)
    assert cost["window"]["rerank"] == pytest.approx(0.004)
    assert cost["window"]["generate"] == pytest.approx(0.4)
    assert cost["window"]["total"] == pytest.approx(0.406)
    assert cost["per_query"]["total"] == pytest.approx(0.406 / 5)
    assert cost["per_1000_queries"]["total"] == pytest.approx(81.2)
    assert cost["per_1000_queries"]["generate"] == pytest.approx(80.0)
    assert cost["currency"] == "USD"
    assert cost["priced_models"] == ["embed-test", "gpt-test", "rerank-test"]

    cache = cost["savings"]["cache"]
    # misses a1 0.4025, a2 0.0005, a5 0.0025 → 0.4055 / 3; hits a3 0 + a4 0.0005 (its embedding).
    assert cache["hits"] == 2
    assert cache["cost"] == pytest.approx(2 * 0.4055 / 3 - 0.0005)
    assert cache["tokens"] == 400  # misses' prompt + completion 600 / 3 misses × 2 hits
    compression = cost["savings"]["compression"]
    # misses' context_in − context_out: a1 600 + a2 0 + a5 1000 = 1600 → 1.6 × 0.5
    assert compression["tokens"] == 1600
    assert compression["cost"] == pytest.approx(0.8)


def test_feedback_satisfaction(recorded: Telemetry) -> None:
    fb = recorded.stats(HOUR)["feedback"]
    assert (fb["up"], fb["down"]) == (2, 1)
    assert fb["satisfaction_rate"] == pytest.approx(2 / 3)
    recorded.feedback("a5", "up", "works after a retry")  # a new rating replaces the old one
    assert recorded.stats(HOUR)["feedback"]["satisfaction_rate"] == pytest.approx(1.0)


def test_feedback_for_an_unknown_request_is_a_usage_error(recorded: Telemetry) -> None:
    with pytest.raises(UsageError, match="no-such-id"):
        recorded.feedback("no-such-id", "up")
    with pytest.raises(UsageError, match="'up' or 'down'"):
        recorded.feedback("a1", "meh")


def test_feedback_without_any_events_is_a_usage_error(telemetry: Telemetry) -> None:
    with pytest.raises(UsageError, match="request id"):
        telemetry.feedback("abc", "down")
    assert not telemetry.path.exists()


def test_window_filtering_by_since(recorded: Telemetry) -> None:
    everything = recorded.stats(None)
    assert everything["queries"] == 6
    assert everything["window"]["start"] == NOW - 2 * HOUR
    # totals [100, 200, 300, 400, 1000, 5000]: h = 2.5 → 300 + 0.5 × 100
    assert everything["latency_ms"]["total"]["p50"] == pytest.approx(350)
    assert everything["ingest"]["documents_ingested"] == 110
    assert recorded.stats(HOUR)["queries"] == 5
    last_15_min = recorded.stats(900)  # only a5 (NOW-600) and the failed ingest (NOW-100)
    assert last_15_min["queries"] == 1
    assert last_15_min["ingest"]["documents_ingested"] == 0
    assert last_15_min["ingest"]["failed_rate"] == pytest.approx(1.0)
    # Feedback is dated when it was given (NOW), not when the question was asked.
    assert (last_15_min["feedback"]["up"], last_15_min["feedback"]["down"]) == (2, 1)


def test_empty_state_directory(priced_settings: Settings) -> None:
    db = priced_settings.home / "events.sqlite3"
    s = compute_stats(db, None, priced_settings, now=NOW)
    assert s["empty"] is True
    assert s["queries"] == 0
    assert "No events" in s["message"]
    assert s["latency_ms"]["total"]["p95"] is None
    assert s["cache"]["hit_rate"] is None
    assert s["cost"]["per_query"] is None
    assert not priced_settings.home.exists()  # reading stats creates nothing
    assert check_thresholds(s, ThresholdsConfig()) == ["no successful ingest is on record"]  # type: ignore[call-arg]


def test_a_window_with_no_events_is_empty(recorded: Telemetry, priced_settings: Settings) -> None:
    later = Telemetry(priced_settings, clock=lambda: NOW + 10 * HOUR)
    s = later.stats(HOUR)  # the newest event (the feedback) is 10 h old
    assert s["empty"] is True
    assert "in this window" in s["message"]
    assert s["queries"] == 0
    assert s["ingest"]["last_success_at"] == NOW - 2000  # staleness looks at all time, not the window
    assert s["ingest"]["last_success_age_hours"] == pytest.approx(10 + 2000 / 3600)
    later.close()


def test_check_thresholds_reports_each_breach(recorded: Telemetry) -> None:
    s = recorded.stats(HOUR)  # p95 880 ms, failure rate 3/13, last success 0.56 h ago, hit rate 0.4
    strict = ThresholdsConfig(
        p95_latency_ms=500, max_ingest_failure_rate=0.1, max_staleness_hours=0.25, min_cache_hit_rate=0.5
    )
    breaches = check_thresholds(s, strict)
    assert len(breaches) == 4
    assert "p95 ask latency is 880 ms" in breaches[0]
    assert "ingest failure rate is 23.08%" in breaches[1]
    assert "0.6 hours ago" in breaches[2]
    assert "cache hit rate is 40.00%" in breaches[3]
    lenient = ThresholdsConfig(
        p95_latency_ms=900, max_ingest_failure_rate=0.25, max_staleness_hours=1, min_cache_hit_rate=0.4
    )
    assert check_thresholds(s, lenient) == []


def test_report_has_the_figures_and_a_readable_histogram(recorded: Telemetry, tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.md"
    path.parent.mkdir()
    image = write_report(recorded.stats(HOUR), path)
    text = path.read_text(encoding="utf-8")
    assert image == path.with_suffix(".png")
    assert "![Histogram of total ask latency](report.png)" in text
    assert "| total | 5 | 300.0 | 880.0 | 976.0 |" in text
    assert "| total | 0.406000 USD | 0.081200 USD | 81.200000 USD |" in text
    assert "degraded by generator_failed | 20.0% (1)" in text
    assert "method 'linear'" in text
    data = image.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (900, 500)


def test_report_on_an_empty_state_directory(priced_settings: Settings, tmp_path: Path) -> None:
    stats = compute_stats(priced_settings.home / "events.sqlite3", 3600, priced_settings, now=NOW)
    path = tmp_path / "empty.md"
    assert write_report(stats, path) is None
    text = path.read_text(encoding="utf-8")
    assert "No events have been recorded yet." in text
    assert "No latency histogram" in text
    assert not path.with_suffix(".png").exists()


@pytest.mark.parametrize(
    ("values", "edges"),
    [
        ([58.0, 300.0, 883.0, 1708.0, 1200.0], [0.0, 500.0, 1000.0, 1500.0, 2000.0]),
        ([3.0, 7.0, 12.0, 18.0, 41.0], [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]),
        ([0.31, 0.44, 0.52, 0.9], [0.2, 0.4, 0.6, 0.8, 1.0]),
        ([120.0], [120.0, 140.0]),
    ],
)
def test_histogram_bins_sit_at_round_values(values: list[float], edges: list[float]) -> None:
    from ragcli.telemetry.stats import latency_histogram

    hist = latency_histogram(values)
    assert hist is not None
    assert hist["edges_ms"] == edges
    assert sum(hist["counts"]) == len(values)


def test_histogram_widths_are_one_two_or_five_times_a_power_of_ten() -> None:
    import math
    import random

    from ragcli.telemetry.stats import latency_histogram

    rng = random.Random(7)
    for _ in range(50):
        values = [rng.lognormvariate(rng.uniform(0, 8), rng.uniform(0.1, 2)) for _ in range(rng.randint(1, 400))]
        hist = latency_histogram(values)
        assert hist is not None
        edges = hist["edges_ms"]
        width = edges[1] - edges[0]
        mantissa = width / 10 ** math.floor(math.log10(width))
        assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6, width
        assert all(abs(e / width - round(e / width)) < 1e-6 for e in edges)
        assert edges[0] <= min(values) and edges[-1] >= min(max(values), hist["clipped_above_ms"] or math.inf)
        assert sum(hist["counts"]) == len(values) and len(hist["counts"]) <= 31
