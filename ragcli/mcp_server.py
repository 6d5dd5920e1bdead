"""`ragcli mcp`: the index as read-only MCP tools over stdio, for coding agents and desktop assistants.

Tools:
- `search(question, k, mode)`: the passages, without generating an answer;
- `ask(question, k, mode)`: the `ask --json` object (answer, citations, timings…).

stdout carries the protocol, so everything else (logs) goes to stderr. The models load on the first
call and stay loaded. Every call runs on one worker thread: the pipeline then sees one caller at a time
(stdio has one client), and the event log's SQLite connection stays on the thread that opened it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ragcli.errors import EXIT_OK, ConfigError, RagcliError, UsageError

if TYPE_CHECKING:
    from ragcli.config import Settings

logger = logging.getLogger(__name__)

MODES = ("vector", "keyword", "hybrid")


class McpTools:
    """The tools' bodies, apart from the SDK so they are plain functions to test and to reason about."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Any = None
        # The journal's (current, settled) generations when the engine last opened the index.
        self._opened_at: tuple[int, int] | None = None
        self._telemetry: Any = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="ragcli-mcp")

    async def call(self, func: Any, *args: Any) -> Any:
        """Run a tool body on the worker; a domain error reaches the agent as its message and fix."""
        from mcp.server.mcpserver.exceptions import ToolError

        try:
            return await asyncio.wrap_future(self.pool.submit(func, *args))
        except RagcliError as exc:
            raise ToolError(str(exc)) from exc

    def _options(self, question: str, k: int | None, mode: str | None) -> Any:
        from ragcli.query import AskOptions

        if not question.strip():
            raise UsageError("The question is empty.")
        if k is not None and not 1 <= k <= 100:
            raise UsageError("k must be from 1 to 100.")
        if mode is not None and mode not in MODES:
            raise UsageError(f"mode must be one of {', '.join(MODES)}.")
        return AskOptions(k=k, mode=mode)

    def search(self, question: str, k: int | None = None, mode: str | None = None) -> dict[str, Any]:
        from ragcli.serve.payloads import search_json

        options = self._options(question, k, mode)
        started = time.perf_counter()
        engine, _ = self._fresh_engine()
        retrieval = engine.retrieve(question, options)
        return search_json(question, retrieval, (time.perf_counter() - started) * 1000)

    def ask(self, question: str, k: int | None = None, mode: str | None = None) -> dict[str, Any]:
        from ragcli.query import ask_with_cache

        options = self._options(question, k, mode)
        cpu_started = time.thread_time()
        engine, settled = self._fresh_engine()
        result, self._engine = ask_with_cache(
            self.settings, question, options, engine=engine, generation_cap=settled
        )
        self._record(result, time.thread_time() - cpu_started)
        return result

    def _fresh_engine(self) -> tuple[Any, int | None]:
        """The engine, with the index reopened when an ingest changed the corpus since it was opened,
        and the settled generation that index includes: an answer is filed under at most that one, so
        an answer from an older version never looks current (ask_with_cache, as `ragcli serve` does)."""
        from ragcli.cache.factory import open_journal
        from ragcli.query import QueryEngine

        try:
            journal = open_journal(self.settings)
            # Read before the index is opened: an ingest in between only makes answers look older.
            seen: tuple[int, int] | None = (journal.current(), journal.settled())
        except Exception:  # no readable journal: ask_with_cache then caches nothing
            logger.debug("Corpus journal unreadable", exc_info=True)
            seen = None
        if self._engine is None:
            self._engine = QueryEngine(self.settings)
        elif seen is None or seen != self._opened_at:
            self._engine.reopen_index()
        self._opened_at = seen
        return self._engine, None if seen is None else seen[1]

    def _record(self, result: dict[str, Any], cpu_seconds: float) -> None:
        from ragcli.telemetry.facade import Telemetry

        if self._telemetry is None:
            self._telemetry = Telemetry(self.settings)
        self._telemetry.record_ask(result, cpu_seconds)

    def close(self) -> None:
        def _close() -> None:
            if self._telemetry is not None:
                self._telemetry.close()

        self.pool.submit(_close).result(timeout=60)
        self.pool.shutdown(wait=True)


def build_mcp_server(settings: Settings) -> tuple[Any, McpTools]:
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.types import ToolAnnotations
    except ImportError as exc:
        raise ConfigError(
            f"`ragcli mcp` needs the mcp extra ({exc.name} is not installed).", hint="pip install 'ragcli[mcp]'"
        ) from None
    from ragcli import __version__

    tools = McpTools(settings)
    server = MCPServer(
        "ragcli",
        version=__version__,
        instructions="Search and ask questions over the documents indexed by ragcli. Answers cite their sources.",
    )
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    async def search(question: str, k: int | None = None, mode: str | None = None) -> dict[str, Any]:
        """The indexed passages most relevant to the question (no answer is generated).
        k: passages to return (default from the config); mode: vector, keyword or hybrid."""
        return dict(await tools.call(tools.search, question, k, mode))

    @server.tool(annotations=read_only)
    async def ask(question: str, k: int | None = None, mode: str | None = None) -> dict[str, Any]:
        """Answer the question from the indexed documents, with numbered citations of the sources used."""
        return dict(await tools.call(tools.ask, question, k, mode))

    return server, tools


def run_mcp(settings: Settings) -> int:
    server, tools = build_mcp_server(settings)
    try:
        server.run("stdio")
    finally:
        tools.close()
    return EXIT_OK
