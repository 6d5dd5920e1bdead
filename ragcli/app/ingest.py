"""`ragcli ingest`, `reindex` and the dead letter commands.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragcli.app.console import display_path, print_json, print_table, stderr, stdout
from ragcli.app.progress import observer_for
from ragcli.config import Settings
from ragcli.errors import EXIT_OK, EXIT_PARTIAL
from ragcli.memory import limit_malloc_arenas

logger = logging.getLogger("ragcli")


def lower_priority(niceness: int) -> None:
    """Run at least at `niceness` ([ingest] nice): embedding takes every core it is given, and a server
    on the same two cores answered with 16x its idle p95 during an unniced ingest, 1.2x under nice 10
    (docs/benchmarks.md, "`ragcli serve`"). A process started nicer than that stays as it is."""
    import os

    if not niceness or not hasattr(os, "nice"):
        return
    current = os.nice(0)
    if current < niceness:
        try:
            os.nice(niceness - current)
        except OSError:  # not permitted (some containers): ingest at the priority it has
            logger.debug("Could not lower the ingest's CPU priority", exc_info=True)


def run_ingest(
    settings: Settings,
    paths: Sequence[Path | str],
    *,
    prune: bool | None,
    force_prune: bool,
    json_output: bool,
    retry_failed: bool = False,
    only_sources: set[str] | None = None,
) -> int:
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.telemetry.facade import Telemetry

    lower_priority(settings.config.ingest.nice)
    limit_malloc_arenas()
    if settings.config.ingest.engine == "ray":
        from ragcli.ingest.ray_engine import RayIngestor as Ingestor
    with observer_for(json_output) as observer:
        report = Ingestor(settings, observer=observer).run(
            paths, prune=prune, force_prune=force_prune, retry_failed=retry_failed, only_sources=only_sources
        )
    with Telemetry(settings) as telemetry:
        telemetry.record_ingest(report)
    summary = report.summary()
    if json_output:
        print_json(summary)
    else:
        _print_ingest_summary(report.summary(), settings)
    logger.info(
        "Ingest finished: %d scanned, %d added, %d updated, %d removed, %d unchanged, %d failed, "
        "%d failed before and unchanged, %d unsupported, %d chunks embedded in %.1f s",
        report.scanned,
        report.added,
        report.updated,
        report.removed,
        report.skipped_unchanged,
        report.failed,
        report.skipped_failed,
        report.unsupported,
        report.chunks_embedded,
        report.seconds,
    )
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _print_ingest_summary(summary: dict[str, Any], settings: Settings) -> None:
    keys = (
        "scanned",
        "added",
        "updated",
        "removed",
        "skipped_unchanged",
        "skipped_failed",
        "failed",
        "unsupported",
        "chunks_embedded",
        "chunks_reused",
        "seconds",
    )
    print_table(["figure", "value"], [(key.replace("_", " "), summary[key]) for key in keys], header=False)
    # A diagnostic, not a result: stderr, beside the warnings, which were logged when they happened.
    if summary["failed"]:
        stderr.print(
            f"{summary['failed']} documents failed; see `ragcli dlq list` ({settings.dead_letter_path}).",
            highlight=False,
            markup=False,
        )


def run_reindex(settings: Settings, *, json_output: bool) -> int:
    """Rebuild the index from its source files with the configured embedder and chunker (see
    ragcli/ingest/rebuild.py): also the way back from an index whose files are damaged."""
    from ragcli.errors import EXIT_STORE
    from ragcli.ingest.rebuild import rebuild_index

    lower_priority(settings.config.ingest.nice)
    limit_malloc_arenas()
    with observer_for(json_output) as observer:
        result = rebuild_index(settings, observer=observer)
    for note in result.notes:
        logger.warning(note)
    if result.report is None:  # a damaged index with no list of its files: moved aside, nothing built
        if json_output:
            print_json({"rebuilt": False, "moved_aside": result.moved_aside, "notes": result.notes})
        return EXIT_STORE
    summary = result.report.summary() | {
        "sources_missing": result.sources_missing,
        "sources_from_journal": result.from_journal,
        "moved_aside": result.moved_aside,
    }
    if json_output:
        print_json(summary)
    else:
        _print_ingest_summary(summary, settings)
    return EXIT_PARTIAL if result.report.failed else EXIT_OK


def dlq_list(settings: Settings, *, json_output: bool) -> int:
    from ragcli.ingest.deadletter import DeadLetterFile

    entries = sorted(DeadLetterFile(settings.dead_letter_path).entries.values(), key=lambda e: e.source)
    if json_output:
        print_json([e.to_json() for e in entries])
        return EXIT_OK
    if not entries:
        stdout.print("The dead letter file is empty.")
        return EXIT_OK
    # Piped: the absolute path, whole, so `cut -f1` hands the file to another tool.
    where = display_path if stdout.is_terminal else str
    print_table(
        ["source", "stage", "error", "attempts"],
        [(where(e.source), e.stage, f"{e.error_type}: {e.message}", e.attempts) for e in entries],
    )
    return EXIT_OK


def dlq_retry(settings: Settings, *, json_output: bool) -> int:
    from ragcli.ingest.deadletter import DeadLetterFile

    entries = DeadLetterFile(settings.dead_letter_path).entries
    if not entries:
        if json_output:
            print_json({"retried": 0})
        else:
            stdout.print("Nothing to retry: the dead letter file is empty.")
        return EXIT_OK
    from ragcli.store.remote import is_object_url

    paths: list[Path | str] = [s if is_object_url(s) else Path(s) for s in entries]
    paths = [p for p in paths if isinstance(p, str) or p.exists()]
    return run_ingest(
        settings,
        paths,
        prune=False,
        force_prune=False,
        json_output=json_output,
        retry_failed=True,
    )


def dlq_clear(settings: Settings, *, json_output: bool) -> int:
    from ragcli.ingest.deadletter import DeadLetterFile

    count = DeadLetterFile(settings.dead_letter_path).clear()
    if json_output:
        print_json({"cleared": count})
    else:
        stdout.print(f"Cleared {count} entries.")
    return EXIT_OK
