"""The service layer between the CLI and the pipeline: runs commands, draws Rich output, logs to stderr.

Results go to stdout (plain text or one JSON object with --json); logs and progress go to stderr, so
`ragcli ask … --json | jq` and cron mail both stay clean. On a terminal a progress bar is drawn; without
one (cron, pipes) ingestion writes plain log lines instead.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from ragcli.config import Settings, effective_items
from ragcli.errors import EXIT_OK, EXIT_PARTIAL, UsageError

logger = logging.getLogger("ragcli")

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True)


def setup_logging(level: str = "INFO", *, verbose: int = 0, quiet: bool = False) -> None:
    """One handler on stderr: Rich on a terminal, plain timestamped lines under cron."""
    if verbose:
        level = "DEBUG"
    elif quiet:
        level = "WARNING"
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ragcli", False):
            root.removeHandler(handler)
    handler: logging.Handler
    if stderr.is_terminal:
        handler = RichHandler(console=stderr, show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._ragcli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    logging.getLogger("ragcli").setLevel(level)
    # Third-party libraries speak only when something is wrong.
    root.setLevel(logging.WARNING)
    for noisy in ("pypdf", "lance", "lancedb", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


# ----- ingest --------------------------------------------------------------------------------------
class _RichObserver:
    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        )
        self.task = self.progress.add_task("Ingesting", total=None, info="")
        self.chunks = 0
        self.start = time.perf_counter()

    def started(self, total_files: int) -> None:
        self.progress.update(self.task, total=total_files)

    def file_done(self, source: str, outcome: str) -> None:
        if outcome != "removed":
            self.progress.advance(self.task)

    def embedded(self, chunks: int) -> None:
        self.chunks += chunks
        rate = self.chunks / max(time.perf_counter() - self.start, 1e-9)
        self.progress.update(self.task, info=f"{self.chunks} chunks, {rate:.0f} chunks/s")


class _LogObserver:
    """Under cron: a line per 10% of the files, not one per file."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.next_report = 0.1
        self.chunks = 0

    def started(self, total_files: int) -> None:
        self.total = total_files
        logger.info("Scanning %d files", total_files)

    def file_done(self, source: str, outcome: str) -> None:
        if outcome == "removed":
            logger.info("Removed %s (file is gone)", source)
            return
        self.done += 1
        if self.total and self.done / self.total >= self.next_report:
            logger.info("Progress: %d/%d files, %d chunks embedded", self.done, self.total, self.chunks)
            self.next_report += 0.1

    def embedded(self, chunks: int) -> None:
        self.chunks += chunks


@contextmanager
def _observer(json_output: bool) -> Iterator[Any]:
    if stderr.is_terminal and not json_output:
        observer = _RichObserver()
        with observer.progress:
            yield observer
    else:
        yield _LogObserver()


def run_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    prune: bool | None,
    force_prune: bool,
    json_output: bool,
    retry_failed: bool = False,
    only_sources: set[str] | None = None,
) -> int:
    from ragcli.ingest.pipeline import Ingestor

    with _observer(json_output) as observer:
        report = Ingestor(settings, observer=observer).run(
            paths, prune=prune, force_prune=force_prune, retry_failed=retry_failed, only_sources=only_sources
        )
    summary = report.summary()
    if json_output:
        print_json(summary)
    else:
        _print_ingest_summary(report.summary(), settings)
    logger.info(
        "Ingest finished: %d scanned, %d added, %d updated, %d removed, %d unchanged, %d failed, "
        "%d unsupported, %d chunks embedded in %.1f s",
        report.scanned,
        report.added,
        report.updated,
        report.removed,
        report.skipped_unchanged,
        report.failed,
        report.unsupported,
        report.chunks_embedded,
        report.seconds,
    )
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _print_ingest_summary(summary: dict[str, Any], settings: Settings) -> None:
    table = Table(show_header=False, box=None)
    for key in (
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
    ):
        table.add_row(key.replace("_", " "), str(summary[key]))
    stdout.print(table)
    if summary["failed"]:
        stdout.print(
            f"{summary['failed']} documents failed; see `ragcli dlq list` ({settings.dead_letter_path})."
        )
    for warning in summary["warnings"]:
        stdout.print(f"Warning: {warning}")


def run_reindex(settings: Settings, *, json_output: bool) -> int:
    """Rebuild the index from its source files with the configured embedder and chunker.

    The new index is built beside the old one and swapped in with a rename, so the old one keeps
    answering until the new one is complete, and a crash leaves the old one in place.
    """
    from ragcli.ingest.lock import IngestLock
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.store.lance import LanceStore

    uri = settings.store_uri
    if "://" in uri:
        raise UsageError(
            f"reindex swaps folders and works on a local index; {uri} is remote.",
            hint="Ingest into a new [store] uri, then point the config at it.",
        )
    old = LanceStore.open(uri, settings.config.store.table)
    sources = sorted({s for s in old.all_rows(["source"])["source"]}) if old.exists() else []
    if not sources:
        raise UsageError("There is nothing to reindex.", hint="Run `ragcli ingest PATH` first.")
    existing = [Path(s) for s in sources if Path(s).exists()]
    building = Path(uri).with_name(Path(uri).name + ".reindex")
    shutil.rmtree(building, ignore_errors=True)
    settings_new = Settings(
        config=settings.config.model_copy(deep=True),
        sources=settings.sources,
        file=settings.file,
        base_dir=settings.base_dir,
    )
    settings_new.config.store.uri = str(building)
    with IngestLock(settings.lock_path):
        store = LanceStore.open(str(building), settings.config.store.table)
        ingestor = Ingestor(settings_new, store=store)
        with _observer(json_output) as observer:
            ingestor.observer = observer
            report = ingestor.run(existing, prune=False, retry_failed=True, locked=True)
        retired = Path(uri).with_name(Path(uri).name + f".old-{int(time.time())}")
        Path(uri).rename(retired)
        building.rename(uri)
        shutil.rmtree(retired, ignore_errors=True)
    summary = report.summary() | {"sources_missing": len(sources) - len(existing)}
    if json_output:
        print_json(summary)
    else:
        _print_ingest_summary(summary, settings)
    return EXIT_PARTIAL if report.failed else EXIT_OK


# ----- ask -----------------------------------------------------------------------------------------
def run_ask(settings: Settings, question: str, options: Any, *, json_output: bool) -> int:
    from ragcli.query import QueryEngine

    if not question.strip():
        raise UsageError("The question is empty.", hint='Ask something: ragcli ask "How do I …?"')
    engine = QueryEngine(settings)
    streaming = stdout.is_terminal and not json_output and settings.config.generation.stream
    streamed: list[str] = []

    def on_token(token: str) -> None:
        streamed.append(token)
        stdout.print(token, end="", markup=False, highlight=False)

    result = engine.ask(question, options, on_token=on_token if streaming else None)
    if json_output:
        print_json(result.to_json())
        return EXIT_OK
    if streamed:
        stdout.print()
    else:
        stdout.print(result.answer, markup=False, highlight=False)
    if result.degraded:
        stderr.print(f"[yellow]Degraded:[/yellow] {result.degraded_reason}", highlight=False)
    if result.citations:
        stdout.print()
        stdout.print("[bold]Sources[/bold]")
        for c in result.citations:
            mark = "" if c["cited"] else "  (not cited)"
            stdout.print(f"[{c['n']}] {_cite(c)}  (score {c['score']:.3f}){mark}", markup=False)
    return EXIT_OK


def _cite(c: dict[str, Any]) -> str:
    source = _display_path(str(c["source"]))
    if c.get("page"):
        return f"{source}, page {c['page']}"
    if c.get("heading"):
        return f"{source} § {c['heading']}"
    return source


def _display_path(source: str) -> str:
    try:
        return str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        return source


# ----- config and dead letters -------------------------------------------------------------------
def show_config(settings: Settings, *, json_output: bool) -> int:
    items = effective_items(settings)
    if json_output:
        print_json(
            {
                "file": str(settings.file) if settings.file else None,
                "home": str(settings.home),
                "store_uri": settings.store_uri,
                "values": {k: {"value": v, "source": s} for k, v, s in items},
            }
        )
        return EXIT_OK
    stdout.print(f"config file: {settings.file or '(none)'}", markup=False)
    stdout.print(f"state directory: {settings.home}", markup=False)
    stdout.print(f"index: {settings.store_uri}", markup=False)
    table = Table("key", "value", "from")
    for key, value, source in items:
        table.add_row(key, json.dumps(value), source)
    stdout.print(table)
    return EXIT_OK


def dlq_list(settings: Settings, *, json_output: bool) -> int:
    from ragcli.ingest.deadletter import DeadLetterFile

    entries = sorted(DeadLetterFile(settings.dead_letter_path).entries.values(), key=lambda e: e.source)
    if json_output:
        print_json([e.to_json() for e in entries])
        return EXIT_OK
    if not entries:
        stdout.print("The dead letter file is empty.")
        return EXIT_OK
    table = Table("source", "stage", "error", "attempts")
    for e in entries:
        table.add_row(_display_path(e.source), e.stage, f"{e.error_type}: {e.message}", str(e.attempts))
    stdout.print(table)
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
    paths = [Path(s) for s in entries if Path(s).exists()]
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
