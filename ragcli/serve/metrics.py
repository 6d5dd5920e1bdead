"""Prometheus metrics of one server, in a registry of its own (tests start several in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# The *_created series double the output and say only when the server started.
disable_created_metrics()

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a 1 ms exact cache hit to a 30 s local-LLM answer.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STAGES = ("embed", "retrieve", "rerank", "compress", "generate", "total")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ragcli_requests", "HTTP requests by endpoint and outcome.", ["endpoint", "outcome"], registry=r
        )
        self.latency = Histogram(
            "ragcli_request_seconds", "Wall time of a request in the server.", ["endpoint"],
            buckets=_BUCKETS, registry=r,
        )
        self.stage = Histogram(
            "ragcli_stage_seconds", "Pipeline time per stage of answered questions.", ["stage"],
            buckets=_BUCKETS, registry=r,
        )
        self.cache = Counter("ragcli_cache_answers", "Answers by cache outcome.", ["kind"], registry=r)
        self.refusals = Counter("ragcli_refusals", "Answers that refused (nothing to answer from).", registry=r)
        self.degraded = Counter("ragcli_degraded", "Answers given with a failed stage.", registry=r)
        self.rejected = Counter(
            "ragcli_rejected", "Requests refused before the pipeline, by reason.", ["reason"], registry=r
        )
        self.in_flight = Gauge("ragcli_in_flight", "Questions being answered or waiting.", registry=r)
        self.ready = Gauge("ragcli_ready", "1 once the index is open and the models are loaded.", registry=r)
        self.index_version = Gauge("ragcli_index_version", "LanceDB table version being served.", registry=r)
        self.generation = Gauge("ragcli_corpus_generation", "Corpus journal generation being served.", registry=r)
        self.refreshes = Counter("ragcli_index_refreshes", "Times a newer index was opened.", registry=r)
        self.last_ingest_age = Gauge(
            "ragcli_last_ingest_age_seconds", "Seconds since the last ingest changed the corpus.", registry=r
        )

    def observe_answer(self, result: dict[str, Any]) -> None:
        timings = result.get("timings_ms") or {}
        for stage in _STAGES:
            value = timings.get(stage)
            if isinstance(value, int | float) and (value > 0 or stage == "total"):
                self.stage.labels(stage).observe(value / 1000)
        self.cache.labels(result.get("cache") or "miss").inc()
        if result.get("refused"):
            self.refusals.inc()
        if result.get("degraded"):
            self.degraded.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
