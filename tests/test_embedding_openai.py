"""The OpenAI-compatible HTTP embedder against a real local server that serves real ONNX vectors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.config import EmbeddingConfig
from ragcli.embedding import get_embedder
from ragcli.embedding.onnx import OnnxEmbedder
from ragcli.embedding.openai_http import OpenAIEmbedder
from ragcli.embedding.retry import transient_retry
from ragcli.errors import ModelError, PermanentError, TransientError
from ragcli.models_path import bundled_model_dir

MODEL = "bge-small-en-v1.5"
KEY_ENV = "EMBED_TEST_API_KEY"
TEXTS = [f"Passage {i}: " + "about the ocean and its tides " * (i % 5 + 1) for i in range(23)]


@dataclass
class Switches:
    """What the server does next. Counters are read by the tests."""

    fail_429: int = 0
    retry_after: str | None = None
    fail_500: int = 0
    status_always: int | None = None
    error_message: str = "something went wrong"
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


class EmbeddingsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, embedder: OnnxEmbedder) -> None:
        super().__init__(("127.0.0.1", 0), EmbeddingsHandler)
        self.embedder = embedder
        self.switches = Switches()
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up; the handler's late write fails. Expected, not news.
        pass


class EmbeddingsHandler(BaseHTTPRequestHandler):
    server: EmbeddingsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        sw = self.server.switches
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            sw.requests.append(body)
            sw.auth_headers.append(self.headers.get("Authorization"))
            sw.in_flight += 1
            sw.max_in_flight = max(sw.max_in_flight, sw.in_flight)
            reply = self._decide(sw)
        try:
            if sw.delay_s:
                time.sleep(sw.delay_s)
            if reply is not None:
                status, payload, headers = reply[0], {"error": {"message": sw.error_message}}, reply[1]
            elif self.path != "/v1/embeddings":
                status, payload, headers = 404, {"error": {"message": f"no route {self.path}"}}, {}
            else:
                status, payload, headers = 200, self._embeddings(body), {}
        finally:
            # Counted out before the answer is written: once the client has its answer it may send the
            # next request, possibly before this thread gets to run again.
            with self.server.lock:
                sw.in_flight -= 1
        self._send(status, payload, headers)

    def _decide(self, sw: Switches) -> tuple[int, dict[str, str]] | None:
        if sw.status_always is not None:
            return sw.status_always, {}
        if sw.fail_429 > 0:
            sw.fail_429 -= 1
            return 429, ({"Retry-After": sw.retry_after} if sw.retry_after else {})
        if sw.fail_500 > 0:
            sw.fail_500 -= 1
            return 500, {}
        return None

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        vectors = self.server.embedder.embed_documents(body["input"])
        if body.get("dimensions"):
            vectors = vectors[:, : body["dimensions"]] * 3.0  # unnormalised, as a shortened vector is
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
        data.reverse()  # the index, not the position, says which input a vector belongs to
        return {"object": "list", "model": body["model"], "data": data}

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture(scope="module")
def reference() -> OnnxEmbedder:
    # batch_size=1: every text runs alone, so a vector does not depend on how the client batched it.
    return OnnxEmbedder(bundled_model_dir("bge_small_en"), name=MODEL, batch_size=1)


@pytest.fixture(scope="module")
def expected(reference: OnnxEmbedder) -> np.ndarray:
    return reference.embed_documents(TEXTS)


@pytest.fixture
def server(reference: OnnxEmbedder) -> Iterator[EmbeddingsServer]:
    srv = EmbeddingsServer(reference)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


class SleepRecorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make(server: EmbeddingsServer, sleeps: SleepRecorder) -> Iterator[Any]:
    made: list[OpenAIEmbedder] = []

    def factory(**overrides: Any) -> OpenAIEmbedder:
        settings = {"backend": "openai", "model": MODEL, "base_url": server.base_url, "api_key_env": KEY_ENV}
        config = EmbeddingConfig(**(settings | overrides))
        embedder = OpenAIEmbedder.from_config(config, sleep=sleeps)
        made.append(embedder)
        return embedder

    yield factory
    for embedder in made:
        embedder.close()


def test_vectors_match_the_model_and_keep_their_order(make: Any, server: Any, expected: Any) -> None:
    embedder = make(batch_size=4, max_concurrency=3)
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    cosines = np.sum(vectors * expected, axis=1)
    assert np.all(cosines > 0.999), cosines
    assert len(server.switches.requests) == 6  # 23 texts in batches of 4
    assert embedder.dimension == 384
    assert len(server.switches.requests) == 6  # the dimension came from the answers: no probe


def test_query_gets_the_model_prefix(make: Any, server: Any, reference: Any) -> None:
    query = make().embed_query("why are there tides")
    assert server.switches.requests[0]["input"][0].startswith("Represent this sentence")
    assert float(query @ reference.embed_query("why are there tides")) > 0.999


def test_get_embedder_builds_the_http_backend(server: Any) -> None:
    config = EmbeddingConfig(backend="openai", model=MODEL, base_url=server.base_url, api_key_env=KEY_ENV)
    embedder = get_embedder(config)
    try:
        assert isinstance(embedder, OpenAIEmbedder)
        assert embedder.name == MODEL
        assert embedder.dimension == 384  # one probe request
        assert len(server.switches.requests) == 1
    finally:
        embedder.close()


def test_configured_dimensions_are_requested_and_normalised(make: Any, server: Any) -> None:
    embedder = make(dimensions=64)
    assert embedder.dimension == 64
    vectors = embedder.embed_documents(TEXTS[:3])
    assert vectors.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert server.switches.requests[0]["dimensions"] == 64


def test_empty_input_sends_one_probe_at_most(make: Any, server: Any) -> None:
    assert make().embed_documents([]).shape == (0, 384)
    assert make(dimensions=32).embed_documents([]).shape == (0, 32)
    assert len(server.switches.requests) == 1


def test_empty_strings_are_sent_as_a_space(make: Any, server: Any) -> None:
    assert make().embed_documents(["", "text"]).shape == (2, 384)
    assert server.switches.requests[0]["input"] == [" ", "text"]


def test_api_key_is_sent_as_bearer_when_set(make: Any, server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    make().embed_documents(["a"])
    monkeypatch.delenv(KEY_ENV)
    make().embed_documents(["b"])
    assert server.switches.auth_headers == ["Bearer sk-test-123", None]


def test_429_waits_as_long_as_retry_after_says(make: Any, server: Any, sleeps: Any, expected: Any) -> None:
    server.switches.fail_429, server.switches.retry_after = 2, "7"
    vectors = make(max_retries=3).embed_documents(TEXTS[:2])
    assert sleeps.waits == [7.0, 7.0]
    assert len(server.switches.requests) == 3
    assert np.all(np.sum(vectors * expected[:2], axis=1) > 0.999)


def test_429_without_retry_after_backs_off(make: Any, server: Any, sleeps: Any) -> None:
    server.switches.fail_429 = 1
    make().embed_documents(["a"])
    assert len(sleeps.waits) == 1
    assert 0 < sleeps.waits[0] <= 1.0  # first wait: 0.5 s plus up to 0.5 s jitter


def test_5xx_is_retried_with_growing_waits(make: Any, server: Any, sleeps: Any) -> None:
    server.switches.fail_500 = 3
    assert make(max_retries=5).embed_documents(["a", "b"]).shape == (2, 384)
    assert len(sleeps.waits) == 3
    assert len(server.switches.requests) == 4
    # Exponential: 0.5, 1, 2 s, each plus at most 0.5 s jitter.
    assert sleeps.waits[2] >= 2.0 > sleeps.waits[0]


def test_exhausted_retries_raise_a_transient_error(make: Any, server: Any, sleeps: Any) -> None:
    server.switches.status_always = 503
    with pytest.raises(TransientError) as info:
        make(max_retries=2).embed_documents(["a"])
    assert info.value.stage == "embed"
    assert "after 3 attempts" in info.value.message
    assert "HTTP 503" in info.value.message
    assert len(sleeps.waits) == 2
    assert len(server.switches.requests) == 3


def test_timeout_is_transient(make: Any, server: Any, sleeps: Any) -> None:
    server.switches.delay_s = 1.0
    with pytest.raises(TransientError, match=r"within 0\.2s") as info:
        make(timeout_s=0.2, max_retries=1).embed_documents(["a"])
    assert "after 2 attempts" in info.value.message
    assert len(sleeps.waits) == 1


def test_unreachable_server_is_transient(sleeps: Any) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = OpenAIEmbedder(
        model=MODEL, base_url=f"http://127.0.0.1:{port}/v1", dimensions=8, max_retries=2, sleep=sleeps
    )
    try:
        with pytest.raises(TransientError, match="Cannot reach"):
            embedder.embed_documents(["a"])
    finally:
        embedder.close()
    assert len(sleeps.waits) == 2


def test_401_is_a_model_error_naming_the_variable(make: Any, server: Any, sleeps: Any) -> None:
    server.switches.status_always = 401
    server.switches.error_message = "Incorrect API key provided"
    with pytest.raises(ModelError) as info:
        make().embed_documents(["a"])
    assert KEY_ENV in info.value.message
    assert "is not set" in info.value.message
    assert info.value.hint and KEY_ENV in info.value.hint
    assert len(server.switches.requests) == 1  # never retried
    assert sleeps.waits == []


def test_unknown_model_is_a_model_error(make: Any, server: Any, sleeps: Any) -> None:
    server.switches.status_always = 404
    server.switches.error_message = "The model `nope` does not exist"
    with pytest.raises(ModelError, match="does not exist"):
        make(model="nope").embed_documents(["a"])
    assert sleeps.waits == []


def test_other_400_is_a_permanent_document_error(make: Any, server: Any, sleeps: Any) -> None:
    server.switches.status_always = 400
    server.switches.error_message = "This model's maximum context length is 8192 tokens"
    with pytest.raises(PermanentError) as info:
        make().embed_documents(["a"])
    assert info.value.stage == "embed"
    assert sleeps.waits == []


def test_a_failed_batch_fails_the_call_without_sending_the_rest(make: Any, server: Any) -> None:
    server.switches.status_always = 401
    with pytest.raises(ModelError):
        make(batch_size=1, max_concurrency=2).embed_documents(TEXTS)
    assert len(server.switches.requests) < len(TEXTS)


def test_concurrency_limit_is_never_exceeded(make: Any, server: Any, expected: Any) -> None:
    server.switches.delay_s = 0.05
    embedder = make(batch_size=2, max_concurrency=3)
    texts = TEXTS[:12]
    results: list[np.ndarray] = []
    # Two callers share one embedder: the limit is per embedder, not per call.
    callers = [threading.Thread(target=lambda: results.append(embedder.embed_documents(texts))) for _ in "ab"]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(server.switches.requests) == 12
    assert 2 <= server.switches.max_in_flight <= 3
    assert len(results) == 2
    for vectors in results:
        assert np.all(np.sum(vectors * expected[:12], axis=1) > 0.999)


def test_max_concurrency_one_sends_one_request_at_a_time(make: Any, server: Any) -> None:
    server.switches.delay_s = 0.02
    make(batch_size=3, max_concurrency=1).embed_documents(TEXTS[:9])
    assert server.switches.max_in_flight == 1
    assert len(server.switches.requests) == 3


def test_retry_policy_passes_other_errors_through_at_once() -> None:
    waits: list[float] = []
    seen: list[tuple[int, str, float]] = []
    attempts = 0

    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransientError("hiccup", stage="write")
        return "ok"

    policy = transient_retry(4, sleep=waits.append, on_retry=lambda n, e, d: seen.append((n, str(e), d)))
    assert policy(flaky) == "ok"
    assert [n for n, _, _ in seen] == [1, 2]
    assert [d for _, _, d in seen] == waits

    def broken() -> None:
        raise ValueError("a bug, not a hiccup")

    with pytest.raises(ValueError):
        transient_retry(4, sleep=waits.append)(broken)
    assert len(waits) == 2

    def always() -> None:
        raise TransientError("down", stage="write")

    with pytest.raises(TransientError) as info:
        transient_retry(0, sleep=waits.append)(always)
    assert info.value.stage == "write"
    assert "after 1 attempt:" in info.value.message


def _ingest_with(embedder: OpenAIEmbedder, tmp_path: Path) -> Any:
    from ragcli.config import load_settings
    from ragcli.ingest.pipeline import Ingestor

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Pumps\n\nThe impeller seal is replaced every 2,000 hours.\n", encoding="utf-8")
    (docs / "b.md").write_text("# Valves\n\nThe relief valve opens at 8 bar.\n", encoding="utf-8")
    settings = load_settings(
        env={"RAGCLI_HOME": str(tmp_path / "state"), "RAGCLI_EMBEDDING__BACKEND": "openai",
             "RAGCLI_EMBEDDING__MODEL": MODEL}
    )
    return Ingestor(settings, embedder=embedder).run([docs])


def test_ingest_report_counts_the_clients_retries_and_the_tokens_embedded(
    make: Any, server: Any, sleeps: Any, tmp_path: Path
) -> None:
    embedder = make(max_retries=5)
    assert embedder.dimension == 384  # the probe request goes first, so the failures hit the chunks
    server.switches.fail_500 = 2
    report = _ingest_with(embedder, tmp_path)
    assert (report.added, report.failed) == (2, 0)
    assert report.embedding_retries == 2 == len(sleeps.waits)
    from ragcli.tokens import count_tokens

    # Both documents are one chunk each; the count is the chunks' own tiktoken count (heading included).
    assert report.chunks_embedded == 2
    assert 2 * count_tokens("relief valve opens at 8 bar") < report.embedding_tokens < 80


def test_exhausted_client_retries_are_not_retried_again_by_ingestion(
    make: Any, server: Any, sleeps: Any, tmp_path: Path
) -> None:
    embedder = make(max_retries=2)
    assert embedder.dimension == 384
    server.switches.requests.clear()
    server.switches.status_always = 503
    report = _ingest_with(embedder, tmp_path)
    assert report.failed == 2 and report.added == 0
    # One policy, not two nested ones: 3 attempts for the batch, not 3 × 4.
    assert len(server.switches.requests) == 3
    assert report.embedding_retries == 2
    assert report.embedding_tokens == 0  # nothing was embedded
