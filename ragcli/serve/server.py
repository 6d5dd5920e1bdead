"""Running `ragcli serve`: the bind check, uvicorn, signals and `<home>/serve.json`.

SIGTERM and SIGINT stop accepting connections, let the requests in flight finish and exit 0 (uvicorn
alone would re-raise the signal after draining and die by it). SIGHUP reloads the configuration.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ragcli.errors import EXIT_OK, ConfigError, UsageError
from ragcli.memory import limit_malloc_arenas
from ragcli.serve.discovery import ServeInfo, config_digest, remove_serve_file, write_serve_file

if TYPE_CHECKING:
    from ragcli.config import Settings

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 30


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_token(settings: Settings) -> str | None:
    """The bearer token; required for any bind but loopback, and used on loopback too when set."""
    cfg = settings.config.serve
    token = os.environ.get(cfg.token_env, "").strip() if cfg.token_env else ""
    if not token and not is_loopback(cfg.host):
        raise UsageError(
            f"Refusing to listen on {cfg.host} without a token: anyone who can reach it could query the index.",
            hint=f"Set a long random token in the environment variable {cfg.token_env or 'named by [serve] token_env'}"
            " (e.g. `export RAGCLI_SERVE_TOKEN=$(openssl rand -hex 32)`), or bind 127.0.0.1.",
        )
    return token or None


def run_serve(settings: Settings, reload_settings: Callable[[], Settings]) -> int:
    try:
        import uvicorn

        from ragcli.serve.app import build_app
        from ragcli.serve.runtime import ServeRuntime
    except ImportError as exc:
        raise ConfigError(
            f"`ragcli serve` needs the serve extra ({exc.name} is not installed).",
            hint="pip install 'ragcli[serve]'",
        ) from None
    cfg = settings.config.serve
    token = serve_token(settings)
    limit_malloc_arenas()
    if cfg.log_format == "json":
        _json_access_lines()
    runtime = ServeRuntime(settings)
    app = build_app(runtime, token=token, log_format=cfg.log_format)
    config = uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_config=None,  # our logging set-up stays in charge
        access_log=False,  # AccessMiddleware writes one line per request itself
        lifespan="on",
        timeout_graceful_shutdown=DRAIN_SECONDS,
        server_header=False,
    )
    sock = bind_socket(cfg.host, cfg.port)
    server = _Server(config)
    started = time.time()

    def publish(current: Settings) -> None:
        port = int(sock.getsockname()[1])
        info = ServeInfo(os.getpid(), cfg.host, port, started, config_digest(current), token is not None)
        write_serve_file(current, info)

    def reload() -> None:
        try:
            runtime.reload(reload_settings())
        except Exception as exc:  # a bad edit keeps the running configuration
            logger.error("Configuration not reloaded: %s", exc)

    def announce() -> None:
        publish(settings)
        logger.info("Serving on http://%s:%d (pid %d)", cfg.host, sock.getsockname()[1], os.getpid())

    server.on_started = announce
    server.on_sighup = reload
    runtime.on_reload = publish
    try:
        asyncio.run(server.serve([sock]))
    finally:
        remove_serve_file(runtime.settings, os.getpid())
        runtime.stop()
        sock.close()
    return EXIT_OK


def _json_access_lines() -> None:
    """Access lines as bare JSON objects on stderr, one per line, for log shippers."""
    import sys

    access = logging.getLogger("ragcli.serve.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off only on sockets that say they are TCP, and
    # with Nagle on every response (headers, then body) waited 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"Cannot listen on {host}:{port}: {exc.strerror}.",
            hint="Pick another port with --port (0 = any free port), or stop the server using it.",
        ) from None
    sock.set_inheritable(True)
    return sock


class _Server:
    """uvicorn.Server with our own signal handling (drain, exit 0, SIGHUP) and a started hook."""

    def __init__(self, config: Any) -> None:
        import uvicorn

        class Quiet(uvicorn.Server):
            def capture_signals(self) -> Any:
                import contextlib

                return contextlib.nullcontext()

        self.server = Quiet(config)
        self.on_started: Callable[[], Any] = lambda: None
        self.on_sighup: Callable[[], None] = lambda: None

    async def serve(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, self.on_sighup))
        watcher = asyncio.create_task(self._announce())
        try:
            await self.server.serve(sockets)
        finally:
            watcher.cancel()

    def _stop(self, sig: int) -> None:
        if self.server.should_exit:  # a second signal: stop waiting for requests
            self.server.force_exit = True
        logger.info("Received %s: finishing the requests in flight, then exiting", signal.Signals(sig).name)
        self.server.should_exit = True

    async def _announce(self) -> None:
        while not self.server.started:
            if self.server.should_exit:
                return
            await asyncio.sleep(0.02)
        self.on_started()
