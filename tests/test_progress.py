"""Progress under cron: lines when another 10% of the files is done or a minute passed, one per burst."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ragcli.app.progress import _LogObserver


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines() -> Iterator[list[tuple[float, str]]]:
    """Progress lines with the (fake) time they were written."""
    written: list[tuple[float, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Progress:"):
                written.append((clock.now, record.getMessage()))

    handler = Keep()
    ragcli_logger = logging.getLogger("ragcli")
    ragcli_logger.addHandler(handler)
    old_level = ragcli_logger.level
    ragcli_logger.setLevel(logging.INFO)
    try:
        yield written
    finally:
        ragcli_logger.removeHandler(handler)
        ragcli_logger.setLevel(old_level)


clock = Clock()


def _observer(total: int) -> _LogObserver:
    clock.now = 0.0
    observer = _LogObserver(clock=clock)
    observer.started(total)
    return observer


def test_files_committed_in_one_burst_give_one_line_with_the_state_after_it(
    lines: list[tuple[float, str]],
) -> None:
    observer = _observer(100)
    clock.now = 17.0
    observer.chunks_found(700)
    observer.embedded(700)
    for n in range(58):  # one write batch commits 58 files at once
        observer.file_done(f"/d/{n}.md", "added")
    clock.now = 17.2
    observer.chunks_found(10)  # the next file is read: the burst is over
    clock.now = 19.0
    observer.embedded(10)  # under 5 s since the last line: nothing new to say yet
    clock.now = 40.0
    for n in range(58, 100):
        observer.file_done(f"/d/{n}.md", "added")
    assert lines == [
        (17.2, "Progress: 58/100 files, 700/710 chunks done"),
        (40.0, "Progress: 100/100 files, 710/710 chunks done"),
    ]


def test_a_run_that_ends_within_seconds_logs_no_progress_line(lines: list[tuple[float, str]]) -> None:
    """An incremental run over mostly unchanged files: the summary line after it says everything."""
    observer = _observer(143)
    for n in range(143):
        clock.now += 0.01
        observer.file_done(f"/d/{n}.md", "unchanged")
        if n % 10 == 0:
            observer.chunks_found(2)  # a changed file among them
            observer.embedded(2)
    assert lines == []


def test_a_huge_file_gets_a_line_a_minute_while_it_is_embedded(lines: list[tuple[float, str]]) -> None:
    observer = _observer(1)
    observer.chunks_found(6703)
    for _ in range(300):  # ten minutes of batches, every 2 s
        clock.now += 2.0
        observer.embedded(22)
    observer.file_done("/d/huge.pdf", "added")  # right after a line: the summary line says the rest
    assert [t for t, _ in lines] == [60.0 * m for m in range(1, 11)]
    assert lines[-1][1] == "Progress: 0/1 files, 6600/6703 chunks done"
