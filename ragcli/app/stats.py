"""`ragcli stats` and `ragcli feedback`.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.app.console import print_json, since_timestamp, stderr, stdout
from ragcli.config import Settings
from ragcli.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from ragcli.telemetry.facade import Telemetry

logger = logging.getLogger("ragcli")


def run_stats(
    settings: Settings,
    *,
    since: str | None,
    json_output: bool,
    report: Path | None,
    check: bool,
    sources: list[Path] | None = None,
) -> int:
    from ragcli.errors import EXIT_THRESHOLD
    from ragcli.telemetry.facade import Telemetry
    from ragcli.telemetry.stats import check_thresholds

    since_seconds = None
    if since:
        since_seconds = time.time() - since_timestamp(since, "--since")
    if sources:
        stats = merged_stats(settings, sources, since_seconds)
    else:
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


def merged_stats(settings: Settings, sources: list[Path], since_seconds: float | None) -> dict[str, Any]:
    """The figures of several machines' event logs together (telemetry/merge.py)."""
    import tempfile

    from ragcli.telemetry.merge import merge_event_logs
    from ragcli.telemetry.stats import compute_stats

    uri = settings.store_uri
    with tempfile.TemporaryDirectory(prefix="ragcli-stats-") as folder:
        merged = Path(folder) / "events.sqlite3"
        logs = merge_event_logs(sources, merged)
        stats = compute_stats(
            merged,
            since_seconds,
            settings,
            index_path=Path(uri) if "://" not in uri else None,
            oldest_document_at=_oldest_document_mtime(settings),
        )
    return stats | {"events_db": ", ".join(str(log) for log in logs), "merged_from": [str(log) for log in logs]}


def _oldest_document_mtime(settings: Settings) -> float | None:
    """The staleness figure needs the index; an unreadable one leaves the figure empty, not an error."""
    from ragcli.store import get_store

    uri = settings.store_uri
    if "://" not in uri and not Path(uri).exists():
        return None  # opening the store would create an empty one; stats only looks
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
    # The report's own Markdown: drawn by Rich on a terminal, as Markdown text when piped, where Rich
    # would fit the tables to 80 columns and cut lines (--json for scripts).
    from rich.markdown import Markdown

    from ragcli.telemetry.report import render_markdown

    text = render_markdown(stats, None, terminal=True)
    if stdout.is_terminal:
        stdout.print(Markdown(text))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run_feedback(
    settings: Settings, request_id: str, rating: str, note: str | None, *, json_output: bool
) -> int:
    from ragcli.telemetry.events import find_ask
    from ragcli.telemetry.facade import Telemetry, events_path

    rating = rating.strip().lower()
    if rating not in ("up", "down"):
        raise UsageError(f"Rating must be up or down, not {rating!r}.", hint="ragcli feedback ID up")
    matches = find_ask(events_path(settings), request_id)
    if len(matches) == 1:  # the first characters of an id are enough, as with git
        request_id = matches[0]["request_id"]
    with Telemetry(settings) as telemetry:
        replaced = telemetry.feedback(request_id, rating, note)
    if json_output:
        print_json({"request_id": request_id, "rating": rating, "replaced": replaced})
        return EXIT_OK
    if replaced is not None:
        stderr.print(
            f"Note: {request_id} was already rated {replaced}; that rating is replaced.", markup=False
        )
    stdout.print(f"Recorded {rating} for {request_id}.", markup=False)
    return EXIT_OK
