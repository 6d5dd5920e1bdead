"""Progress reporting: a Rich bar on a terminal, plain timestamped log lines under cron and in pipes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ragcli.app.console import stderr

logger = logging.getLogger("ragcli")


class _RichObserver:
    """Two bars: files, and chunks embedded out of the chunks found so far (its total grows as files
    are chunked), which moves once per embedded batch, also inside one huge file."""

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
        self.task = self.progress.add_task("Files", total=None, info="")
        self.chunk_task = self.progress.add_task("Chunks", total=0, info="")
        self.found = 0
        self.chunks = 0
        self.start = time.perf_counter()

    def started(self, total_files: int) -> None:
        self.progress.update(self.task, total=total_files)

    def file_done(self, source: str, outcome: str) -> None:
        if outcome != "removed":
            self.progress.advance(self.task)

    def chunks_found(self, chunks: int) -> None:
        self.found += chunks
        self.progress.update(self.chunk_task, total=self.found)

    def embedded(self, chunks: int) -> None:
        self.chunks += chunks
        rate = self.chunks / max(time.perf_counter() - self.start, 1e-9)
        self.progress.update(self.chunk_task, completed=self.chunks, info=f"{rate:.0f} chunks/s")


class _LogObserver:
    """Under cron: a line when another 10% of the files is done, or a minute after the last line while
    work goes on; each written when it happens. Files finish in bursts (a write batch commits hundreds
    at once; unchanged files pass in a blink), so a 10% line waits for the burst to end, at the next
    chunk event at least MIN_GAP_SECONDS after the last line, and reports the state after it: one line
    per burst, not a run of lines with one timestamp."""

    HEARTBEAT_SECONDS = 60.0
    MIN_GAP_SECONDS = 5.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.total = 0
        self.done = 0
        self.next_report = 0.1
        self.due = False
        self.found = 0
        self.chunks = 0
        self.last_line = clock()

    def started(self, total_files: int) -> None:
        self.total = total_files
        logger.info("Scanning %d files", total_files)
        self.last_line = self.clock()

    def file_done(self, source: str, outcome: str) -> None:
        if outcome == "removed":
            logger.info("Removed %s (file is gone)", source)
            return
        self.done += 1
        while self.total and self.done / self.total >= self.next_report:
            self.next_report += 0.1
            self.due = True
        if self._silent_for(self.HEARTBEAT_SECONDS):
            self._line()
        elif self.done == self.total:
            self._line_if_due()

    def chunks_found(self, chunks: int) -> None:
        self.found += chunks
        self._line_if_due()

    def embedded(self, chunks: int) -> None:
        self.chunks += chunks
        if self._silent_for(self.HEARTBEAT_SECONDS):
            self._line()
        else:
            self._line_if_due()

    def _line_if_due(self) -> None:
        if self.due and self._silent_for(self.MIN_GAP_SECONDS):
            self._line()

    def _silent_for(self, seconds: float) -> bool:
        return self.clock() - self.last_line >= seconds

    def _line(self) -> None:
        logger.info(
            "Progress: %d/%d files, %d/%d chunks done", self.done, self.total, self.chunks, self.found
        )
        self.last_line = self.clock()
        self.due = False


@contextmanager
def observer_for(json_output: bool) -> Iterator[Any]:
    if stderr.is_terminal and not json_output:
        observer = _RichObserver()
        with observer.progress:
            yield observer
    else:
        yield _LogObserver()


@contextmanager
def query_progress(label: str, json_output: bool) -> Iterator[Any]:
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
