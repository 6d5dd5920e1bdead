"""The HTTP API of `ragcli serve`, on Starlette (chosen over FastAPI for its lower per-request cost:
docs/benchmarks.md, "ragcli serve").

    POST /v1/ask       {question, k, mode, rerank, filters, provider, no_cache} -> the `ask --json` object
    POST /v1/search    {question, k, mode, rerank, filters}                     -> passages, no generation
    POST /v1/feedback  {request_id, rating, note}
    GET  /v1/stats     ?since=7d                                                 -> the `stats --json` object
    GET  /healthz      alive;  GET /readyz  index open and models loaded (503 until then)
    GET  /metrics      Prometheus text format

`filters` is a list of "key=value" strings (as `--filter`), or an object with `fields` (that list),
`sources` (globs, as `--source`) and `since` ("7d", a date, or seconds since the epoch).

Errors are `{"error": message, "hint": fix}` with a 4xx/5xx status, never a stack trace. With a token
configured every endpoint but /healthz and /readyz needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragcli.errors import ConfigError, RagcliError, UsageError
from ragcli.serve.metrics import CONTENT_TYPE
from ragcli.serve.runtime import AskRequest, Busy, NotReady, ServeRuntime

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("ragcli.serve.access")

MODES = ("vector", "keyword", "hybrid")
ASK_KEYS = {"question", "k", "mode", "rerank", "filters", "provider", "no_cache"}
SEARCH_KEYS = {"question", "k", "mode", "rerank", "filters"}
OPEN_PATHS = {"/healthz", "/readyz"}


class HTTPError(Exception):
    def __init__(self, status: int, message: str, hint: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.headers = headers or {}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, hint: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message, "hint": hint}, status, headers)


# ----- request bodies ----------------------------------------------------------------------------------
async def read_json_body(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, refusing more than `limit` bytes whether or not Content-Length says so."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"The request body is larger than {limit} bytes.", "Send a shorter question.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"The request body is larger than {limit} bytes.", "Send a shorter question.")
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "The request body must be a JSON object.", 'Send {"question": "…"}.')
    return data


def parse_question_request(body: dict[str, Any], allowed: set[str], max_chars: int) -> tuple[str, Any]:
    from ragcli.query import AskOptions

    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPError(400, f"Unknown field(s): {', '.join(unknown)}.", f"Allowed: {', '.join(sorted(allowed))}.")
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        raise HTTPError(400, "The question is missing or empty.", 'Send {"question": "How do I …?"}.')
    if len(question) > max_chars:
        raise HTTPError(
            400,
            f"The question has {len(question)} characters; the limit is {max_chars}.",
            "Shorten it, or raise [serve] max_question_chars.",
        )
    k = body.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000):
        raise HTTPError(400, "k must be a whole number from 1 to 1000.")
    mode = body.get("mode")
    if mode is not None and mode not in MODES:
        raise HTTPError(400, f"mode must be one of {', '.join(MODES)}.")
    rerank = body.get("rerank")
    if rerank is not None and not isinstance(rerank, bool):
        raise HTTPError(400, "rerank must be true, false or null.")
    return question, AskOptions(k=k, mode=mode, rerank=rerank, filters=parse_filters(body.get("filters")))


def parse_filters(raw: Any) -> Any:
    from ragcli.retrieval.filters import Filters, parse_field_filter, parse_since

    if raw is None:
        return Filters()
    if isinstance(raw, list):
        raw = {"fields": raw}
    if not isinstance(raw, dict) or set(raw) - {"fields", "sources", "since"}:
        raise HTTPError(400, "filters must be a list of key=value strings or an object with fields, sources, since.")
    fields, sources, since = raw.get("fields") or [], raw.get("sources") or [], raw.get("since")
    if not _strings(fields) or not _strings(sources):
        raise HTTPError(400, "filters.fields and filters.sources must be lists of strings.")
    if since is None:
        since_at = None
    elif isinstance(since, int | float) and not isinstance(since, bool):
        since_at = float(since)
    elif isinstance(since, str):
        since_at = parse_since(since)
    else:
        raise HTTPError(400, "filters.since must be an age (7d), a date, or seconds since the epoch.")
    return Filters(sources=list(sources), fields=[parse_field_filter(f) for f in fields], since=since_at)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# ----- the application -----------------------------------------------------------------------------------
Handler = Callable[[Request], Awaitable[Response]]


def build_app(runtime: ServeRuntime, *, token: str | None, log_format: str = "text") -> Starlette:
    def limits() -> Any:  # read per request: SIGHUP may have changed them
        return runtime.settings.config.serve

    def guarded(handler: Handler) -> Handler:
        """Every domain error and every bug becomes a JSON error; the traceback goes to the log only."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPError as exc:
                return error_response(exc.status, exc.message, exc.hint, exc.headers)
            except Busy as exc:
                return error_response(
                    429, "The server is busy.", f"Retry after {exc.retry_after} s.",
                    {"Retry-After": str(exc.retry_after)},
                )
            except NotReady as exc:
                return error_response(503, f"Not ready: {exc.reason}", None, {"Retry-After": "1"})
            except (UsageError, ConfigError) as exc:
                return error_response(400, exc.message, exc.hint)
            except RagcliError as exc:
                return error_response(503 if exc.exit_code == 5 else 500, exc.message, exc.hint)
            except Exception:
                logger.exception("Unexpected error answering %s %s", request.method, request.url.path)
                return error_response(500, "Internal error.", "See the server log; report it if it persists.")

        return endpoint

    async def healthz(request: Request) -> Response:
        return json_response({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if runtime.ready:
            return json_response({"status": "ready"})
        return json_response({"status": "not ready", "reason": runtime.not_ready_reason}, 503)

    async def metrics(request: Request) -> Response:
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)

    async def ask(request: Request) -> Response:
        body = await read_json_body(request, limits().max_body_bytes)
        question, options = parse_question_request(body, ASK_KEYS, limits().max_question_chars)
        provider = body.get("provider")
        if provider is not None and provider not in _providers():
            raise HTTPError(400, f"provider must be one of {', '.join(_providers())}.")
        no_cache = body.get("no_cache", False)
        if not isinstance(no_cache, bool):
            raise HTTPError(400, "no_cache must be true or false.")
        result = await runtime.run(runtime.ask, AskRequest(question, options, provider, not no_cache))
        request.state.request_id = result.get("request_id")
        return json_response(result)

    async def search(request: Request) -> Response:
        body = await read_json_body(request, limits().max_body_bytes)
        question, options = parse_question_request(body, SEARCH_KEYS, limits().max_question_chars)
        return json_response(await runtime.run(runtime.search, question, options))

    async def feedback(request: Request) -> Response:
        body = await read_json_body(request, limits().max_body_bytes)
        request_id, rating, note = body.get("request_id"), body.get("rating"), body.get("note")
        if not isinstance(request_id, str) or not request_id or rating not in ("up", "down"):
            raise HTTPError(400, 'Send {"request_id": "…", "rating": "up" or "down", "note": optional}.')
        if note is not None and not isinstance(note, str):
            raise HTTPError(400, "note must be a string.")
        await runtime.feedback(request_id, rating, note)
        return json_response({"request_id": request_id, "rating": rating})

    async def stats(request: Request) -> Response:
        from ragcli.retrieval.filters import parse_since

        since = request.query_params.get("since")
        return json_response(await runtime.stats(parse_since(since) if since else None))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        runtime.start()
        yield

    routes = [
        Route("/healthz", guarded(healthz), methods=["GET"]),
        Route("/readyz", guarded(readyz), methods=["GET"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/v1/ask", guarded(ask), methods=["POST"]),
        Route("/v1/search", guarded(search), methods=["POST"]),
        Route("/v1/feedback", guarded(feedback), methods=["POST"]),
        Route("/v1/stats", guarded(stats), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return AccessMiddleware(AuthMiddleware(app, token), runtime, log_format)  # type: ignore[return-value]


def _providers() -> tuple[str, ...]:
    from ragcli.generation import PROVIDERS

    return PROVIDERS


class AuthMiddleware:
    """Bearer token, compared in constant time. Plain ASGI: cheaper than Starlette's BaseHTTPMiddleware."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        supplied = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(supplied, self.expected):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401, "Missing or wrong bearer token.", "Send the header Authorization: Bearer <token>.",
            {"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


class AccessMiddleware:
    """One log line and the request metrics per request."""

    def __init__(self, app: ASGIApp, runtime: ServeRuntime, log_format: str) -> None:
        self.app = app
        self.runtime = runtime
        self.json_lines = log_format == "json"
        self.known = {"/healthz", "/readyz", "/metrics", "/v1/ask", "/v1/search", "/v1/feedback", "/v1/stats"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The server's own share of the client's wall time, for `benchmarks/serve_load.py`.
                elapsed = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={elapsed:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        path = scope["path"]
        endpoint = path if path in self.known else "other"
        metrics = self.runtime.metrics
        metrics.requests.labels(endpoint, str(status)).inc()
        metrics.latency.labels(endpoint).observe(seconds)
        if not access_logger.isEnabledFor(logging.INFO):
            return
        request_id = (scope.get("state") or {}).get("request_id")
        client = (scope.get("client") or ("-", 0))[0]
        ms = round(seconds * 1000, 2)
        if self.json_lines:
            line = json.dumps(
                {"ts": round(time.time(), 3), "client": client, "method": scope["method"], "path": path,
                 "status": status, "ms": ms, "request_id": request_id}
            )
        else:
            line = f'{client} "{scope["method"]} {path}" {status} {ms}ms' + (f" {request_id}" if request_id else "")
        access_logger.info(line)
