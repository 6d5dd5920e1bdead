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
    for old in list(root.handlers):
        if getattr(old, "_ragcli", False):
            root.removeHandler(old)
    handler: logging.Handler
    if stderr.is_terminal:
        handler = RichHandler(console=stderr, show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    setattr(handler, "_ragcli", True)  # noqa: B010  (marks our handler so a second call replaces it)
    root.addHandler(handler)
    logging.getLogger("ragcli").setLevel(level)
    # Third-party libraries speak only when something is wrong.
    root.setLevel(logging.WARNING)
    # (pypdf's messages are routed by the PDF loader itself, as DEBUG records of ragcli.loaders.pdf.)
    for noisy in ("lance", "lancedb", "httpx", "httpcore"):
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
    from ragcli.telemetry.facade import Telemetry

    with _observer(json_output) as observer:
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
def run_ask(
    settings: Settings, question: str, options: Any, *, json_output: bool, use_cache: bool = True
) -> int:
    from ragcli.query import ask_with_cache

    if not question.strip():
        raise UsageError("The question is empty.", hint='Ask something: ragcli ask "How do I …?"')
    streaming = stdout.is_terminal and not json_output and settings.config.generation.stream
    streamed: list[str] = []

    def on_token(token: str) -> None:
        streamed.append(token)
        stdout.print(token, end="", markup=False, highlight=False)

    cpu_started = time.process_time()
    result, _ = ask_with_cache(
        settings, question, options, use_cache=use_cache, on_token=on_token if streaming else None
    )
    try:
        _print_answer(result, streamed, json_output)
    finally:
        _record_ask(settings, result, time.process_time() - cpu_started)
    return EXIT_OK


def _record_ask(settings: Settings, result: dict[str, Any], cpu_seconds: float) -> None:
    """After the answer is printed, so the user never waits for the event log's fsync."""
    from ragcli.telemetry.facade import Telemetry

    with Telemetry(settings) as telemetry:
        telemetry.record_ask(result, cpu_seconds)


def _print_answer(result: dict[str, Any], streamed: list[str], json_output: bool) -> None:
    if json_output:
        print_json(result)
        return
    if streamed:
        stdout.print()
    else:
        stdout.print(result["answer"], markup=False, highlight=False)
    if result.get("cache"):
        note = f"cached answer ({result['cache']})"
        if result["cache"] == "semantic":
            note += f" to: {result['matched_question']}"
        stderr.print(note, markup=False, highlight=False)
    if result.get("degraded"):
        stderr.print(f"[yellow]Degraded:[/yellow] {result['degraded_reason']}", highlight=False)
    if result["citations"]:
        stdout.print()
        stdout.print("[bold]Sources[/bold]")
        for c in result["citations"]:
            mark = "" if c.get("cited", True) else "  (not cited)"
            stdout.print(f"[{c['n']}] {_cite(c)}  (score {c['score']:.3f}){mark}", markup=False)


def cache_stats(settings: Settings, *, json_output: bool) -> int:
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.embeddings import EmbeddingCache

    answers = AnswerCache(settings).stats()
    embeddings = EmbeddingCache(settings).stats()
    hits = answers["exact_hits"] + answers["semantic_hits"]
    lookups = hits + answers["exact_misses"] - answers["semantic_hits"]
    data = {
        "answers": answers,
        "embeddings": embeddings,
        "hit_rate": round(hits / lookups, 4) if lookups > 0 else None,
        "directory": str(settings.cache_dir),
    }
    if json_output:
        print_json(data)
        return EXIT_OK
    table = Table("cache", "entries", "size", "hits", "misses")
    table.add_row(
        "answers (exact)",
        str(answers["entries"]),
        _human_bytes(answers["size_bytes"]),
        str(answers["exact_hits"]),
        str(answers["exact_misses"]),
    )
    table.add_row(
        "answers (semantic)", "", "", str(answers["semantic_hits"]), str(answers["semantic_misses"])
    )
    table.add_row(
        "query embeddings", str(embeddings["query_entries"]), _human_bytes(embeddings["size_bytes"]), "", ""
    )
    table.add_row("chunk embeddings", str(embeddings["chunk_entries"]), "", "", "")
    stdout.print(table)
    rate = data["hit_rate"]
    stdout.print(f"answer hit rate: {'n/a' if rate is None else f'{rate:.1%}'}")
    return EXIT_OK


def cache_clear(settings: Settings, kinds: Sequence[str], *, json_output: bool) -> int:
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.embeddings import EmbeddingCache

    wanted = set(kinds) or {"answers", "embeddings"}
    unknown = wanted - {"answers", "embeddings"}
    if unknown:
        raise UsageError(
            f"Unknown cache kind {sorted(unknown)[0]!r}.", hint="Use --kind answers or --kind embeddings."
        )
    cleared = {}
    if "answers" in wanted:
        cleared["answers"] = AnswerCache(settings).clear()
    if "embeddings" in wanted:
        cleared["embeddings"] = EmbeddingCache(settings).clear()
    if json_output:
        print_json({"cleared": cleared})
    else:
        for kind, count in cleared.items():
            stdout.print(f"Cleared {count} {kind} entries.")
    return EXIT_OK


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


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


# ----- eval ----------------------------------------------------------------------------------------
@contextmanager
def _query_progress(label: str, json_output: bool) -> Iterator[Any]:
    """A bar on a terminal, a log line every 10% otherwise."""
    if stderr.is_terminal and not json_output:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        ) as progress:
            task = progress.add_task(label, total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            yield update
    else:
        state = {"next": 0.1}

        def update(done: int, total: int) -> None:
            if done == 1:  # a new pass (the next variant) starts its own count
                state["next"] = 0.1
            if total and done / total >= state["next"]:
                logger.info("%s: %d/%d", label, done, total)
                state["next"] += 0.1

        yield update


def run_eval_retrieval(
    settings: Settings,
    directory: Path,
    *,
    split: str,
    variants: Sequence[str],
    k: int,
    limit: int | None,
    json_output: bool,
) -> int:
    from ragcli.evaluation.harness import Variant, evaluate_beir

    parsed = [Variant.parse(v) for v in variants] or [Variant.parse(settings.config.retrieval.mode)]
    with _observer(json_output) as observer, _query_progress("Queries", json_output) as progress:
        result = evaluate_beir(
            settings,
            directory,
            split=split,
            variants=parsed,
            k=k,
            limit=limit,
            progress=progress,
            observer=observer,
        )
    if json_output:
        if len(parsed) == 1:  # one variant: its metrics at the top level, as scripts expect
            only = result["variants"][parsed[0].name]
            print_json(
                {
                    **only,
                    "variant": parsed[0].name,
                    "fingerprint": result["fingerprint"],
                    "dataset": result["dataset"],
                    "split": split,
                }
            )
        else:
            print_json(result)
        return EXIT_OK
    _print_comparison(result["variants"], f"{directory} ({split} split)")
    return EXIT_OK


def _print_comparison(variants: dict[str, dict[str, Any]], title: str) -> None:
    from ragcli.evaluation.runner import compare

    rows = compare(variants)
    columns = ["ndcg@10", "recall@10", "recall@100", "mrr@10", "p50_ms", "p95_ms"]
    table = Table("variant", *columns, "queries", title=title)
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            delta = row.get(f"{column}_delta")
            text = "" if value is None else (f"{value:.1f}" if column.endswith("_ms") else f"{value:.4f}")
            if delta and not row.get("baseline"):
                text += f" ({delta:+.4f})" if not column.endswith("_ms") else f" ({delta:+.1f})"
            cells.append(text)
        table.add_row(str(row["variant"]), *cells, str(row.get("queries", "")))
    stdout.print(table)


def run_eval_qa(settings: Settings, path: Path, *, limit: int | None, json_output: bool) -> int:
    from ragcli.evaluation.harness import evaluate_squad

    with _observer(json_output) as observer, _query_progress("Questions", json_output) as progress:
        result = evaluate_squad(settings, path, limit=limit, progress=progress, observer=observer)
    if json_output:
        print_json(result)
        return EXIT_OK
    table = Table("metric", "value", title=f"{path} — provider {result['provider']}")
    for key in (
        "questions",
        "answerable",
        "unanswerable",
        "em",
        "f1",
        "refusal_rate",
        "false_refusal_rate",
        "hit_rate",
        "p50_ms",
        "p95_ms",
    ):
        value = result.get(key)
        table.add_row(
            key, "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        )
    stdout.print(table)
    return EXIT_OK


def run_eval_golden(
    settings: Settings,
    path: Path,
    *,
    k: int,
    min_recall: float | None,
    min_mrr: float | None,
    with_answers: bool,
    json_output: bool,
) -> int:
    from ragcli.errors import EXIT_THRESHOLD
    from ragcli.evaluation.golden import check_thresholds
    from ragcli.evaluation.harness import evaluate_golden

    with _query_progress("Golden questions", json_output) as progress:
        result = evaluate_golden(settings, path, k=k, with_answers=with_answers, progress=progress)
    breaches = check_thresholds(result, min_recall=min_recall, min_mrr=min_mrr)
    result["breaches"] = breaches
    if json_output:
        print_json(result)
    else:
        table = Table("question", "hit", "rank")
        for row in result["per_item"]:
            table.add_row(
                str(row.get("question", ""))[:70], "yes" if row["hit"] else "NO", str(row.get("rank") or "-")
            )
        stdout.print(table)
        stdout.print(
            f"recall@{k}: {result['recall']:.3f}   MRR: {result['mrr']:.3f}   items: {result['items']}"
        )
        if result.get("answer_containment") is not None:
            stdout.print(f"answer containment: {result['answer_containment']:.3f}")
        for breach in breaches:
            stderr.print(f"[red]Below threshold:[/red] {breach}", highlight=False)
    return EXIT_THRESHOLD if breaches else EXIT_OK


# ----- stats and feedback --------------------------------------------------------------------------
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
    uri = settings.store_uri
    index_path = Path(uri) if "://" not in uri else None
    with Telemetry(settings) as telemetry:
        stats = telemetry.stats(
            since_seconds, index_path=index_path, oldest_document_at=_oldest_document_mtime(settings)
        )
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
