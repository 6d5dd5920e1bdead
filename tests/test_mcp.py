"""`ragcli mcp` driven by the official SDK's stdio client: the real subprocess, the real protocol."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import load_settings
from ragcli.ingest.pipeline import Ingestor
from tests.serving import DOCS, child_env, write_config, write_docs

pytestmark = pytest.mark.slow

mcp = pytest.importorskip("mcp")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, onnx_embedder: Any) -> Path:
    directory = tmp_path_factory.mktemp("mcp")
    path = write_config(directory)
    Ingestor(load_settings(path, env={}), embedder=onnx_embedder).run([write_docs(directory / "docs", DOCS)])
    return path


async def _session_calls(config: Path) -> dict[str, Any]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "ragcli", "mcp"], env=child_env(config), cwd=str(config.parent)
    )
    with (config.parent / "mcp-stderr.log").open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            search = await session.call_tool("search", {"question": "relief valve pressure", "k": 2})
            ask = await session.call_tool("ask", {"question": "At what pressure does the relief valve open?"})
            bad = await session.call_tool("search", {"question": "   "})
    return {"tools": tools, "search": search, "ask": ask, "bad": bad}


def test_mcp_lists_read_only_tools_and_answers_search_and_ask(config: Path) -> None:
    calls = asyncio.run(asyncio.wait_for(_session_calls(config), timeout=240))

    tools = {tool.name: tool for tool in calls["tools"].tools}
    assert set(tools) == {"search", "ask"}
    for tool in tools.values():
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert "question" in tool.input_schema["properties"]

    search = calls["search"]
    assert not search.is_error, search.content
    passages = search.structured_content["passages"]
    assert 1 <= len(passages) <= 2 and passages[0]["source"].endswith("valves.md")

    ask = calls["ask"]
    assert not ask.is_error, ask.content
    assert "8 bar" in ask.structured_content["answer"]
    assert ask.structured_content["citations"][0]["source"].endswith("valves.md")

    bad = calls["bad"]
    assert bad.is_error and "empty" in bad.content[0].text


def test_the_mcp_tools_see_an_ingest_by_another_process_and_never_serve_the_old_answer(
    tmp_path: Path, onnx_embedder: Any
) -> None:
    from ragcli.mcp_server import McpTools

    path = write_config(tmp_path)
    settings = load_settings(path, env={})
    docs = write_docs(tmp_path / "docs", DOCS)
    Ingestor(settings, embedder=onnx_embedder).run([docs])
    tools = McpTools(settings)
    question = "At what pressure does the relief valve open?"
    first = tools.ask(question)
    assert "8 bar" in first["answer"]
    assert tools.ask(question)["cache"] == "exact"

    (docs / "valves.md").write_text(
        "# Valves\n\nThe V-12 relief valve opens at 11 bar of pressure since the 2026 refit.\n", encoding="utf-8"
    )
    Ingestor(settings, embedder=onnx_embedder).run([docs])  # another process, as far as the tools know
    fresh = tools.ask(question)
    assert fresh["cache"] is None and "11 bar" in fresh["answer"]
    assert "11 bar" in tools.search("relief valve pressure", k=1)["passages"][0]["text"]
