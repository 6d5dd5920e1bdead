"""The client side of `ragcli ask` through a running server, on the standard library alone.

`ask_via_server` returns the server's answer, or None whenever the in-process pipeline should answer
instead: no serve.json, a dead pid, another configuration, a refused connection, a server still
starting (503), saturated (429) or failing. It never raises for those; the caller falls back.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from ragcli.serve.discovery import config_digest, pid_alive, read_serve_file

if TYPE_CHECKING:
    from ragcli.config import Settings

logger = logging.getLogger(__name__)

_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


class NoDelayConnection(http.client.HTTPConnection):
    """http.client sends the headers and the body in two writes; with Nagle's algorithm on, the body then
    waits for the server's delayed ACK of the headers: a flat 40 ms on every request over loopback."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def ask_via_server(settings: Settings, payload: dict[str, Any]) -> dict[str, Any] | None:
    info = read_serve_file(settings)
    if info is None:
        return None
    if not pid_alive(info.pid):
        logger.debug("serve.json names pid %d, which is gone; answering in-process", info.pid)
        return None
    if info.digest != config_digest(settings):
        logger.info("The running server uses another configuration; answering in-process")
        return None
    host = "127.0.0.1" if info.host in _WILDCARD_HOSTS else info.host
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token_env = settings.config.serve.token_env
    token = os.environ.get(token_env) if token_env else None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    # A question may legitimately take as long as the generator's own timeout.
    timeout = settings.config.generation.timeout_s + 10
    conn = NoDelayConnection(host, info.port, timeout=timeout)
    try:
        conn.request("POST", "/v1/ask", body=json.dumps(payload).encode(), headers=headers)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        logger.debug("The server at %s:%d did not answer (%s); answering in-process", host, info.port, exc)
        return None
    finally:
        conn.close()
    if response.status != 200:
        logger.info("The server answered %d (%s); answering in-process", response.status, _error_text(body))
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))[:200]
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")


def ask_payload(settings: Settings, question: str, options: Any, *, use_cache: bool) -> dict[str, Any]:
    """The /v1/ask body for the CLI's effective settings and filters (so flags and env apply as in-process)."""
    config = settings.config
    filters = options.filters
    return {
        "question": question,
        "k": options.k or config.retrieval.top_k,
        "mode": options.mode or config.retrieval.mode,
        "rerank": config.rerank.enabled if options.rerank is None else options.rerank,
        "provider": config.generation.provider,
        "no_cache": not (use_cache and config.cache.enabled),
        "filters": {
            "fields": [f"{key}={value}" for key, value in filters.fields],
            "sources": list(filters.sources),
            "since": filters.since,
        },
    }
