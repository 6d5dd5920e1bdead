"""`ragcli stats --report FILE`: the stats as Markdown, with the latency histogram as a PNG beside it."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from ragcli.telemetry.events import STAGE_COLUMNS

logger = logging.getLogger(__name__)


def write_report(stats: dict[str, Any], path: Path) -> Path | None:
    """Write the Markdown report to `path` and the histogram to `path` with .png; returns the PNG path
    (None when there were no asks to draw). The folder must exist: a mistyped one is reported, not created."""
    from ragcli.errors import UsageError

    if not path.parent.is_dir():
        raise UsageError(
            f"Cannot write the report to {path}: the folder {path.parent} does not exist.",
            hint=f"Create it (mkdir -p {path.parent}) or name a file in an existing folder.",
        )
    image = _write_histogram(stats, path.with_suffix(".png"))
    path.write_text(render_markdown(stats, image.name if image else None), encoding="utf-8")
    return image


def _write_histogram(stats: dict[str, Any], image: Path) -> Path | None:
    hist = stats.get("latency_histogram")
    if not hist:
        return None
    from ragcli.telemetry.png import P50, P95, histogram_png

    total = stats["latency_ms"]["total"]
    title = f"TOTAL ASK LATENCY, {stats['queries']} ASKS"
    if hist.get("clipped_above_ms") is not None:
        title += f" (LAST BAR ALSO HOLDS ALL > {hist['clipped_above_ms']:.0f} MS)"
    histogram_png(
        image,
        hist["edges_ms"],
        hist["counts"],
        title=title,
        markers=[("P50", total["p50"], P50), ("P95", total["p95"], P95)],
    )
    return image


# ----- Markdown ----------------------------------------------------------------------------------------
def render_markdown(stats: dict[str, Any], image_name: str | None, *, terminal: bool = False) -> str:
    """The report as Markdown; `terminal` leaves out the image (`ragcli stats` renders it with Rich)."""
    lines: list[str] = ["# ragcli stats" if terminal else "# ragcli report", ""]
    lines += _summary(stats)
    if stats.get("empty"):
        lines += ["", f"**{stats.get('message') or 'No events were recorded in this window.'}**", ""]
    lines += _latency(stats, image_name, terminal=terminal)
    lines += _quality(stats)
    lines += _ingest(stats)
    lines += _cost(stats)
    return "\n".join(lines).rstrip() + "\n"


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _money(value: float | None, currency: str) -> str:
    return "—" if value is None else f"{value:,.6f} {currency}"


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} h"


def _summary(stats: dict[str, Any]) -> list[str]:
    window = stats["window"]
    since = window.get("since_seconds")
    span = "all events on record" if since is None else f"the last {_hours(since / 3600)}"
    qps = stats["qps"]
    return [
        f"Window: {span} ({_when(window.get('start'))} to {_when(window.get('end'))}).",
        f"Event log: `{stats.get('events_db')}`."
        + ("" if stats.get("telemetry_enabled", True) else " Telemetry is disabled: nothing new is recorded."),
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Questions | {stats['queries']:,} |",
        f"| Queries per second, average | {_num(qps['average'], 4)} |",
        f"| Queries per second, peak minute | {_num(qps['peak'], 4)} (minute from {_when(qps['peak_minute_start'])}) |",
        f"| Cache hit rate (exact / semantic / total) | {_pct(stats['cache']['exact_hit_rate'])} / "
        f"{_pct(stats['cache']['semantic_hit_rate'])} / {_pct(stats['cache']['hit_rate'])} |",
        f"| Feedback satisfaction (up / (up + down)) | {_pct(stats['feedback']['satisfaction_rate'])} "
        f"({stats['feedback']['up']} up, {stats['feedback']['down']} down) |",
        "",
    ]


def _latency(stats: dict[str, Any], image_name: str | None, *, terminal: bool = False) -> list[str]:
    lines = [
        "## Latency",
        "",
        f"Milliseconds; percentiles by numpy, method '{stats.get('percentile_method', 'linear')}' (linear "
        "interpolation between closest ranks). A stage counts only the asks in which it ran.",
        "",
        "| Stage | Asks | p50 | p95 | p99 | Mean | Max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stage in STAGE_COLUMNS:
        p = stats["latency_ms"][stage]
        lines.append(
            f"| {stage} | {p['n']:,} | {_num(p['p50'])} | {_num(p['p95'])} | {_num(p['p99'])} | "
            f"{_num(p['mean'])} | {_num(p['max'])} |"
        )
    lines.append("")
    if terminal:
        return lines
    if image_name:
        lines += [f"![Histogram of total ask latency]({image_name})", ""]
    else:
        lines += ["No latency histogram: no questions were asked in this window.", ""]
    return lines


def _quality(stats: dict[str, Any]) -> list[str]:
    lines = [
        "## Answers",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Empty retrieval (nothing found) | {_pct(stats['empty_retrieval_rate'])} |",
        f"| Refusals | {_pct(stats['refusal_rate'])} |",
        f"| Degraded answers | {_pct(stats['degraded_rate'])} |",
    ]
    for kind, entry in stats["degraded_by_reason"].items():
        lines.append(f"| — degraded by {kind} | {_pct(entry['rate'])} ({entry['count']}) |")
    for reason, entry in stats.get("refused_by_reason", {}).items():
        lines.append(f"| — refused: {reason} | {_pct(entry['rate'])} ({entry['count']}) |")
    confidence = stats.get("confidence") or {}
    if confidence.get("p50") is not None:
        lines.append(f"| Answer confidence, median | {confidence['p50']:.2f} |")
    verified = stats.get("citations_verified") or {}
    if verified.get("answers_checked"):
        lines.append(
            f"| Cited sentences supported by their source | {_pct(verified['mean'])} "
            f"({verified['answers_checked']} answers) |"
        )
    return [*lines, ""]


def _ingest(stats: dict[str, Any]) -> list[str]:
    ing, index = stats["ingest"], stats["index"]
    size = "—" if index.get("bytes") is None else f"{index['bytes'] / 1e6:,.1f} MB in {index['files']:,} files"
    return [
        "## Ingestion and index",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Ingest runs | {ing['runs']:,} |",
        f"| Documents ingested (added + updated) | {ing['documents_ingested']:,} "
        f"({ing['documents_added']:,} added, {ing['documents_updated']:,} updated, "
        f"{ing['documents_removed']:,} removed) |",
        f"| Documents ingested per hour | {_num(ing['documents_per_hour'])} |",
        f"| Failed-ingestion rate | {_pct(ing['failed_rate'])} ({ing['documents_failed']:,} failed) |",
        f"| Embedding error rate | {_pct(ing['embedding_error_rate'])} ({ing['embedding_errors']:,} errors, "
        f"{ing['embedding_retries']:,} retries) |",
        f"| Average chunks per document | {_num(ing['avg_chunks_per_document'])} |",
        f"| Chunks embedded / reused | {ing['chunks_embedded']:,} / {ing['chunks_reused']:,} "
        f"({ing['embed_tokens']:,} tokens embedded) |",
        f"| Last successful ingest | {_when(ing['last_success_at'])} ({_hours(ing['last_success_age_hours'])} ago) |",
        f"| Index size | {size} (`{index.get('path')}`) |",
        f"| Oldest document | {_hours(index.get('oldest_document_age_hours'))} old |",
        "",
    ]


def _cost(stats: dict[str, Any]) -> list[str]:
    cost, cpu = stats["cost"], stats["cpu"]
    cur = cost["currency"]
    lines = [
        "## Cost",
        "",
        "Priced per model from `[cost.prices]`; models not listed run locally and cost 0 "
        f"(local: {', '.join(cost['local_models']) or 'none'}; priced: {', '.join(cost['priced_models']) or 'none'}).",
        "",
        "| Stage | Window | Per question | Per 1,000 questions |",
        "| --- | ---: | ---: | ---: |",
    ]
    per_q, per_k = cost["per_query"] or {}, cost["per_1000_queries"] or {}
    for stage in ("embed", "rerank", "generate", "total"):
        lines.append(
            f"| {stage} | {_money(cost['window'][stage], cur)} | {_money(per_q.get(stage), cur)} | "
            f"{_money(per_k.get(stage), cur)} |"
        )
    cache, compression = cost["savings"]["cache"], cost["savings"]["compression"]
    lines += [
        "",
        f"Embedding documents at ingest in this window: {_money(cost.get('ingest_embed'), cur)}.",
        "",
        f"CPU time: {_num(cpu['seconds_total'], 2)} s in all, {_num(cpu['seconds_per_query'], 3)} s per question "
        f"({cpu['asks_measured']:,} measured).",
        "",
        "### Savings",
        "",
        f"- Cache: {cache['hits']:,} answers served from the cache saved about {_money(cache['cost'], cur)} and "
        f"{'—' if cache['tokens'] is None else format(cache['tokens'], ',')} generator tokens "
        "(hits × the mean cost of a miss, less what the hits cost).",
        f"- Compression: {compression['tokens']:,} context tokens not sent to the generator, about "
        f"{_money(compression['cost'], cur)} at its input price.",
        "",
    ]
    return lines
