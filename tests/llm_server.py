"""A real OpenAI-compatible chat server on loopback, for tests: llama.cpp's own HTTP server (started by
the `xllamacpp` wheel) running the real SmolLM2-135M-Instruct GGUF.

Requests reach it through a small front on another loopback port that forwards bytes unchanged (so the
client parses llama.cpp's real JSON and server-sent events) and that can hold each request back for
`delay_s` seconds, which is how a test makes the server too slow for the client's timeout.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ragcli.generation.server import start_llama_server

API_KEY = "test-key-for-the-loopback-llm"
# Hop-by-hop or re-framed by the front: the body is relayed as it comes and the connection then closes.
_NOT_RELAYED = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class LLMServer:
    def __init__(self, model_path: Path, *, n_ctx: int = 2048, threads: int = 1) -> None:
        self.llama = start_llama_server(model_path, n_ctx=n_ctx, threads=threads, api_key=API_KEY)
        upstream = urlsplit(self.llama.listening_address)
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.delay_s = 0.0
        self.requests = 0
        self.stopping = threading.Event()
        self._front = _Front(self)
        self._thread = threading.Thread(target=self._front.serve_forever, name="llm-front", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._front.server_address[1]}/v1"

    def close(self) -> None:
        self.stopping.set()
        self._front.shutdown()
        self._front.server_close()
        self._thread.join(timeout=10)
        self.llama = None  # the last reference: llama.cpp's server stops and frees the model


class _Front(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: LLMServer) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up has closed its socket; nothing to report


class _Relay(BaseHTTPRequestHandler):
    server: _Front

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        owner = self.server.owner
        owner.requests += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if owner.delay_s and owner.stopping.wait(owner.delay_s):
            return
        if self._client_gone():
            return  # it timed out while held back: do not make llama.cpp answer nobody
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
        upstream = http.client.HTTPConnection(*owner.upstream, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in _NOT_RELAYED:
                    self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            while chunk := response.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            upstream.close()

    def _client_gone(self) -> bool:
        connection: socket.socket = self.connection
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return False
        try:
            return connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
