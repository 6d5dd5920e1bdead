"""`ragcli history` and `ragcli history show ID`: past questions from the event log.

Reading never creates state: without an event log the history is simply empty.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ragcli.app.console import print_json, print_table, since_timestamp, stderr, stdout
from ragcli.config import Settings
from ragcli.errors import EXIT_OK, UsageError

SUMMARY_CHARS = 100


def run_history(
    settings: Settings,
    *,
    limit: int,
    refused: bool,
    degraded: bool,
    since: str | None,
    json_output: bool,
) -> int:
    from ragcli.telemetry.events import HistoryFilter, read_history
    from ragcli.telemetry.facade import events_path

    query = HistoryFilter(
        limit=limit,
        refused=refused,
        degraded=degraded,
        since=since_timestamp(since, "--since") if since else None,
    )
    rows = read_history(events_path(settings), query)
    if json_output:
        print_json(rows)
        return EXIT_OK
    if not settings.config.telemetry.enabled:
        stderr.print("Telemetry is disabled (telemetry.enabled = false): new questions are not recorded.")
    if not rows:
        filtered = refused or degraded or since
        stdout.print("No questions match." if filtered else "No questions recorded yet.", markup=False)
        return EXIT_OK
    print_table(
        ["when", "request id", "question", "answer", "cache", "ms", "feedback"],
        [
            [
                _when(row["ts"]),
                row["request_id"],
                _summary(row["question"], "(not stored)"),
                _answer_summary(row),
                row["cache"] or "miss",
                f"{row['latency_ms']:.0f}",
                row["feedback"] or "",
            ]
            for row in rows
        ],
    )
    return EXIT_OK


def run_history_show(settings: Settings, request_id: str, *, json_output: bool) -> int:
    from ragcli.telemetry.events import find_ask
    from ragcli.telemetry.facade import events_path

    matches = find_ask(events_path(settings), request_id)
    if not matches:
        raise UsageError(
            f"No answer with request id {request_id!r} is in the event log.",
            hint="`ragcli history` lists recent request ids (answers older than telemetry.retention_days are gone).",
        )
    if len(matches) > 1:
        ids = ", ".join(m["request_id"] for m in matches[:5])
        raise UsageError(
            f"{request_id!r} is the start of {len(matches)} request ids: {ids}.",
            hint="Give more of the request id.",
        )
    row = matches[0]
    if json_output:
        print_json(row)
        return EXIT_OK
    stdout.print(f"Question: {row['question'] or '(not stored: telemetry.store_question_text = false)'}", markup=False)
    stdout.print()
    stdout.print(row["answer"] or "(answer not stored)", markup=False, highlight=False)
    if row["sources"]:
        stdout.print()
        stdout.print("Sources", style="bold")
        for source in row["sources"]:
            stdout.print(_source_line(source), markup=False)
    stdout.print()
    details = [
        ("request id", row["request_id"]),
        ("when", _when(row["ts"])),
        ("cache", row["cache"] or "miss"),
        ("mode", row["mode"] or ""),
        ("provider", row["provider"] or ""),
        ("latency ms", f"{row['latency_ms']:.1f}"),
        ("passages retrieved", row["retrieved"]),
        ("top score", "" if row["top_score"] is None else f"{row['top_score']:.3f}"),
        ("refused", f"yes ({row['refused_reason'] or 'unknown'})" if row["refused"] else "no"),
        ("confidence", "" if row["confidence"] is None else f"{row['confidence']:.2f}"),
        ("citations verified", "" if row["citations_verified"] is None else f"{row['citations_verified']:.0%}"),
        ("degraded", row["degraded_reason"] if row["degraded"] else "no"),
        ("feedback", (row["feedback"] or "none") + (f" ({row['feedback_note']})" if row["feedback_note"] else "")),
    ]
    print_table(["field", "value"], details, header=False)
    return EXIT_OK


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M")


def _summary(text: str | None, missing: str) -> str:
    if not text:
        return missing
    flat = " ".join(text.split())
    return flat if len(flat) <= SUMMARY_CHARS else flat[: SUMMARY_CHARS - 1] + "…"


def _answer_summary(row: dict[str, Any]) -> str:
    prefix = "refused: " if row["refused"] else ("degraded: " if row["degraded"] else "")
    return prefix + _summary(row["answer"], "(not stored)")


def _source_line(source: dict[str, Any]) -> str:
    from ragcli.app.console import cite

    mark = "" if source.get("cited", True) else "  (not cited)"
    return f"[{source.get('n', '?')}] {cite(source)}{mark}"
