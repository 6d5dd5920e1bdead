"""`ragcli stats` and `ragcli feedback`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.app.console import print_json, stderr, stdout
from ragcli.config import Settings
from ragcli.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from ragcli.telemetry.facade import Telemetry

logger = logging.getLogger("ragcli")


def run_stats(
    settings: Settings, *, since: str | None, json_output: bool, report: Path | None, check: bool
) -> int:
    from ragcli.errors import EXIT_THRESHOLD
    from ragcli.retrieval.filters import parse_since
    from ragcli.telemetry.facade import Telemetry
    from ragcli.telemetry.stats import check_thresholds

    since_seconds = None
    if since:
        since_seconds = time.time() - parse_since(since)
    with Telemetry(settings) as telemetry:
        stats = collect_stats(settings, telemetry, since_seconds)
    breaches = check_thresholds(stats, settings.config.thresholds) if check else []
    png = None
    if report is not None:
        from ragcli.telemetry.report import write_report

        png = write_report(stats, report)
    if json_output:
        print_json(stats | ({"breaches": breaches} if check else {}))
    elif stats.get("empty"):
        stdout.print(stats.get("message", "Nothing recorded yet."), markup=False)
    else:
        _print_stats(stats)
    if report is not None and not json_output:
        stdout.print(f"Report written to {report}" + (f" (histogram {png})" if png else ""), markup=False)
    for breach in breaches:
        stderr.print(f"[red]Threshold breached:[/red] {breach}", highlight=False)
    return EXIT_THRESHOLD if breaches else EXIT_OK


def collect_stats(settings: Settings, telemetry: Telemetry, since_seconds: float | None) -> dict[str, Any]:
    """The `stats --json` object; `ragcli serve` answers GET /v1/stats with it too."""
    uri = settings.store_uri
    index_path = Path(uri) if "://" not in uri else None
    return telemetry.stats(
        since_seconds, index_path=index_path, oldest_document_at=_oldest_document_mtime(settings)
    )


def _oldest_document_mtime(settings: Settings) -> float | None:
    """The staleness figure needs the index; an unreadable one leaves the figure empty, not an error."""
    from ragcli.store import get_store

    try:
        store = get_store(settings)
        if not store.exists():
            return None
        mtimes = [m for m in store.all_rows(["mtime"])["mtime"] if m is not None]
    except Exception as exc:
        logger.warning("Could not read document times from the index: %s", exc)
        return None
    return min(mtimes) if mtimes else None


def _print_stats(stats: dict[str, Any]) -> None:
    # The report's own Markdown, drawn by Rich: one layout for the terminal and the file (--json for scripts).
    from rich.markdown import Markdown

    from ragcli.telemetry.report import render_markdown

    stdout.print(Markdown(render_markdown(stats, None, terminal=True)))


def run_feedback(
    settings: Settings, request_id: str, rating: str, note: str | None, *, json_output: bool
) -> int:
    from ragcli.telemetry.facade import Telemetry

    if rating not in ("up", "down"):
        raise UsageError(f"Rating must be up or down, not {rating!r}.")
    with Telemetry(settings) as telemetry:
        telemetry.feedback(request_id, rating, note)
    if json_output:
        print_json({"request_id": request_id, "rating": rating})
    else:
        stdout.print(f"Recorded {rating} for {request_id}.", markup=False)
    return EXIT_OK
