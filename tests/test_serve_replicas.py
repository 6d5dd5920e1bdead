"""Served replicas: two `ragcli serve` processes on different ports, each with its own state directory,
against one index on object storage (moto) and one Redis cache."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import load_settings
from ragcli.ingest.pipeline import Ingestor
from tests.servers import RedisServer, S3Server
from tests.serving import DOCS, Server, child_env, start_server, write_config, write_docs

pytestmark = pytest.mark.slow

QUESTION = {"question": "How often must the impeller seal be replaced?", "k": 3}


def _wait_for(server: Server, body: dict[str, Any], text: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, data = server.json("POST", "/v1/ask", body)
        if status == 200 and text in data["answer"]:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"{server.port} never answered with {text!r}: {data}")
        time.sleep(0.25)


def test_two_replicas_share_answers_and_both_see_an_ingest(
    s3: S3Server, aws_env: dict[str, str], redis_srv: RedisServer, tmp_path: Path, onnx_embedder: Any
) -> None:
    shared = {
        "RAGCLI_STORE__URI": f"s3://{s3.new_bucket('replicas')}/index",
        "RAGCLI_CACHE__BACKEND": "redis",
        "RAGCLI_CACHE__REDIS_URL": redis_srv.new_url(),
    }
    docs = write_docs(tmp_path / "docs", DOCS)
    writer = load_settings(env={"RAGCLI_HOME": str(tmp_path / "writer"), **shared})
    Ingestor(writer, embedder=onnx_embedder).run([docs])

    servers: list[Server] = []
    try:
        for name in ("web1", "web2"):
            (tmp_path / name).mkdir()
            config = write_config(tmp_path / name, refresh_seconds=0.5, workers=1)
            servers.append(start_server(config, child_env(config, **shared)))
        web1, web2 = servers
        assert web1.port != web2.port

        status, first = web1.json("POST", "/v1/ask", QUESTION)
        assert status == 200 and first["cache"] is None and "2,000 hours" in first["answer"], first
        status, second = web2.json("POST", "/v1/ask", QUESTION)
        assert status == 200 and second["cache"] == "exact" and second["answer"] == first["answer"]

        # A third machine changes the cited document: both replicas stop serving the cached answer and
        # answer from the new index version.
        (docs / "pumps.md").write_text(
            "# Pumps\n\n## Service\n\nReplace the P-700 impeller seal every 5,000 hours of operation.\n",
            encoding="utf-8",
        )
        Ingestor(writer, embedder=onnx_embedder).run([docs])
        fresh = [_wait_for(server, QUESTION, "5,000 hours") for server in servers]
        assert "2,000" not in fresh[0]["answer"] and "2,000" not in fresh[1]["answer"]
        assert {answer["cache"] for answer in fresh} <= {None, "exact"}
    finally:
        for server in servers:
            server.stop(signal.SIGTERM)
