"""Shared output for every command: the two consoles, logging set-up, JSON output and display helpers.

Results go to stdout (plain text or one JSON object with --json); logs and progress go to stderr, so
`ragcli ask … --json | jq` and cron mail both stay clean.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

logger = logging.getLogger("ragcli")



class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich exits 1 here. A reader that stopped early (`ragcli ask … | head -1`) is a success: the
        # CLI decides that, after the answer has been recorded.
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


# No highlighting of results: Rich would colour the numbers inside an answer, a path or a heading ("AM-5").
stdout = _Console(soft_wrap=True, highlight=False)
stderr = _Console(stderr=True, soft_wrap=True)


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


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None, header: bool = True
) -> None:
    """A Rich table on a terminal; tab-separated lines when piped, so no cell is ever cut to fit a width
    (`ragcli dlq list | cut -f1`)."""
    if stdout.is_terminal:
        table = Table(*columns, title=title, show_header=header, box=None if not header else box.HEAVY_HEAD)
        for row in rows:
            table.add_row(*(str(cell) for cell in row))
        stdout.print(table)
        return
    lines = ["\t".join(columns)] if header else []
    lines += ["\t".join(_tsv_cell(cell) for cell in row) for row in rows]
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


def _tsv_cell(value: Any) -> str:
    return " ".join(str(value).replace("\t", " ").splitlines())


def since_timestamp(value: str, flag: str = "--since") -> float:
    """Seconds since the epoch for an age or a date, with a warning when it lies in the future (which
    would silently select nothing)."""
    import time

    from ragcli.retrieval.filters import parse_since

    when = parse_since(value)
    if when > time.time():
        stderr.print(
            f"[yellow]Warning:[/yellow] {flag} {value} is in the future, so nothing can match.",
            highlight=False,
        )
    return when



def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def cite(c: dict[str, Any]) -> str:
    source = display_path(str(c["source"]))
    if c.get("page"):
        return f"{source}, page {c['page']}"
    if c.get("heading"):
        return f"{source} § {c['heading']}"
    return source


def display_path(source: str) -> str:
    try:
        return str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        return source
