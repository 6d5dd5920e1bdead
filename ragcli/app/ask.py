"""`ragcli ask`: runs the cached query pipeline and prints the answer with its sources.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ragcli.app.console import cite, print_json, stderr, stdout
from ragcli.config import Settings
from ragcli.errors import EXIT_OK, StoreError, UsageError


def read_question(argument: str | None) -> str:
    """The question argument, or standard input for `-` (and for no argument when input is piped)."""
    if argument is not None and argument != "-":
        return argument
    if sys.stdin is None or sys.stdin.isatty():
        if argument == "-":
            raise UsageError(
                "`ragcli ask -` reads the question from standard input, but that is a terminal.",
                hint='Pipe the question in: echo "How do I …?" | ragcli ask -',
            )
        raise UsageError("No question given.", hint='ragcli ask "How do I …?"  (or pipe it in: … | ragcli ask -)')
    return sys.stdin.read().strip()


def check_question(settings: Settings, question: str) -> None:
    limit = settings.config.retrieval.max_question_chars
    if not question.strip():
        raise UsageError("The question is empty.", hint='Ask something: ragcli ask "How do I …?"')
    if len(question) > limit:
        raise UsageError(
            f"The question is {len(question):,} characters long; the limit is {limit:,} "
            "(retrieval.max_question_chars).",
            hint="Ask a shorter question, or raise retrieval.max_question_chars in the config "
            "(RAGCLI_RETRIEVAL__MAX_QUESTION_CHARS).",
        )


def require_state(settings: Settings) -> None:
    """`ragcli ask` reads state and never creates it: with no state directory and no local index there
    is nothing to answer from, and a stray empty .ragcli/ would only mislead the next discovery."""
    uri = settings.store_uri
    if settings.home.exists() or "://" in uri or Path(uri).exists():
        return
    raise StoreError(
        f"There is no index here: the state directory {settings.home} does not exist "
        f"(chosen as {settings.home_reason}).",
        hint="Run ragcli from inside the project folder you ingested, set RAGCLI_HOME or --config, "
        "or build an index with `ragcli ingest PATH`. `ragcli config show` explains the choice.",
    )


def run_ask(
    settings: Settings,
    question: str,
    options: Any,
    *,
    json_output: bool,
    use_cache: bool = True,
    use_server: bool = True,
) -> int:
    check_question(settings, question)
    if use_server:
        from ragcli.serve.client import ask_payload, ask_via_server

        served = ask_via_server(settings, ask_payload(settings, question, options, use_cache=use_cache))
        if served is not None:  # the server recorded the event itself
            _print_answer(served | {"via": "server"}, [], json_output)
            return EXIT_OK
    from ragcli.query import ask_with_cache

    require_state(settings)
    streaming = stdout.is_terminal and not json_output and settings.config.generation.stream
    streamed: list[str] = []

    def on_token(token: str) -> None:
        streamed.append(token)
        stdout.print(token, end="", markup=False, highlight=False)

    cpu_started = time.process_time()
    result, _ = ask_with_cache(
        settings, question, options, use_cache=use_cache, on_token=on_token if streaming else None
    )
    result["via"] = "process"
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
    _print_trust(result)
    if result["citations"]:
        stdout.print()
        stdout.print("[bold]Sources[/bold]")
        for c in result["citations"]:
            mark = "" if c.get("cited", True) else "  (not cited)"
            stdout.print(f"[{c['n']}] {cite(c)}  (score {c['score']:.3f}){mark}", markup=False)
    if stderr.is_terminal and result.get("request_id"):
        # Dimmed and on stderr: there when rating the answer, absent from what a pipe receives.
        request_id = result["request_id"]
        stderr.print(
            f"request id {request_id} · rate it: ragcli feedback {request_id} up", style="dim", markup=False
        )


def _print_trust(result: dict[str, Any]) -> None:
    """Why an answer was refused, and which of its sentences its sources do not back."""
    confidence = result.get("confidence")
    shown = "" if confidence is None else f" (confidence {confidence:.2f})"
    if result.get("refused") and result.get("refused_reason"):
        stderr.print(f"Refused: {result['refused_reason'].replace('_', ' ')}{shown}", markup=False, highlight=False)
    for sentence in result.get("unsupported_sentences") or []:
        stderr.print(f"Not supported by its source: {sentence}", style="yellow", markup=False, highlight=False)
    citations = result.get("citations") or []
    if not result.get("refused") and citations and not any(c.get("cited", True) for c in citations):
        # An LLM that cited nothing: nothing was checked, so say so where a reader sees it, not in a log.
        stderr.print("Cites none of its sources: check it against them.", style="yellow", highlight=False)
