"""Retrieval evaluation: run each judged query through a retrieve function, score the rankings.

The scores come from ir-measures (trec_eval through pytrec-eval-terrier, and ir-measures' own MS MARCO
code for MRR@10), so the numbers are the ones papers and the BEIR leaderboard report:

    ndcg@10     graded gains (the qrels score), log2 discount, ideal ranking from the qrels
    recall@N    share of the query's relevant documents (score >= 1) in the top N
    mrr@10      1 / rank of the first relevant document in the top 10, else 0

Each is averaged over the evaluated queries: those with at least one relevant document in the qrels and
a text in the queries (as BEIR does). A query whose retrieve call returns nothing scores 0 everywhere.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ragcli.errors import UsageError

logger = logging.getLogger(__name__)

RetrieveFn = Callable[[str, int], Sequence[str]]
"""(query text, k) -> corpus ids, best first. Duplicates are fine (several chunks of one document)."""
ProgressFn = Callable[[int, int], None]
"""(queries done, queries in all), called after each query."""

METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
LATENCY_KEYS: tuple[str, ...] = ("p50_ms", "p95_ms", "mean_ms", "max_ms")
DEEPEST_CUTOFF = 100


def evaluate_retrieval(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    retrieve: RetrieveFn,
    k: int = 100,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Scores and latency of `retrieve` over the judged queries.

    Keys: ndcg@10, recall@10, recall@100, mrr@10 (means over queries), queries (how many were run),
    p50_ms, p95_ms, mean_ms, max_ms (per retrieve call), k, queries_missing_text and
    queries_without_relevant (judged queries left out, with why), and per_query {query id: {metric:
    value, "ms": latency, "retrieved": distinct ids kept}}.
    """
    if k < 1:
        raise UsageError(f"k must be at least 1, not {k}.")
    if k < DEEPEST_CUTOFF:
        logger.warning(
            "k=%d is below %d: recall@%d only sees the top %d", k, DEEPEST_CUTOFF, DEEPEST_CUTOFF, k
        )
    query_ids, missing_text, without_relevant = _evaluable_queries(queries, qrels)
    rankings: dict[str, list[str]] = {}
    latencies_ms: dict[str, float] = {}
    for done, query_id in enumerate(query_ids, start=1):
        started = time.perf_counter()
        ranked = retrieve(queries[query_id], k)
        latencies_ms[query_id] = (time.perf_counter() - started) * 1000.0
        rankings[query_id] = dedupe_ranked(ranked)[:k]
        if progress is not None:
            progress(done, len(query_ids))
    per_query = score_rankings({qid: qrels[qid] for qid in query_ids}, rankings)
    result: dict[str, Any] = {
        metric: statistics.fmean(per_query[qid][metric] for qid in query_ids) for metric in METRICS
    }
    result["queries"] = len(query_ids)
    result.update(latency_summary(latencies_ms.values()))
    result["k"] = k
    result["queries_missing_text"] = len(missing_text)
    result["queries_without_relevant"] = len(without_relevant)
    result["per_query"] = {
        qid: {**per_query[qid], "ms": latencies_ms[qid], "retrieved": len(rankings[qid])} for qid in query_ids
    }
    return result


def dedupe_ranked(ids: Iterable[str]) -> list[str]:
    """Each id once, at its best (first) rank."""
    return list(dict.fromkeys(ids))


def score_rankings(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """{query id: {metric: value}} for every query in `qrels`; rankings are distinct ids, best first."""
    import ir_measures
    from ir_measures import RR, R, nDCG

    names = {
        str(nDCG @ 10): "ndcg@10",
        str(R @ 10): "recall@10",
        str(R @ 100): "recall@100",
        str(RR @ 10): "mrr@10",
    }
    measures = [nDCG @ 10, R @ 10, R @ 100, RR @ 10]
    # trec_eval orders by score and breaks ties by document id, so every rank gets its own score.
    run = {
        qid: {doc_id: float(len(ranked) - rank) for rank, doc_id in enumerate(ranked)}
        for qid, ranked in rankings.items()
        if ranked
    }
    judged = {qid: {doc_id: int(score) for doc_id, score in docs.items()} for qid, docs in qrels.items()}
    # trec_eval leaves out queries with an empty ranking; they count as 0, not as absent.
    scores = {qid: dict.fromkeys(METRICS, 0.0) for qid in judged}
    if run:
        for metric in ir_measures.iter_calc(measures, judged, run):
            scores[metric.query_id][names[str(metric.measure)]] = float(metric.value)
    return scores


def latency_summary(latencies_ms: Iterable[float]) -> dict[str, float]:
    """p50/p95 by linear interpolation between closest ranks (numpy's default), plus mean and max."""
    values = sorted(latencies_ms)
    if not values:
        return dict.fromkeys(LATENCY_KEYS, 0.0)
    if len(values) == 1:
        return dict.fromkeys(LATENCY_KEYS, values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": cuts[49], "p95_ms": cuts[94], "mean_ms": statistics.fmean(values), "max_ms": values[-1]}


def compare(
    results_by_variant: Mapping[str, Mapping[str, Any]], baseline: str | None = None
) -> list[dict[str, Any]]:
    """Rows for a side-by-side table, one per variant, in the given order.

    Works on any result dicts from this package (retrieval, QA, golden). Each row holds "variant", every
    numeric column of the results (None where a variant lacks it), and for float columns (metrics and
    latencies, not counts) "<column>_delta" against the baseline (the first variant unless named). When
    the results carry per_query scores, "ndcg@10_wins"/"ndcg@10_losses" count the queries the variant
    does better/worse on than the baseline.
    """
    if not results_by_variant:
        return []
    base_name = baseline if baseline is not None else next(iter(results_by_variant))
    if base_name not in results_by_variant:
        raise UsageError(
            f"There is no variant named {base_name!r} to compare against.",
            hint=f"Variants: {', '.join(results_by_variant)}.",
        )
    base = results_by_variant[base_name]
    columns = _numeric_columns(results_by_variant.values())
    rows = []
    for name, result in results_by_variant.items():
        row: dict[str, Any] = {"variant": name, "baseline": name == base_name}
        for column in columns:
            row[column] = result.get(column)
        for column in columns:
            value, reference = result.get(column), base.get(column)
            if isinstance(value, float) and isinstance(reference, float):
                row[f"{column}_delta"] = value - reference
        row.update(_wins_and_losses(result, base, "ndcg@10"))
        rows.append(row)
    return rows


def _evaluable_queries(
    queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]
) -> tuple[list[str], list[str], list[str]]:
    """(query ids to run, judged ids without a query text, judged ids without a relevant document)."""
    without_relevant = [qid for qid, docs in qrels.items() if not any(score > 0 for score in docs.values())]
    judged = [qid for qid, docs in qrels.items() if any(score > 0 for score in docs.values())]
    missing_text = [qid for qid in judged if qid not in queries]
    runnable = [qid for qid in judged if qid in queries]
    if missing_text:
        logger.warning(
            "%d judged queries have no text in the queries file and are left out (e.g. %s)",
            len(missing_text),
            ", ".join(missing_text[:3]),
        )
    if not runnable:
        raise UsageError(
            "No query has both a text and a relevant document in the qrels.",
            hint="Check that queries.jsonl and the qrels split belong to the same data set.",
        )
    return runnable, missing_text, without_relevant


def _numeric_columns(results: Iterable[Mapping[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for result in results:
        for key, value in result.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                columns.setdefault(key)
    return list(columns)


def _wins_and_losses(result: Mapping[str, Any], base: Mapping[str, Any], metric: str) -> dict[str, int]:
    ours, theirs = result.get("per_query"), base.get("per_query")
    if not isinstance(ours, Mapping) or not isinstance(theirs, Mapping):
        return {}
    shared = [qid for qid in ours if qid in theirs and metric in ours[qid] and metric in theirs[qid]]
    if not shared:
        return {}
    return {
        f"{metric}_wins": sum(ours[qid][metric] > theirs[qid][metric] for qid in shared),
        f"{metric}_losses": sum(ours[qid][metric] < theirs[qid][metric] for qid in shared),
    }


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 14


def paired_bootstrap(
    variant: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, Mapping[str, float]],
    metric: str = "ndcg@10",
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> dict[str, float]:
    """The mean per-query difference (variant - baseline) on `metric`, with a percentile bootstrap interval.

    Paired: each resample draws query ids with replacement and takes both systems' scores on the same
    queries, so the interval reflects how the two differ per query, not how hard the queries are. The
    seed is fixed so a report can be reproduced. Keys: delta, low, high (the interval), p (two-sided: twice
    the share of resampled means on the far side of 0, at most 1), queries.
    """
    import numpy as np

    shared = [qid for qid in baseline if qid in variant]
    if not shared:
        raise UsageError("The two runs share no query; a paired comparison needs the same queries.")
    diffs = np.array([variant[qid][metric] - baseline[qid][metric] for qid in shared], dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(diffs), size=(resamples, len(diffs)))
    means = diffs[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    below, above = float(np.mean(means <= 0.0)), float(np.mean(means >= 0.0))
    return {
        "delta": float(diffs.mean()),
        "low": float(low),
        "high": float(high),
        "p": min(1.0, 2.0 * min(below, above)),
        "queries": len(shared),
    }


def confidence_rows(
    results_by_variant: Mapping[str, Mapping[str, Any]],
    baseline: str | None = None,
    metrics: Sequence[str] = ("ndcg@10", "recall@100"),
) -> dict[str, dict[str, dict[str, float]]]:
    """{variant: {metric: paired_bootstrap(...)}} against the baseline (the first variant unless named);
    every result needs its per_query scores."""
    if not results_by_variant:
        return {}
    base_name = baseline if baseline is not None else next(iter(results_by_variant))
    base = results_by_variant[base_name]["per_query"]
    return {
        name: {metric: paired_bootstrap(result["per_query"], base, metric) for metric in metrics}
        for name, result in results_by_variant.items()
        if name != base_name
    }


def significant(interval: Mapping[str, float]) -> bool:
    """True when the 95% interval of the difference leaves out 0."""
    return interval["low"] > 0.0 or interval["high"] < 0.0


def write_details(path: str | Path, results_by_variant: Mapping[str, Mapping[str, Any]]) -> int:
    """One JSON line per (variant, query): its metrics, latency and how many ids it returned. Returns the
    number of lines written."""
    import json

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with target.open("w", encoding="utf-8") as handle:
        for name, result in results_by_variant.items():
            for qid, scores in result.get("per_query", {}).items():
                handle.write(json.dumps({"variant": name, "query_id": qid, **scores}, sort_keys=True) + "\n")
                lines += 1
    return lines
