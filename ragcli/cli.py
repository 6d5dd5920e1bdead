"""Command-line entry point. Parses arguments and hands over to ragcli.app; nothing heavy is imported here."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ragcli import __version__
from ragcli.errors import EXIT_INTERNAL, RagcliError

EXIT_CODES_HELP = (
    "Exit codes: 0 all well; 1 unexpected internal error; 2 usage or configuration error; "
    "3 some documents failed (the rest was indexed; see `ragcli dlq list`); "
    "4 another ingest holds the index lock; 5 the index or a model cannot be used as configured; "
    "6 a quality or health threshold was breached (eval golden, stats --check)."
)

app = typer.Typer(
    name="ragcli",
    help="Answers over your own documents: ingest, ask, and see what it costs.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead letter file: documents that failed to ingest.", no_args_is_help=True)
app.add_typer(config_app, name="config")
eval_app = typer.Typer(help="Measure retrieval and answer quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
cache_app = typer.Typer(help="The answer and embedding caches.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(cache_app, name="cache")

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


class _State:
    config_file: str | None = None
    verbose: int = 0
    quiet: bool = False


state = _State()


def _handle_errors(func: F) -> F:
    """Domain errors become `Error: …` with the fix on stderr and their own exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            code = func(*args, **kwargs)
        except RagcliError as exc:
            sys.stderr.write(f"Error: {exc.message}\n")
            if exc.hint:
                sys.stderr.write(f"  Fix: {exc.hint}\n")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted.\n")
            raise typer.Exit(130) from None
        if code:
            raise typer.Exit(code)
        return code

    return wrapper  # type: ignore[return-value]


def _settings(flags: dict[str, Any] | None = None) -> Any:
    from ragcli import app as service
    from ragcli.config import load_settings

    settings = load_settings(state.config_file, flags=flags)
    service.setup_logging(settings.config.log_level, verbose=state.verbose, quiet=state.quiet)
    return settings


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ragcli {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", help="Config file (default: ./.ragcli.toml, or $RAGCLI_CONFIG)."),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    state.config_file = config
    state.verbose = verbose
    state.quiet = quiet


@app.command()
@_handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    json_output: JsonOpt = False,
    prune: Annotated[
        bool | None,
        typer.Option("--prune/--no-prune", help="Remove indexed files that are gone from the folders."),
    ] = None,
    force_prune: Annotated[
        bool, typer.Option("--force-prune", help="Prune even when a folder turned up empty.")
    ] = False,
    strategy: Annotated[
        str | None, typer.Option(help="Chunking strategy: recursive, fixed or semantic.")
    ] = None,
    chunk_size: Annotated[int | None, typer.Option(help="Chunk size in tokens.")] = None,
    chunk_overlap: Annotated[int | None, typer.Option(help="Chunk overlap in tokens.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Embedding batch size.")] = None,
) -> int:
    """Index files and folders; unchanged files are skipped, changed ones replaced, removed ones pruned.

    Exit codes: 0 all well; 3 some documents failed (see `ragcli dlq list`); 4 another ingest is
    running; 2 usage or configuration error; 5 index or model unusable.
    """
    from ragcli import app as service

    settings = _settings(
        {
            "chunking.strategy": strategy,
            "chunking.chunk_size": chunk_size,
            "chunking.chunk_overlap": chunk_overlap,
            "embedding.batch_size": batch_size,
        }
    )
    return service.run_ingest(settings, paths, prune=prune, force_prune=force_prune, json_output=json_output)


@app.command()
@_handle_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int | None, typer.Option("--k", "-k", help="Passages to retrieve.")] = None,
    mode: Annotated[str | None, typer.Option(help="Search mode: vector, keyword or hybrid.")] = None,
    rerank: Annotated[
        bool | None, typer.Option("--rerank/--no-rerank", help="Rerank candidates with the cross-encoder.")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Answer provider: extractive, local or openai.")
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="KEY=VALUE (whole value) or KEY~TEXT (contains), case-insensitive, on title, heading, "
            "doc_type, page, source (repeatable: same key = OR, different keys = AND).",
        ),
    ] = None,
    sources: Annotated[
        list[str] | None, typer.Option("--source", help="Only documents whose path matches this glob.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only documents modified since: 7d, 24h or 2026-01-31.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the answer cache.")
    ] = False,
    no_server: Annotated[
        bool, typer.Option("--no-server", help="Answer in this process even when `ragcli serve` runs.")
    ] = False,
    json_output: JsonOpt = False,
) -> int:
    """Answer a question from the indexed documents, with citations (through `ragcli serve` when it runs)."""
    from ragcli import app as service
    from ragcli.query import AskOptions
    from ragcli.retrieval.filters import Filters, parse_field_filters, parse_since

    settings = _settings(
        {
            "retrieval.top_k": k,
            "retrieval.mode": mode,
            "rerank.enabled": rerank,
            "generation.provider": provider,
        }
    )
    exact, partial = parse_field_filters(filters or [])
    options = AskOptions(
        filters=Filters(
            sources=list(sources or []),
            fields=exact,
            contains=partial,
            since=parse_since(since) if since else None,
        )
    )
    return service.run_ask(
        settings, question, options, json_output=json_output, use_cache=not no_cache, use_server=not no_server
    )


@app.command()
@_handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1; others need a token).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8750; 0 = any free port).")] = None,
    workers: Annotated[int | None, typer.Option(help="Questions answered at once.")] = None,
    log_format: Annotated[str | None, typer.Option(help="Access log: text or json (one line per request).")] = None,
) -> int:
    """Answer over HTTP JSON with the index open and the models loaded once (needs the serve extra).

    POST /v1/ask, /v1/search, /v1/feedback; GET /v1/stats, /healthz, /readyz, /metrics.

    SIGTERM drains and exits 0; SIGHUP reloads the configuration; `ragcli ask` finds it in <home>/serve.json.
    """
    from ragcli.serve.server import run_serve

    flags = {"serve.host": host, "serve.port": port, "serve.workers": workers, "serve.log_format": log_format}
    return run_serve(_settings(flags), lambda: _settings(flags))


@app.command()
@_handle_errors
def mcp() -> int:
    """An MCP server on stdin/stdout with read-only `search` and `ask` tools (needs the mcp extra)."""
    from ragcli.mcp_server import run_mcp

    return run_mcp(_settings())


@app.command()
@_handle_errors
def reindex(json_output: JsonOpt = False) -> int:
    """Rebuild the whole index from its source files with the configured embedder and chunker."""
    from ragcli import app as service

    return service.run_reindex(_settings(), json_output=json_output)


@config_app.command("show")
@_handle_errors
def config_show(json_output: JsonOpt = False) -> int:
    """Print every configuration value and where it came from (default, file, env, flag)."""
    from ragcli import app as service

    return service.show_config(_settings(), json_output=json_output)


@dlq_app.command("list")
@_handle_errors
def dlq_list(json_output: JsonOpt = False) -> int:
    """List the documents that failed, with the reason and the number of attempts."""
    from ragcli import app as service

    return service.dlq_list(_settings(), json_output=json_output)


@dlq_app.command("retry")
@_handle_errors
def dlq_retry(json_output: JsonOpt = False) -> int:
    """Ingest every failed document again, whatever its attempt count."""
    from ragcli import app as service

    return service.dlq_retry(_settings(), json_output=json_output)


@dlq_app.command("clear")
@_handle_errors
def dlq_clear(json_output: JsonOpt = False) -> int:
    """Empty the dead letter file (the documents stay unindexed until they change or are retried)."""
    from ragcli import app as service

    return service.dlq_clear(_settings(), json_output=json_output)


@cache_app.command("stats")
@_handle_errors
def cache_stats(json_output: JsonOpt = False) -> int:
    """Entries, size, hits and misses of each cache."""
    from ragcli import app as service

    return service.cache_stats(_settings(), json_output=json_output)


@cache_app.command("clear")
@_handle_errors
def cache_clear(
    kinds: Annotated[
        list[str] | None, typer.Option("--kind", help="answers or embeddings (repeatable); default: all.")
    ] = None,
    json_output: JsonOpt = False,
) -> int:
    """Empty the caches."""
    from ragcli import app as service

    return service.cache_clear(_settings(), kinds or [], json_output=json_output)


@app.command()
@_handle_errors
def stats(
    since: Annotated[
        str | None, typer.Option(help="Window: 24h, 7d or a date (default: everything).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write a Markdown report (and a PNG histogram).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 6 when a limit in the thresholds section of the config is breached.")
    ] = False,
    json_output: JsonOpt = False,
) -> int:
    """Latency percentiles, cache hit rate, failures, staleness and cost from the local event log."""
    from ragcli import app as service

    return service.run_stats(_settings(), since=since, json_output=json_output, report=report, check=check)


@app.command()
@_handle_errors
def feedback(
    request_id: Annotated[str, typer.Argument(help="The request_id printed by `ragcli ask --json`.")],
    rating: Annotated[str, typer.Argument(help="up or down.")],
    note: Annotated[str | None, typer.Option(help="A comment to keep with the rating.")] = None,
    json_output: JsonOpt = False,
) -> int:
    """Rate an answer; `ragcli stats` reports the satisfaction rate."""
    from ragcli import app as service

    return service.run_feedback(_settings(), request_id, rating, note, json_output=json_output)


@eval_app.command("retrieval")
@_handle_errors
def eval_retrieval(
    directory: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")
    ],
    split: Annotated[str, typer.Option(help="qrels split to score.")] = "test",
    variants: Annotated[
        list[str] | None,
        typer.Option("--variant", help="vector, keyword, hybrid, each optionally +rerank (repeatable)."),
    ] = None,
    k: Annotated[int, typer.Option("--k", help="Ranking depth scored (Recall@100 needs 100).")] = 100,
    limit: Annotated[int | None, typer.Option(help="Only the first N judged queries.")] = None,
    ci: Annotated[
        bool, typer.Option("--ci", help="Paired bootstrap 95% intervals of each variant vs the first.")
    ] = False,
    details: Annotated[
        Path | None, typer.Option("--details", help="Write per-query scores (JSON lines) to this file.")
    ] = None,
    json_output: JsonOpt = False,
) -> int:
    """nDCG@10, Recall@10/100, MRR@10 and latency on a BEIR data set, side by side per variant."""
    from ragcli import app as service

    return service.run_eval_retrieval(
        _settings(),
        directory,
        split=split,
        variants=variants or [],
        k=k,
        limit=limit,
        json_output=json_output,
        ci=ci,
        details=details,
    )


@eval_app.command("qa")
@_handle_errors
def eval_qa(
    file: Annotated[Path, typer.Argument(help="SQuAD 2.0 JSON file.")],
    limit: Annotated[
        int | None, typer.Option(help="Questions to ask (answerable and not, alternating).")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Answer provider: extractive, local or openai.")
    ] = None,
    details: Annotated[
        Path | None,
        typer.Option("--details", help="Write one JSON line per question (answer, refusal, scores) here."),
    ] = None,
    json_output: JsonOpt = False,
) -> int:
    """EM, F1 and gold-in-answer rate on answerable questions, refusal rates (and their reasons) on
    both kinds, latency p50/p95."""
    from ragcli import app as service

    settings = _settings({"generation.provider": provider})
    return service.run_eval_qa(settings, file, limit=limit, json_output=json_output, details=details)


@eval_app.command("golden")
@_handle_errors
def eval_golden(
    file: Annotated[
        Path, typer.Argument(help="JSONL: question, expected_sources, optional expected_answer.")
    ],
    k: Annotated[int, typer.Option("--k", help="Sources considered per question.")] = 5,
    min_recall: Annotated[float | None, typer.Option(help="Exit 6 when recall@k is below this.")] = None,
    min_mrr: Annotated[float | None, typer.Option(help="Exit 6 when MRR is below this.")] = None,
    answers: Annotated[
        bool, typer.Option("--answers", help="Also check expected answers (runs ask).")
    ] = False,
    json_output: JsonOpt = False,
) -> int:
    """Score the index against your own golden questions; for CI and after the nightly ingest."""
    from ragcli import app as service

    return service.run_eval_golden(
        _settings(),
        file,
        k=k,
        min_recall=min_recall,
        min_mrr=min_mrr,
        with_answers=answers,
        json_output=json_output,
    )


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # the last line of defence: never a bare traceback for a user
        sys.stderr.write(f"Error: unexpected {type(exc).__name__}: {exc}\n")
        sys.stderr.write("  Fix: run again with -v for details, and report it if it persists.\n")
        if state.verbose:
            raise
        sys.exit(EXIT_INTERNAL)
