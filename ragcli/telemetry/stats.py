"""`ragcli stats`: figures over a time window of the event log, and the health check on them.

Definitions (each rate is None, not 0, when its denominator is 0):
- window: [now - since, now]; without `since`, from the oldest event on record to now. Average rates
  divide by the window's length, but by at least one minute, so one event does not make a huge rate.
- peak queries per second: the busiest wall-clock minute (floor(ts / 60)), its count / 60.
- latency percentiles: numpy.percentile with method="linear" (numpy's default: linear interpolation
  between closest ranks, p = v[floor(h)] + (h - floor(h)) * (v[floor(h)+1] - v[floor(h)]) with
  h = (n - 1) * q / 100). "total" covers every ask; a stage covers only the asks in which it ran
  (time > 0), so a reranker used on a few asks shows its own latency rather than a p50 of zero.
- cache hit rate: (exact + semantic hits) / asks; each kind on its own too.
- empty retrieval: retrieved == 0; refusal: the answer was the refusal; degraded: by reason kind (the
  text before ':'), as a share of asks — an ask with two reasons counts under both.
- refusals by reason: refused asks per `refused_reason`, as a share of asks. Confidence: the median of
  the gate's confidence over asks that have one, and `low_share`, the share of those within
  [min_confidence, 2 × min_confidence) — answers that only just passed. Citations verified: the mean
  share of LLM answer sentences supported by the passage they cite, over the answers checked.
- documents ingested: added + updated; failed-ingestion rate: failed / (added + updated + failed);
  embedding error rate: documents that failed in the embed stage / (added + updated + those); average
  chunks per document: (chunks embedded + chunks reused) / (added + updated).
- last successful ingest (over all time, not the window): the newest run that failed nothing or
  indexed something.
- satisfaction: up / (up + down) over the feedback given in the window.
- cost: see ragcli.telemetry.cost. Cache savings = hits × (mean cost of a miss) − what the hits did cost
  (a semantic hit still embeds the question); tokens likewise from the misses' prompt + completion.
  Compression savings = Σ (context_in − context_out) of the misses, priced at their generator's input
  price.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ragcli.telemetry.cost import StageCost, Usage, input_token_cost, usage_cost
from ragcli.telemetry.events import STAGE_COLUMNS, connect_for_reading, reason_kinds, schema_version

if TYPE_CHECKING:
    from ragcli.config import Settings, ThresholdsConfig

PERCENTILE_METHOD: Final = "linear"
MIN_WINDOW_SECONDS = 60.0
HISTOGRAM_MAX_BINS = 30


# ----- small helpers ---------------------------------------------------------------------------------
def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def percentiles(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    import numpy as np

    arr = np.asarray(values, dtype=float)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99], method=PERCENTILE_METHOD)
    return {
        "n": len(values),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


def round_bin_width(raw: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at least `raw`, so bins are 10, 20, 50, 100 … ms wide."""
    if raw <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))


def round_bin_edges(low: float, high: float, bins: int) -> list[float]:
    """About `bins` bins of a round width covering [low, high], every edge a multiple of the width (a
    reader can tell what 0–50 ms means; 58–883 ms says nothing)."""
    width = round_bin_width((high - low) / bins) if high > low else round_bin_width(max(abs(low), 1.0) / 10)
    first = math.floor(low / width) * width
    count = max(1, math.ceil((high - first) / width - 1e-9))
    if first + count * width < high:
        count += 1
    # Rounded so 0.1 × 3 prints as 0.3, not 0.30000000000000004.
    return [round(first + i * width, 9) for i in range(count + 1)]


def latency_histogram(values: Sequence[float]) -> dict[str, Any] | None:
    """Bins for the report's picture. A long tail past 2 × p99 is folded into the last bar."""
    if not values:
        return None
    import numpy as np

    arr = np.asarray(values, dtype=float)
    low, high = float(arr.min()), float(arr.max())
    clipped_above = None
    p99 = float(np.percentile(arr, 99, method=PERCENTILE_METHOD))
    if len(arr) >= 100 and high > 2 * p99:
        clipped_above, high = p99, p99
        arr = np.minimum(arr, high)
    bins = max(5, min(HISTOGRAM_MAX_BINS, math.ceil(math.sqrt(len(arr)))))
    edges = round_bin_edges(low, high, bins)
    counts, _ = np.histogram(arr, bins=edges)
    return {
        "edges_ms": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "clipped_above_ms": clipped_above,
    }


def directory_size(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {"path": None, "exists": False, "bytes": None, "files": None}
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:  # a file replaced mid-walk (an ingest is running)
                continue
            files += 1
    return {"path": str(path), "exists": path.exists(), "bytes": total, "files": files}


def _hours_since(ts: float | None, now: float) -> float | None:
    return None if ts is None else max(0.0, (now - ts) / 3600)


def _default_index_path(settings: Settings) -> Path | None:
    uri = settings.store_uri
    return None if "://" in uri else Path(uri)


# ----- the figures -----------------------------------------------------------------------------------
def compute_stats(
    events_db_path: Path,
    since_seconds: float | None,
    settings: Settings,
    *,
    index_path: Path | None = None,
    oldest_document_at: float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Figures for the window; `{"empty": True, "queries": 0, …}` when nothing was recorded in it.

    `index_path` defaults to the local LanceDB folder (None for a remote store); `oldest_document_at`
    is the oldest indexed document's time (unix seconds), which only the caller can cheaply know.
    """
    now = time.time() if now is None else now
    index_path = _default_index_path(settings) if index_path is None else index_path
    base: dict[str, Any] = {
        "events_db": str(events_db_path),
        "telemetry_enabled": settings.config.telemetry.enabled,
        "generated_at": now,
        "percentile_method": PERCENTILE_METHOD,
        "index": directory_size(index_path)
        | {"oldest_document_age_hours": _hours_since(oldest_document_at, now)},
    }
    if not events_db_path.is_file():
        return base | _empty(since_seconds, now, settings, "No events have been recorded yet.")
    conn = connect_for_reading(events_db_path)
    try:
        if schema_version(conn) == 0:
            return base | _empty(since_seconds, now, settings, "No events have been recorded yet.")
        return base | _figures(conn, since_seconds, now, settings)
    finally:
        conn.close()


def _empty(since: float | None, now: float, settings: Settings, message: str) -> dict[str, Any]:
    return {
        "empty": True,
        "message": message,
        "window": {"since_seconds": since, "start": None if since is None else now - since, "end": now},
        "queries": 0,
        "qps": {"average": None, "peak": None, "peak_minute_start": None},
        "latency_ms": {stage: percentiles([]) for stage in STAGE_COLUMNS},
        "latency_histogram": None,
        "cache": {"exact_hits": 0, "semantic_hits": 0, "exact_hit_rate": None, "semantic_hit_rate": None,
                  "hit_rate": None},
        "empty_retrieval_rate": None,
        "refusal_rate": None,
        "degraded_rate": None,
        "degraded_by_reason": {},
        "refused_by_reason": {},
        "confidence": {"p50": None, "low_share": None},
        "citations_verified": {"mean": None, "answers_checked": 0},
        "ingest": _ingest_figures({}, None, 0.0, now) | {"last_success_at": None, "last_success_age_hours": None},
        "feedback": {"up": 0, "down": 0, "satisfaction_rate": None},
        "cost": _cost_figures([], 0, settings),
        "cpu": {"seconds_total": 0.0, "seconds_per_query": None, "asks_measured": 0},
    }


def _window_start(conn: sqlite3.Connection, since: float | None, now: float) -> float | None:
    if since is not None:
        return now - since
    row = conn.execute(
        "SELECT MIN(ts) FROM (SELECT MIN(ts) AS ts FROM asks UNION ALL SELECT MIN(ts) FROM ingests "
        "UNION ALL SELECT MIN(ts) FROM feedback)"
    ).fetchone()
    return None if row[0] is None else float(row[0])


def _figures(conn: sqlite3.Connection, since: float | None, now: float, settings: Settings) -> dict[str, Any]:
    start = _window_start(conn, since, now)
    last_success = _last_successful_ingest(conn)
    if start is None:
        return _empty(since, now, settings, "No events have been recorded yet.") | {
            "ingest": _empty_ingest(now, last_success)
        }
    window = (start, now)
    seconds = max(now - start, MIN_WINDOW_SECONDS)
    asks = _ask_counts(conn, window)
    ingests = _ingest_sums(conn, window)
    feedback = _feedback_counts(conn, window)
    queries = asks["queries"]
    if not queries and not ingests.get("runs") and not (feedback["up"] + feedback["down"]):
        return _empty(since, now, settings, "No events were recorded in this window.") | {
            "ingest": _empty_ingest(now, last_success)
        }
    latencies = _latencies(conn, window)
    return {
        "empty": False,
        "message": None,
        "window": {"since_seconds": since, "start": start, "end": now},
        "queries": queries,
        "qps": _qps(conn, window, queries, seconds),
        "latency_ms": {stage: percentiles(values) for stage, values in latencies.items()},
        "latency_histogram": latency_histogram(latencies["total"]),
        "cache": {
            "exact_hits": asks["exact"],
            "semantic_hits": asks["semantic"],
            "exact_hit_rate": ratio(asks["exact"], queries),
            "semantic_hit_rate": ratio(asks["semantic"], queries),
            "hit_rate": ratio(asks["exact"] + asks["semantic"], queries),
        },
        "empty_retrieval_rate": ratio(asks["empty_retrieval"], queries),
        "refusal_rate": ratio(asks["refused"], queries),
        "degraded_rate": ratio(asks["degraded"], queries),
        "degraded_by_reason": _degraded_by_reason(conn, window, queries),
        **_answer_trust(conn, window, queries, settings),
        "ingest": _ingest_figures(ingests, last_success, seconds, now),
        "feedback": feedback | {"satisfaction_rate": ratio(feedback["up"], feedback["up"] + feedback["down"])},
        "cost": _cost_figures(_usage_groups(conn, window), queries, settings, _ingest_embedding(conn, window)),
        "cpu": {
            "seconds_total": asks["cpu_total"],
            "seconds_per_query": ratio(asks["cpu_total"], asks["cpu_measured"]),
            "asks_measured": asks["cpu_measured"],
        },
    }


WINDOW = "ts >= ? AND ts <= ?"


def _ask_counts(conn: sqlite3.Connection, window: tuple[float, float]) -> dict[str, Any]:
    row = conn.execute(
        "SELECT COUNT(*), "  # noqa: S608
        "COALESCE(SUM(cache = 'exact'), 0), COALESCE(SUM(cache = 'semantic'), 0), "
        "COALESCE(SUM(retrieved = 0), 0), COALESCE(SUM(refused), 0), COALESCE(SUM(degraded), 0), "
        "COALESCE(SUM(cpu_s), 0.0), COUNT(cpu_s) "
        f"FROM asks WHERE {WINDOW}",
        window,
    ).fetchone()
    keys = ("queries", "exact", "semantic", "empty_retrieval", "refused", "degraded", "cpu_total", "cpu_measured")
    return dict(zip(keys, row, strict=True))


def _qps(conn: sqlite3.Connection, window: tuple[float, float], queries: int, seconds: float) -> dict[str, Any]:
    row = conn.execute(
        f"SELECT CAST(ts / 60 AS INTEGER) AS minute, COUNT(*) AS n FROM asks WHERE {WINDOW} "  # noqa: S608
        "GROUP BY minute ORDER BY n DESC, minute LIMIT 1",
        window,
    ).fetchone()
    if row is None:
        return {"average": ratio(queries, seconds), "peak": None, "peak_minute_start": None}
    return {"average": queries / seconds, "peak": row[1] / 60, "peak_minute_start": float(row[0] * 60)}


def _latencies(conn: sqlite3.Connection, window: tuple[float, float]) -> dict[str, list[float]]:
    columns = ", ".join(f"ms_{stage}" for stage in STAGE_COLUMNS)
    rows = conn.execute(f"SELECT {columns} FROM asks WHERE {WINDOW}", window).fetchall()  # noqa: S608
    out: dict[str, list[float]] = {stage: [] for stage in STAGE_COLUMNS}
    for row in rows:
        for stage, value in zip(STAGE_COLUMNS, row, strict=True):
            if stage == "total" or value > 0:
                out[stage].append(float(value))
    return out


def _degraded_by_reason(conn: sqlite3.Connection, window: tuple[float, float], queries: int) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    rows = conn.execute(
        f"SELECT degraded_reason FROM asks WHERE {WINDOW} AND degraded = 1", window  # noqa: S608
    ).fetchall()
    for (reason,) in rows:
        kinds = set(reason_kinds(reason)) or {"unknown"}
        counts.update(kinds)
    return {kind: {"count": n, "rate": ratio(n, queries)} for kind, n in sorted(counts.items())}


def _answer_trust(
    conn: sqlite3.Connection, window: tuple[float, float], queries: int, settings: Settings
) -> dict[str, Any]:
    """Refusals by reason, the gate's confidence and the share of LLM answer sentences their citation
    supports. A log written before these were recorded (schema < 3) has none: the figures are empty."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(asks)")}
    if "confidence" not in columns:
        return {
            "refused_by_reason": {},
            "confidence": {"p50": None, "low_share": None},
            "citations_verified": {"mean": None, "answers_checked": 0},
        }
    reasons = conn.execute(
        f"SELECT COALESCE(refused_reason, 'unknown'), COUNT(*) FROM asks WHERE {WINDOW} AND refused = 1 "  # noqa: S608
        "GROUP BY 1 ORDER BY 1",
        window,
    ).fetchall()
    confidences = [
        float(v) for (v,) in conn.execute(
            f"SELECT confidence FROM asks WHERE {WINDOW} AND confidence IS NOT NULL", window  # noqa: S608
        )
    ]
    floor = settings.config.answer.min_confidence
    verified = conn.execute(
        f"SELECT AVG(citations_verified), COUNT(citations_verified) FROM asks WHERE {WINDOW}", window  # noqa: S608
    ).fetchone()
    return {
        "refused_by_reason": {r: {"count": n, "rate": ratio(n, queries)} for r, n in reasons},
        "confidence": {
            "p50": percentiles(confidences)["p50"],
            # Answers that only just passed the gate: a rising share means questions drift off the corpus.
            "low_share": ratio(sum(floor <= c < 2 * floor for c in confidences), len(confidences)),
        },
        "citations_verified": {"mean": verified[0], "answers_checked": int(verified[1])},
    }


def _ingest_sums(conn: sqlite3.Connection, window: tuple[float, float]) -> dict[str, Any]:
    names = ("added", "updated", "removed", "failed", "scanned", "chunks_embedded", "chunks_reused",
             "embed_errors", "embed_retries", "embed_tokens", "duration_s")
    sums = ", ".join(f"COALESCE(SUM({n}), 0)" for n in names)
    row = conn.execute(f"SELECT COUNT(*), {sums} FROM ingests WHERE {WINDOW}", window).fetchone()  # noqa: S608
    return dict(zip(("runs", *names), row, strict=True))


def _last_successful_ingest(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MAX(ts) FROM ingests WHERE failed = 0 OR added + updated > 0").fetchone()
    return None if row[0] is None else float(row[0])


def _empty_ingest(now: float, last_success: float | None) -> dict[str, Any]:
    return _ingest_figures({}, last_success, 0.0, now)


def _ingest_figures(sums: dict[str, Any], last_success: float | None, seconds: float, now: float) -> dict[str, Any]:
    added, updated, failed = sums.get("added", 0), sums.get("updated", 0), sums.get("failed", 0)
    indexed = added + updated
    embed_errors = sums.get("embed_errors", 0)
    return {
        "runs": sums.get("runs", 0),
        "documents_scanned": sums.get("scanned", 0),
        "documents_ingested": indexed,
        "documents_added": added,
        "documents_updated": updated,
        "documents_removed": sums.get("removed", 0),
        "documents_failed": failed,
        "documents_per_hour": ratio(indexed, seconds / 3600) if seconds else None,
        "failed_rate": ratio(failed, indexed + failed),
        "embedding_errors": embed_errors,
        "embedding_retries": sums.get("embed_retries", 0),
        "embedding_error_rate": ratio(embed_errors, indexed + embed_errors),
        "avg_chunks_per_document": ratio(sums.get("chunks_embedded", 0) + sums.get("chunks_reused", 0), indexed),
        "chunks_embedded": sums.get("chunks_embedded", 0),
        "chunks_reused": sums.get("chunks_reused", 0),
        "embed_tokens": sums.get("embed_tokens", 0),
        "seconds": sums.get("duration_s", 0.0),
        "last_success_at": last_success,
        "last_success_age_hours": _hours_since(last_success, now),
    }


def _feedback_counts(conn: sqlite3.Connection, window: tuple[float, float]) -> dict[str, int]:
    rows = conn.execute(
        f"SELECT rating, COUNT(*) FROM feedback WHERE {WINDOW} GROUP BY rating", window  # noqa: S608
    ).fetchall()
    counts = dict(rows)
    return {"up": int(counts.get("up", 0)), "down": int(counts.get("down", 0))}


# ----- cost ------------------------------------------------------------------------------------------
def _usage_groups(conn: sqlite3.Connection, window: tuple[float, float]) -> list[dict[str, Any]]:
    # Prices are linear, so summing counts per (models, hit or miss) group prices every ask exactly.
    rows = conn.execute(
        "SELECT embed_model, rerank_model, generator_model, cache IS NOT NULL AS hit, COUNT(*), "  # noqa: S608
        "SUM(tok_query), SUM(rerank_searches), SUM(tok_prompt), SUM(tok_completion), "
        "SUM(MAX(tok_context_in - tok_context_out, 0)) "
        f"FROM asks WHERE {WINDOW} GROUP BY 1, 2, 3, 4",
        window,
    ).fetchall()
    keys = ("embed_model", "rerank_model", "generator_model", "hit", "asks", "query_tokens",
            "rerank_searches", "prompt", "completion", "compressed_away")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _ingest_embedding(conn: sqlite3.Connection, window: tuple[float, float]) -> list[tuple[str | None, int]]:
    rows = conn.execute(
        f"SELECT embed_model, SUM(embed_tokens) FROM ingests WHERE {WINDOW} GROUP BY 1", window  # noqa: S608
    ).fetchall()
    return [(model, int(tokens or 0)) for model, tokens in rows]


def _cost_figures(
    groups: list[dict[str, Any]],
    queries: int,
    settings: Settings,
    ingest_embedding: Sequence[tuple[str | None, int]] = (),
) -> dict[str, Any]:
    prices = settings.config.cost.prices
    ingest_cost = sum(
        usage_cost(prices, Usage(embed_tokens=tokens), embed_model=model, rerank_model=None,
                   generator_model=None).embed
        for model, tokens in ingest_embedding
    )
    total = miss_cost = hit_cost = StageCost()
    misses = hits = miss_tokens = compressed_tokens = 0
    compression_saved = 0.0
    models: set[str] = set()
    for g in groups:
        cost = usage_cost(
            prices,
            Usage(g["query_tokens"], g["rerank_searches"], g["prompt"], g["completion"]),
            embed_model=g["embed_model"],
            rerank_model=g["rerank_model"],
            generator_model=g["generator_model"],
        )
        total += cost
        models.update(m for m in (g["embed_model"], g["rerank_model"], g["generator_model"]) if m)
        if g["hit"]:
            hits += g["asks"]
            hit_cost += cost
        else:
            misses += g["asks"]
            miss_cost += cost
            miss_tokens += g["prompt"] + g["completion"]
            compressed_tokens += g["compressed_away"]
            compression_saved += input_token_cost(prices, g["generator_model"], g["compressed_away"])
    per_query = total.scaled(1 / queries) if queries else None
    mean_miss = miss_cost.total / misses if misses else 0.0
    cache_saved = max(0.0, hits * mean_miss - hit_cost.total) if misses else None
    return {
        "currency": settings.config.cost.currency,
        "window": total.as_dict(),
        "per_query": per_query.as_dict() if per_query else None,
        "per_1000_queries": per_query.scaled(1000).as_dict() if per_query else None,
        # Embedding documents at ingest is paid once per corpus change, not per question: kept apart.
        "ingest_embed": ingest_cost,
        "priced_models": sorted(m for m in models if m in prices),
        "local_models": sorted(m for m in models if m not in prices),
        "savings": {
            "cache": {
                "hits": hits,
                "cost": cache_saved,
                "tokens": round(hits * miss_tokens / misses) if misses else None,
            },
            "compression": {"tokens": compressed_tokens, "cost": compression_saved},
        },
    }


# ----- the health check ------------------------------------------------------------------------------
def check_thresholds(stats: dict[str, Any], thresholds: ThresholdsConfig) -> list[str]:
    """One line per breached threshold; empty when all is well. A figure with no data breaches nothing,
    except staleness: an index with no successful ingest on record is not healthy."""
    breaches: list[str] = []
    p95 = stats["latency_ms"]["total"]["p95"]
    if p95 is not None and p95 > thresholds.p95_latency_ms:
        breaches.append(f"p95 ask latency is {p95:.0f} ms, above the limit of {thresholds.p95_latency_ms:.0f} ms")
    failed_rate = stats["ingest"]["failed_rate"]
    if failed_rate is not None and failed_rate > thresholds.max_ingest_failure_rate:
        breaches.append(
            f"ingest failure rate is {failed_rate:.2%}, above the limit of {thresholds.max_ingest_failure_rate:.2%}"
        )
    age = stats["ingest"]["last_success_age_hours"]
    if age is None:
        breaches.append("no successful ingest is on record")
    elif age > thresholds.max_staleness_hours:
        breaches.append(
            f"the last successful ingest was {age:.1f} hours ago, more than {thresholds.max_staleness_hours:g} hours"
        )
    hit_rate = stats["cache"]["hit_rate"]
    if hit_rate is not None and hit_rate < thresholds.min_cache_hit_rate:
        breaches.append(
            f"cache hit rate is {hit_rate:.2%}, below the minimum of {thresholds.min_cache_hit_rate:.2%}"
        )
    return breaches
