"""Command-line entry point. Parses arguments and hands over to ragcli.app; nothing heavy is imported here.

Conventions every command gets from `_Typer`/`_Command` (so a new command gets them by being declared
with `@app.command(examples=[...])`): `-h`, click-style metavars (QUESTION, PATH..., N; no `<bool>`),
an Examples section in its help, and `--quiet`/`-v`/`--config` accepted after the subcommand too.
`@_handle_errors` turns domain errors into `Error: …` + `Fix: …` with their exit code, and a closed
pipe (`ragcli ask … | head -1`) into a quiet exit 0.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ragcli import __version__
from ragcli.errors import EXIT_INTERNAL, EXIT_OK, RagcliError

EXIT_CODES_HELP = (
    "Exit codes: 0 all well; 1 unexpected internal error; 2 usage or configuration error; "
    "3 some documents failed (the rest was indexed; see `ragcli dlq list`); "
    "4 another ingest holds the index lock; 5 the index or a model cannot be used as configured; "
    "6 a quality or health threshold was breached (eval golden, stats --check) or `doctor` found problems; "
    "7 state cannot be written: disk full or read-only (nothing already indexed was lost)."
)
STATE_HELP = (
    "State (index, caches, event log) is found like git finds its repository: the nearest .ragcli.toml "
    "or .ragcli/ in this folder or above, else the per-user data directory; RAGCLI_HOME and --config "
    "override. `ragcli config show` says which was chosen and why."
)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
EXAMPLES_HEADING = "Examples:"

F = TypeVar("F", bound=Callable[..., Any])


# ----- help conventions ----------------------------------------------------------------------------------
def _metavar_for(param: Any, ctx: Any) -> str:
    label = TyperOption.display_type(param, ctx).strip("<>")
    label = label.removeprefix("list[").removesuffix("]")  # a repeatable option takes one value at a time
    return {"int": "N", "float": "NUMBER", "str": "TEXT", "Path": "PATH", "bool": "BOOL"}.get(label, label.upper())


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column already says QUESTION or PATH...

    def _usage_display_name(self) -> str:
        name = self.metavar or (self.name or "arg").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None  # a switch takes no value: no `<bool>`
        return self.metavar or _metavar_for(self, ctx)


def _conventional_params(params: Sequence[Any]) -> None:
    """Swap Typer's parameter display (`{question}`, `<int>`, `<bool>`) for click's (QUESTION, N, none)."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
            if param.metavar is None:
                param.metavar = (param.name or "arg").upper()
        elif type(param) is TyperOption:
            param.__class__ = _Option


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # includes -h/--help, made on demand
        _conventional_params(params)
        return params


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _conventional_params(params)
        return params


GLOBAL_VALUED = {"--config", "-c"}
GLOBAL_FLAG = re.compile(r"--quiet|-q|--verbose|-v+")


class _RootGroup(_Group):
    """Accepts the global options after the subcommand too: `ragcli ask "…" -v`, `ragcli stats --quiet`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, args))


def hoist_global_options(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """Move global options found after the subcommand to before it, leaving alone the values of the
    subcommand's own options (`--note -v`) and an option the subcommand defines itself."""
    start = 0
    while start < len(args) and args[start].startswith("-") and args[start] != "--":
        start += 2 if args[start] in GLOBAL_VALUED else 1
    if start >= len(args) or args[start] == "--":
        return args
    command, end = group.get_command(ctx, args[start]), start + 1
    if command is None:
        return args
    while isinstance(command, TyperGroup) and end < len(args):
        sub = command.get_command(ctx, args[end])
        if sub is None:
            break
        command, end = sub, end + 1
    own: set[str] = set()
    valued: set[str] = set()
    for param in command.params:
        names = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
        own.update(names)
        if isinstance(param, TyperOption) and not param.is_flag and not param.count:
            valued.update(names)
    hoisted: list[str] = []
    kept: list[str] = []
    i = end
    while i < len(args):
        token = args[i]
        name = token.split("=", 1)[0]
        takes_next = "=" not in token and i + 1 < len(args)
        if token == "--":
            kept += args[i:]
            break
        target = kept if name in own else hoisted if name in GLOBAL_VALUED or GLOBAL_FLAG.fullmatch(token) else kept
        target.append(token)
        if takes_next and (name in valued or (name in GLOBAL_VALUED and name not in own)):
            target.append(args[i + 1])
            i += 1
        i += 1
    return args[:start] + hoisted + args[start:end] + kept


def examples_epilog(examples: Sequence[str]) -> str:
    return EXAMPLES_HEADING + "\n" + "\n".join(f"  $ {line}" for line in examples)


class _Typer(typer.Typer):
    def command(
        self,
        name: str | None = None,
        *,
        examples: Sequence[str] = (),
        cls: type[TyperCommand] | None = None,
        **kwargs: Any,
    ) -> Callable[[F], F]:
        if examples:
            kwargs["epilog"] = examples_epilog(examples)
        return super().command(name, cls=cls or _Command, **kwargs)


def _typer(help: str, examples: Sequence[str] = (), **kwargs: Any) -> _Typer:
    kwargs.setdefault("no_args_is_help", True)
    return _Typer(
        help=help,
        cls=_Group,
        context_settings=CONTEXT_SETTINGS,
        epilog=examples_epilog(examples) if examples else None,
        **kwargs,
    )


app = _Typer(
    name="ragcli",
    help="Answers over your own documents: ingest, ask, and see what it costs.\n\n"
    + STATE_HELP
    + "\n\n"
    + EXIT_CODES_HELP,
    epilog=examples_epilog(
        [
            "ragcli ingest ~/notes",
            'ragcli ask "How do I rotate the API key?"',
            "ragcli history -n 5",
            "ragcli --install-completion",
        ]
    ),
    cls=_RootGroup,
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = _typer(
    "Inspect the effective configuration.",
    ["ragcli config show", "ragcli config show --defaults > .ragcli.toml"],
)
dlq_app = _typer(
    "The dead letter file: documents that failed to ingest.", ["ragcli dlq list", "ragcli dlq retry"]
)
eval_app = _typer(
    "Measure retrieval and answer quality.",
    ["ragcli eval golden golden.jsonl --min-recall 0.9", "ragcli eval retrieval ./scifact --variant hybrid"],
)
cache_app = _typer("The answer and embedding caches.", ["ragcli cache stats", "ragcli cache clear --kind answers"])
history_app = _typer(
    "Past questions with their answer, request id, cache outcome, latency and feedback (newest first).",
    [
        "ragcli history",
        "ragcli history -n 50 --refused",
        "ragcli history --degraded --since 7d --json",
        "ragcli history show 3f2a9c",
    ],
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")
app.add_typer(dlq_app, name="dlq")
app.add_typer(cache_app, name="cache")
app.add_typer(history_app, name="history")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (for scripts).")]
SinceOpt = Annotated[
    str | None,
    typer.Option(metavar="WHEN", help="Only since then: an age like 7d, 24h, 30m or a date like 2026-01-31."),
]


class _State:
    config_file: str | None = None
    verbose: int = 0
    quiet: bool = False
    # Set by a command that leaves nothing to flush but what atexit handlers flush (see _end_process).
    skip_teardown: bool = False


state = _State()


# ----- errors, pipes, settings ---------------------------------------------------------------------------
def _handle_errors(func: F) -> F:
    """Domain errors become `Error: …` with the fix on stderr and their own exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            code = func(*args, **kwargs)
        except RagcliError as exc:
            sys.stderr.write(f"Error: {_readable_times(exc.message)}\n")
            if exc.hint:
                sys.stderr.write(f"  Fix: {exc.hint}\n")
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            # The reader (`head -1`) has all it wanted: that is success, and nothing to say about it.
            _discard_stdout()
            raise typer.Exit(EXIT_OK) from None
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted.\n")
            raise typer.Exit(130) from None
        except Exception as exc:
            # The boundaries name the file; this catches a full or read-only disk met anywhere else.
            from ragcli.errors import state_write_error

            mapped = state_write_error(exc, getattr(exc, "filename", None) or "the state folder")
            if mapped is None:
                raise
            sys.stderr.write(f"Error: {mapped.message}\n  Fix: {mapped.hint}\n")
            raise typer.Exit(mapped.exit_code) from None
        if code:
            raise typer.Exit(code)
        return code

    return wrapper  # type: ignore[return-value]


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not hit the closed pipe again."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _readable_times(message: str) -> str:
    """`since=1767225600` (the lock holder's start, in epoch seconds) -> `since=2026-01-01T00:00:00Z`."""
    import datetime as dt

    def iso(match: re.Match[str]) -> str:
        when = dt.datetime.fromtimestamp(float(match.group(2)), tz=dt.UTC)
        return match.group(1) + when.strftime("%Y-%m-%dT%H:%M:%SZ")

    return re.sub(r"\b(since=|started=|started_at=)(\d{9,11}(?:\.\d+)?)\b", iso, message)


def _settings(flags: dict[str, Any] | None = None, flag_names: dict[str, str] | None = None) -> Any:
    from ragcli import app as service
    from ragcli.config import load_settings

    settings = load_settings(state.config_file, flags=flags, flag_names=flag_names)
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
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="Config file (default: the nearest .ragcli.toml above the current folder, or $RAGCLI_CONFIG).",
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, show_default=False, help="More log output (-vv: more).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    state.config_file = config
    state.verbose = verbose
    state.quiet = quiet


# ----- commands ------------------------------------------------------------------------------------------
@app.command(
    examples=[
        "ragcli ingest ~/docs",
        "ragcli ingest handbook.pdf notes/ --strategy semantic",
        "ragcli ingest ~/docs --no-prune --json",
        "AWS_ENDPOINT_URL=http://127.0.0.1:9000 ragcli ingest s3://team-docs/manuals/",
        "ragcli ingest ~/docs --engine ray --address ray://head:10001",
    ]
)
@_handle_errors
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Files or folders to ingest, or s3://bucket/prefix/ on object storage."),
    ],
    json_output: JsonOpt = False,
    prune: Annotated[
        bool | None,
        typer.Option(
            "--prune/--no-prune",
            help="Remove indexed files that are gone from the folders.",
            show_default="ingest.prune = true",
        ),
    ] = None,
    force_prune: Annotated[
        bool, typer.Option("--force-prune", help="Prune even when a folder turned up empty.")
    ] = False,
    strategy: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Chunking strategy: recursive, fixed or semantic."),
    ] = None,
    chunk_size: Annotated[int | None, typer.Option(help="Chunk size in tokens.")] = None,
    chunk_overlap: Annotated[int | None, typer.Option(help="Chunk overlap in tokens.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Embedding batch size.")] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="local (this process) or ray (parse, chunk and embed on a Ray cluster).",
            show_default="ingest.engine = local",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(metavar="ADDR", help="--engine ray: the cluster (ray://host:10001); unset: a local Ray."),
    ] = None,
) -> int:
    """Index files and folders; unchanged files are skipped, changed ones replaced, removed ones pruned.

    Exit codes: 0 all well; 3 some documents failed (see `ragcli dlq list`); 4 another ingest is running; 2 usage or configuration error; 5 index or model unusable; 7 disk full or read-only state.
    """
    from ragcli import app as service

    settings = _settings(
        {
            "chunking.strategy": strategy,
            "chunking.chunk_size": chunk_size,
            "chunking.chunk_overlap": chunk_overlap,
            "embedding.batch_size": batch_size,
            "ingest.engine": engine,
            "ingest.ray_address": address,
        },
        {"ingest.ray_address": "--address"},
    )
    from ragcli.store.remote import is_object_url

    targets = [p if is_object_url(p) else Path(p) for p in paths]
    return service.run_ingest(settings, targets, prune=prune, force_prune=force_prune, json_output=json_output)


@app.command(
    examples=[
        'ragcli ask "What does error code E23 mean?"',
        'ragcli ask "How do I reset it?" --k 8 --mode keyword --source "manuals/*.pdf"',
        'echo "What changed in 2.0?" | ragcli ask -',
        "ragcli ask \"Who owns billing?\" --json | jq -r .answer",
    ]
)
@_handle_errors
def ask(
    question: Annotated[
        str | None,
        typer.Argument(
            help="The question; `-` (or nothing, when input is piped) reads it from standard input.",
            show_default=False,
        ),
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", help="Passages to retrieve.", show_default="retrieval.top_k = 5"),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            metavar="MODE",
            help="Search mode: vector, keyword or hybrid.",
            show_default="retrieval.mode = hybrid",
        ),
    ] = None,
    rerank: Annotated[
        bool | None,
        typer.Option(
            "--rerank/--no-rerank",
            help="Rerank candidates with the cross-encoder.",
            show_default="rerank.enabled = false",
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Answer provider: extractive, local or openai.",
            show_default="generation.provider = extractive",
        ),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="KEY=VALUE",
            help="KEY=VALUE (whole value) or KEY~TEXT (contains), case-insensitive, on title, heading, "
            "doc_type, page, source (repeatable: same key = OR, different keys = AND).",
        ),
    ] = None,
    sources: Annotated[
        list[str] | None,
        typer.Option("--source", metavar="GLOB", help="Only documents whose path matches this glob."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="Only documents modified since: 7d, 24h or 2026-01-31."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the answer cache.")
    ] = False,
    no_server: Annotated[
        bool, typer.Option("--no-server", help="Answer in this process even when `ragcli serve` runs.")
    ] = False,
    json_output: JsonOpt = False,
) -> int:
    """Answer a question from the indexed documents, with citations.

    On a terminal the request id is printed (dimmed) under the answer, for `ragcli feedback`.
    """
    from ragcli import app as service
    from ragcli.query import AskOptions
    from ragcli.retrieval.filters import Filters, parse_field_filters

    text = service.read_question(question)
    settings = _settings(
        {
            "retrieval.top_k": k,
            "retrieval.mode": mode,
            "rerank.enabled": rerank,
            "generation.provider": provider,
        },
        flag_names={"retrieval.top_k": "--k", "rerank.enabled": "--rerank/--no-rerank"},
    )
    exact, partial = parse_field_filters(filters or [])
    options = AskOptions(
        filters=Filters(
            sources=list(sources or []),
            fields=exact,
            contains=partial,
            since=service.since_timestamp(since, "--since") if since else None,
        )
    )
    state.skip_teardown = True
    return service.run_ask(
        settings, text, options, json_output=json_output, use_cache=not no_cache, use_server=not no_server
    )


@app.command(examples=["ragcli serve", "ragcli serve --port 9000 --log-format json"])
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


@app.command(examples=["ragcli mcp"])
@_handle_errors
def mcp() -> int:
    """An MCP server on stdin/stdout with read-only `search` and `ask` tools (needs the mcp extra)."""
    from ragcli.mcp_server import run_mcp

    return run_mcp(_settings())


@app.command(examples=["ragcli reindex", "RAGCLI_EMBEDDING__MODEL=other-model ragcli reindex --json"])
@_handle_errors
def reindex(json_output: JsonOpt = False) -> int:
    """Rebuild the whole index from its source files with the configured embedder and chunker."""
    from ragcli import app as service

    return service.run_reindex(_settings(), json_output=json_output)


@app.command(examples=["ragcli doctor", "ragcli doctor --repair", "ragcli doctor --json | jq .remaining"])
@_handle_errors
def doctor(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Rebuild what can be rebuilt: the index from the files and the chunk-vector cache (nothing "
            "re-embedded), the journal from the index, the full-text and vector indexes; move damaged caches "
            "and event logs aside; make the state private.",
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> int:
    """Check the index, corpus journal, search indexes, caches, event log, lock and file modes.

    Exit 0 when all is well (after --repair), 6 when problems are found or remain.
    """
    from ragcli.app.doctor import run_doctor

    return run_doctor(_settings(), fix=repair, json_output=json_output)


@config_app.command(
    "show",
    examples=[
        "ragcli config show",
        "ragcli config show --json | jq .home",
        "ragcli config show --defaults > .ragcli.toml",
    ],
)
@_handle_errors
def config_show(
    defaults: Annotated[
        bool,
        typer.Option(
            "--defaults", help="Print a commented example config: every key, its allowed values, its default."
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> int:
    """Print every configuration value and where it came from (default, file, env, flag), the state directory and why it was chosen."""
    from ragcli import app as service

    if defaults:  # needs no settings: works anywhere, even with a broken config
        return service.show_default_config(json_output=json_output)
    return service.show_config(_settings(), json_output=json_output)


@dlq_app.command("list", examples=["ragcli dlq list", "ragcli dlq list | cut -f1"])
@_handle_errors
def dlq_list(json_output: JsonOpt = False) -> int:
    """List the documents that failed, with the reason and the number of attempts (tab-separated when piped)."""
    from ragcli import app as service

    return service.dlq_list(_settings(), json_output=json_output)


@dlq_app.command("retry", examples=["ragcli dlq retry"])
@_handle_errors
def dlq_retry(json_output: JsonOpt = False) -> int:
    """Ingest every failed document again, whatever its attempt count."""
    from ragcli import app as service

    return service.dlq_retry(_settings(), json_output=json_output)


@dlq_app.command("clear", examples=["ragcli dlq clear"])
@_handle_errors
def dlq_clear(json_output: JsonOpt = False) -> int:
    """Empty the dead letter file (the documents stay unindexed until they change or are retried)."""
    from ragcli import app as service

    return service.dlq_clear(_settings(), json_output=json_output)


@cache_app.command("stats", examples=["ragcli cache stats", "ragcli cache stats --json"])
@_handle_errors
def cache_stats(json_output: JsonOpt = False) -> int:
    """Entries, size, hits and misses of each cache."""
    from ragcli import app as service

    return service.cache_stats(_settings(), json_output=json_output)


@cache_app.command("clear", examples=["ragcli cache clear", "ragcli cache clear --kind answers"])
@_handle_errors
def cache_clear(
    kinds: Annotated[
        list[str] | None,
        typer.Option("--kind", metavar="KIND", help="answers or embeddings (repeatable); default: all."),
    ] = None,
    json_output: JsonOpt = False,
) -> int:
    """Empty the caches."""
    from ragcli import app as service

    return service.cache_clear(_settings(), kinds or [], json_output=json_output)


@app.command(
    examples=[
        "ragcli stats",
        "ragcli stats --since 7d --json",
        "ragcli stats --report weekly.md",
        "ragcli stats --check || notify-team",
        "ragcli stats --from /srv/web1/.ragcli --from /srv/web2/.ragcli",
    ]
)
@_handle_errors
def stats(
    since: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="Window: 24h, 7d or a date (default: everything)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write a Markdown report (and a PNG histogram).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 6 when a limit in the thresholds section of the config is breached.")
    ] = False,
    from_dirs: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            metavar="DIR",
            help="Merge the event logs of these state directories (or events.sqlite3 files), one per "
            "machine, instead of the local log; repeatable.",
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> int:
    """Latency percentiles, cache hit rate, failures, staleness and cost from the local event log (or several machines' logs)."""
    from ragcli import app as service

    return service.run_stats(
        _settings(), since=since, json_output=json_output, report=report, check=check, sources=from_dirs
    )


@history_app.callback()
@_handle_errors
def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, help="How many questions to list.")] = 20,
    refused: Annotated[bool, typer.Option("--refused", help="Only questions the answer step refused.")] = False,
    degraded: Annotated[bool, typer.Option("--degraded", help="Only degraded answers.")] = False,
    since: SinceOpt = None,
    json_output: JsonOpt = False,
) -> int:
    """Past questions with their answer, request id, cache outcome, latency and feedback (newest first)."""
    if ctx.invoked_subcommand is not None:
        return EXIT_OK
    from ragcli import app as service

    return service.run_history(
        _settings(),
        limit=limit,
        refused=refused,
        degraded=degraded,
        since=since,
        json_output=json_output,
    )


@history_app.command("show", examples=["ragcli history show 3f2a9c", "ragcli history show 3f2a9c --json"])
@_handle_errors
def history_show(
    request_id: Annotated[
        str, typer.Argument(metavar="ID", help="A request id from `ragcli history`, or its first characters.")
    ],
    json_output: JsonOpt = False,
) -> int:
    """One past question in full: the answer, its sources, timings and feedback."""
    from ragcli import app as service

    return service.run_history_show(_settings(), request_id, json_output=json_output)


@app.command(
    examples=[
        "ragcli feedback 3f2a9c1e up",
        'ragcli feedback 3f2a9c1e down --note "cites the 2019 manual"',
    ]
)
@_handle_errors
def feedback(
    request_id: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="The request id printed under the answer (or by `ragcli history`)."
        ),
    ],
    rating: Annotated[str, typer.Argument(metavar="RATING", help="up or down (any case).")],
    note: Annotated[str | None, typer.Option(metavar="TEXT", help="A comment to keep with the rating.")] = None,
    json_output: JsonOpt = False,
) -> int:
    """Rate an answer; `ragcli stats` reports the satisfaction rate. A second rating replaces the first."""
    from ragcli import app as service

    return service.run_feedback(_settings(), request_id, rating, note, json_output=json_output)


@eval_app.command(
    "retrieval",
    examples=[
        "ragcli eval retrieval ./scifact --limit 100",
        "ragcli eval retrieval ./scifact --variant vector --variant hybrid+rerank --json",
    ],
)
@_handle_errors
def eval_retrieval(
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."),
    ],
    split: Annotated[str, typer.Option(metavar="NAME", help="qrels split to score.")] = "test",
    variants: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            metavar="VARIANT",
            help="vector, keyword, hybrid, each optionally +rerank (repeatable).",
        ),
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


@eval_app.command("qa", examples=["ragcli eval qa dev-v2.0.json --limit 200"])
@_handle_errors
def eval_qa(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="SQuAD 2.0 JSON file.")],
    limit: Annotated[
        int | None, typer.Option(help="Questions to ask (answerable and not, alternating).")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Answer provider: extractive, local or openai.",
            show_default="generation.provider = extractive",
        ),
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


@eval_app.command(
    "golden",
    examples=[
        "ragcli eval golden golden.jsonl --min-recall 0.9 --min-mrr 0.7",
        "ragcli eval golden golden.jsonl --answers --json",
    ],
)
@_handle_errors
def eval_golden(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="JSONL: question, expected_sources, optional expected_answer."),
    ],
    k: Annotated[int, typer.Option("--k", help="Sources considered per question.")] = 5,
    min_recall: Annotated[
        float | None, typer.Option(metavar="RATE", help="Exit 6 when recall@k is below this.")
    ] = None,
    min_mrr: Annotated[float | None, typer.Option(metavar="RATE", help="Exit 6 when MRR is below this.")] = None,
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
    stdout_before = _stdout_identity()
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except typer.Abort:  # end of input at a prompt: as an interrupt, 128 + SIGINT
        sys.stderr.write("Aborted.\n")
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 1 and _rich_closed_stdout(stdout_before):
            sys.exit(EXIT_OK)  # help text into `head -1`: the reader has what it wanted
        raise
    except BrokenPipeError:  # outside a command (help text into `head`): as quiet as inside one
        _discard_stdout()
        sys.exit(EXIT_OK)
    except Exception as exc:  # the last line of defence: never a bare traceback for a user
        if _is_usage_error(exc):  # a bad flag or value: "Error: … / Fix: …" as every error, exit 2
            _print_usage_error(exc)
            sys.exit(getattr(exc, "exit_code", 2))
        sys.stderr.write(f"Error: unexpected {type(exc).__name__}: {exc}\n")
        sys.stderr.write("  Fix: run again with -v for details, and report it if it persists.\n")
        if state.verbose:
            raise
        sys.exit(EXIT_INTERNAL)


def _is_usage_error(exc: BaseException) -> bool:
    """Click's usage errors (a bad option, value or command), whichever click typer bundles."""
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _print_usage_error(exc: Any) -> None:
    if not exc.format_message():  # bare `ragcli` or `ragcli dlq`: the help was shown, it says it all
        return
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "ragcli"
    sys.stderr.write(f"Error: {exc.format_message()}\n  Fix: see `{command} --help`.\n")


def run() -> None:
    """The console script and `python -m ragcli`: main(), then a fresh `ask` ends without interpreter
    teardown. main() itself returns by SystemExit as usual, so a program that calls it can go on."""
    try:
        main()
    except SystemExit as exc:
        if state.skip_teardown and (exc.code is None or isinstance(exc.code, int)):
            _end_process(exc.code or 0)
        raise


def _end_process(code: int) -> None:
    """End a fresh `ask` without tearing the interpreter down. Freeing onnxruntime's sessions, pylance's
    runtime and every module took 55–60 ms of a 0.64 s cache miss (benchmarks/cold_start.py), for memory
    the kernel takes back anyway. The atexit handlers still run (logging, the telemetry batch, waiting
    for a prefetch thread), and stdout and stderr are flushed; a live non-daemon thread, which a normal
    exit would wait for, means the ordinary way out."""
    import atexit
    import contextlib
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that closed the pipe has what it wanted
            stream.flush()
    os._exit(code)


def _stdout_identity() -> tuple[int, int] | None:
    try:
        st = os.fstat(1)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _rich_closed_stdout(before: tuple[int, int] | None) -> bool:
    """Typer prints --help through a Rich console of its own, which, when the reader closes the pipe,
    points stdout at os.devnull and exits 1. Importing Rich up front to change that would slow every
    command, so the exit is recognised after the fact: stdout was something else and is now devnull."""
    if before is None:
        return False
    try:
        now, null = os.fstat(1), Path(os.devnull).stat()
    except OSError:
        return False
    return (now.st_dev, now.st_ino) != before and (now.st_dev, now.st_ino) == (null.st_dev, null.st_ino)
