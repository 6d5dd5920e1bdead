"""Helpers for the serve and mcp tests: a small indexed home with a config file, a real `ragcli serve`
process on an ephemeral loopback port, and a stand-in OpenAI-compatible chat server whose answers can be
held back (how a test keeps a request in flight)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ragcli.serve.client import NoDelayConnection
from tests.test_query import DOCS as QUERY_DOCS

REPO = Path(__file__).resolve().parents[1]

# The query tests' small corpus: pumps.md, valves.md, safety.txt, notes/history.md.
DOCS = QUERY_DOCS


def write_docs(root: Path, docs: dict[str, str]) -> Path:
    for name, text in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def write_config(directory: Path, *, llm_url: str = "http://127.0.0.1:9/v1", **serve: Any) -> Path:
    lines = [
        'home = "state"',
        "[generation]",
        f'base_url = "{llm_url}"',
        'api_key_env = "SERVE_TEST_LLM_KEY"',
        "timeout_s = 30",
        "[serve]",
        "port = 0",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in serve.items()]
    path = directory / ".ragcli.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def child_env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update(RAGCLI_CONFIG=str(config), PYTHONPATH=str(REPO), SERVE_TEST_LLM_KEY="test-key", **extra)
    return env


def run_cli(config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args],
        env=env or child_env(config),
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    home: Path
    log: Path
    token: str | None = None

    def request(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
        headers: dict[str, str] | None = None, timeout: float = 120,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = NoDelayConnection("127.0.0.1", self.port, timeout=timeout)
        sent = dict(headers or {})
        if self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _, data = self.request(method, path, body, **kw)
        return status, json.loads(data)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


def start_server(config: Path, env: dict[str, str], *, token: str | None = None, ready: bool = True) -> Server:
    home = config.parent / "state"
    serve_json = home / "serve.json"
    serve_json.unlink(missing_ok=True)
    log = config.parent / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragcli", "serve"], env=env, cwd=config.parent, stdout=fh, stderr=fh
        )
    deadline = time.monotonic() + 180
    port = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            info = json.loads(serve_json.read_text())
            if info["pid"] == proc.pid:
                port = int(info["port"])
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    if port is None:
        proc.kill()
        raise AssertionError(f"server did not start:\n{log.read_text()}")
    server = Server(proc, port, home, log, token)
    while ready and time.monotonic() < deadline:
        status, _, _ = server.request("GET", "/readyz")
        if status == 200:
            return server
        time.sleep(0.1)
    if ready:
        server.stop(signal.SIGKILL)
        raise AssertionError(f"server never became ready:\n{log.read_text()}")
    return server


@dataclass
class SlowLLM:
    """An OpenAI-compatible /chat/completions that answers after `delay_s`, citing passage [1]."""

    delay_s: float = 0.0
    requests: int = 0
    _server: Any = None
    _thread: Any = None
    closing: threading.Event = field(default_factory=threading.Event)

    def start(self) -> SlowLLM:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.closing.wait(owner.delay_s)
                body = json.dumps(
                    {
                        "choices": [{"message": {"role": "assistant", "content": "From the manual [1]."}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 4},
                        "model": "slow-test-model",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()


def concurrently(calls: list[Any]) -> Callable[[], list[Any]]:
    """Start the callables at once on threads; the returned function waits and gives their results in order."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()

    def join() -> list[Any]:
        for t in threads:
            t.join(timeout=120)
        return results

    return join
