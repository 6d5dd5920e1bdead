"""`ragcli serve` as a real process on an ephemeral loopback port, and `ragcli ask` through it.

One server for most of the module (starting one loads the models); a second one, in token mode, for
the authentication checks and for `ask` finding a dead server. Requests that must stay in flight ask
with `provider: openai` against a stand-in chat server that holds its answers back.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import load_settings
from ragcli.ingest.pipeline import Ingestor
from tests.serving import (
    DOCS,
    Server,
    SlowLLM,
    child_env,
    concurrently,
    run_cli,
    start_server,
    write_config,
    write_docs,
)

pytestmark = pytest.mark.slow

ASK_KEYS = {"answer", "citations", "timings_ms", "request_id", "cache", "degraded", "refused", "mode", "provider"}


@pytest.fixture(scope="module")
def llm() -> Iterator[SlowLLM]:
    stub = SlowLLM().start()
    yield stub
    stub.close()


def _indexed_home(directory: Path, onnx_embedder: Any, llm: SlowLLM, **serve: Any) -> Path:
    config = write_config(directory, llm_url=llm.url, **serve)
    settings = load_settings(config, env={})
    Ingestor(settings, embedder=onnx_embedder).run([write_docs(directory / "docs", DOCS)])
    return config


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, onnx_embedder: Any, llm: SlowLLM) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("serve")
    config = _indexed_home(
        directory, onnx_embedder, llm, refresh_seconds=0.5, workers=2, queue_size=1, max_body_bytes=2048,
        max_question_chars=300,
    )
    server = start_server(config, child_env(config))
    yield server
    server.stop(signal.SIGKILL)


# ----- endpoints ---------------------------------------------------------------------------------------
def test_health_readiness_and_metrics(served: Server) -> None:
    assert served.json("GET", "/healthz") == (200, {"status": "alive"})
    assert served.json("GET", "/readyz") == (200, {"status": "ready"})
    served.json("POST", "/v1/ask", {"question": "At what pressure does the relief valve open?"})
    status, headers, body = served.request("GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'ragcli_requests_total{endpoint="/v1/ask",outcome="200"}' in text
    assert 'ragcli_stage_seconds_count{stage="retrieve"}' in text
    assert "ragcli_index_version " in text and "ragcli_ready 1.0" in text
    assert "ragcli_last_ingest_age_seconds" in text and "ragcli_cache_answers_total" in text
    assert '"POST /v1/ask" 200' in served.log.read_text()  # one access line per request


def test_the_config_digest_ignores_what_a_request_states_itself(tmp_path: Path) -> None:
    from ragcli.serve.discovery import config_digest

    base = {"RAGCLI_HOME": str(tmp_path)}
    digest = config_digest(load_settings(env=base))
    same = {"RAGCLI_RETRIEVAL__TOP_K": "9", "RAGCLI_GENERATION__PROVIDER": "openai", "RAGCLI_SERVE__PORT": "1",
            "RAGCLI_EMBEDDING__THREADS": "1", "RAGCLI_CACHE__ENABLED": "false"}
    assert config_digest(load_settings(env=base | same)) == digest
    for key, value in (("RAGCLI_RETRIEVAL__CANDIDATES", "7"), ("RAGCLI_EMBEDDING__MODEL_PATH", "/x")):
        assert config_digest(load_settings(env=base | {key: value})) != digest


def test_ask_returns_the_ask_json_object_and_caches(served: Server) -> None:
    body = {"question": "How often must the impeller seal be replaced?", "k": 3, "mode": "hybrid"}
    status, first = served.json("POST", "/v1/ask", body)
    assert status == 200, first
    assert set(first) >= ASK_KEYS
    assert "2,000 hours" in first["answer"]
    assert first["citations"][0]["source"].endswith("pumps.md")
    status, second = served.json("POST", "/v1/ask", body)
    assert status == 200 and second["cache"] == "exact" and second["answer"] == first["answer"]
    status, fresh = served.json("POST", "/v1/ask", body | {"no_cache": True, "filters": ["doc_type=md"]})
    assert status == 200 and fresh["cache"] is None
    assert all(c["source"].endswith(".md") for c in fresh["citations"])


def test_search_returns_passages_without_generating(served: Server) -> None:
    status, data = served.json(
        "POST", "/v1/search", {"question": "relief valve pressure", "k": 2, "filters": {"sources": ["*valves*"]}}
    )
    assert status == 200, data
    assert 1 <= len(data["passages"]) <= 2
    assert all(p["source"].endswith("valves.md") for p in data["passages"])
    assert "answer" not in data and "generate" not in data["timings_ms"]


def test_feedback_and_stats(served: Server) -> None:
    _, answer = served.json("POST", "/v1/ask", {"question": "When are fire drills held?", "no_cache": True})
    status, data = served.json("POST", "/v1/feedback", {"request_id": answer["request_id"], "rating": "up"})
    assert status == 200 and data == {"request_id": answer["request_id"], "rating": "up"}
    status, error = served.json("POST", "/v1/feedback", {"request_id": "no-such-id", "rating": "down"})
    assert status == 400 and "no-such-id" in error["error"]
    status, stats = served.json("GET", "/v1/stats")
    assert status == 200 and stats["empty"] is False
    assert stats["feedback"]["up"] >= 1, stats["feedback"]


# ----- limits ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"question": ""}, 400, "missing or empty"),
        ({"question": "x" * 301}, 400, "limit is 300"),
        ({"question": "ok?", "k": 0}, 400, "k must be"),
        ({"question": "ok?", "mode": "psychic"}, 400, "mode must be"),
        ({"question": "ok?", "provider": "oracle"}, 400, "provider must be"),
        ({"question": "ok?", "colour": "red"}, 400, "Unknown field"),
        ({"question": "ok?", "filters": ["nokey"]}, 400, "key=value"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_requests_get_400_with_a_clear_message(served: Server, body: Any, status: int, words: str) -> None:
    got, data = served.json("POST", "/v1/ask", body)
    assert got == status and words in data["error"], data


def test_oversized_and_malformed_bodies(served: Server) -> None:
    big = json.dumps({"question": "x" * 5000}).encode()
    status, _, body = served.request("POST", "/v1/ask", raw=big)
    assert status == 413 and b"larger than 2048 bytes" in body
    # Without a Content-Length the limit still holds while the body streams in.
    status, _, body = served.request("POST", "/v1/ask", raw=iter([big[:1500], big[1500:]]))  # type: ignore[arg-type]
    assert status == 413
    status, _, body = served.request("POST", "/v1/ask", raw=b"{not json")
    assert status == 400 and b"not valid JSON" in body and b"Traceback" not in body


def test_saturation_gets_429_with_retry_after(served: Server, llm: SlowLLM) -> None:
    llm.delay_s = 3.0
    body = {"question": "How much does the pump move?", "provider": "openai", "no_cache": True}
    try:
        results = concurrently([lambda: served.request("POST", "/v1/ask", body)] * 6)()
    finally:
        llm.delay_s = 0.0
    statuses = sorted(r[0] for r in results)
    # workers = 2 and queue_size = 1: three answered, the rest refused at once.
    assert statuses == [200, 200, 200, 429, 429, 429], statuses
    refused = next(r for r in results if r[0] == 429)
    assert int(refused[1]["retry-after"]) >= 1 and b"busy" in refused[2]
    answered = next(r for r in results if r[0] == 200)
    assert json.loads(answered[2])["provider"] == "openai"


# ----- freshness --------------------------------------------------------------------------------------------
def test_a_document_ingested_by_another_process_is_served_after_the_refresh(served: Server) -> None:
    question = {"question": "Which colour is the Zephyr-9 maintenance robot?", "k": 1}
    _ingest_elsewhere(served, "The Zephyr-9 maintenance robot is painted teal.")
    _wait_until_served(served, question, "teal")
    _, first = served.json("POST", "/v1/ask", question)
    assert "teal" in first["answer"] and first["cache"] is None
    # A refresh that ran between the other ingest's commit and its end files answers under the last
    # settled generation, so they look stale (never fresh) until the next refresh: then one is cached.
    deadline = time.monotonic() + 30
    while served.json("POST", "/v1/ask", question)[1]["cache"] != "exact":
        assert time.monotonic() < deadline, "the answer was never served from the cache"
        time.sleep(0.5)

    # The cited document changes: the cached answer is not served again (the corpus journal says so).
    _ingest_elsewhere(served, "The Zephyr-9 maintenance robot was repainted orange.")
    _wait_until_served(served, question, "orange")
    _, after = served.json("POST", "/v1/ask", question)
    assert "orange" in after["answer"] and after["cache"] is None, after
    _, _, metrics = served.request("GET", "/metrics")
    assert b"ragcli_index_refreshes_total 0.0" not in metrics


def _ingest_elsewhere(served: Server, sentence: str) -> None:
    docs = write_docs(served.home.parent / "more", {"robots.md": f"# Robots\n\n{sentence}\n"})
    done = run_cli(served.home.parent / ".ragcli.toml", "ingest", str(docs))
    assert done.returncode == 0, done.stderr


def _wait_until_served(served: Server, question: dict[str, Any], word: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, data = served.json("POST", "/v1/search", question)
        if data["passages"] and word in data["passages"][0]["text"]:
            return
        time.sleep(0.25)
    raise AssertionError(f"the new text was never served: {data}")


# ----- shutdown (last: it stops the module's server) ---------------------------------------------------------
def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(served: Server, llm: SlowLLM) -> None:
    llm.delay_s = 2.0
    body = {"question": "How much does the pump move?", "provider": "openai", "no_cache": True}
    before = llm.requests
    in_flight = concurrently([lambda: served.request("POST", "/v1/ask", body)])
    deadline = time.monotonic() + 30
    while llm.requests == before:  # until the question is inside the pipeline, waiting for the LLM
        assert time.monotonic() < deadline
        time.sleep(0.02)
    served.proc.send_signal(signal.SIGTERM)
    ((status, _, data),) = in_flight()
    assert status == 200, data
    assert json.loads(data)["answer"].startswith("From the manual")
    assert served.proc.wait(timeout=60) == 0, served.log.read_text()
    assert not (served.home / "serve.json").exists()


# ----- token mode, and `ragcli ask` through the server --------------------------------------------------------
@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory, onnx_embedder: Any, llm: SlowLLM) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("serve-token")
    config = _indexed_home(directory, onnx_embedder, llm)
    server = start_server(config, child_env(config, RAGCLI_SERVE_TOKEN="s3cret-token"), token="s3cret-token")
    yield server
    server.stop(signal.SIGKILL)


def test_a_configured_token_is_required_except_for_probes(token_server: Server) -> None:
    no_token = {"Authorization": ""}
    status, headers, body = token_server.request("POST", "/v1/ask", {"question": "hi?"}, headers=no_token)
    assert status == 401 and headers["www-authenticate"] == "Bearer" and b"bearer token" in body
    wrong = {"Authorization": "Bearer s3cret-tokex"}
    assert token_server.request("GET", "/metrics", headers=wrong)[0] == 401
    assert token_server.request("GET", "/v1/stats", headers=no_token)[0] == 401
    assert token_server.request("GET", "/healthz", headers=no_token)[0] == 200
    assert token_server.request("GET", "/readyz", headers=no_token)[0] == 200
    assert token_server.json("POST", "/v1/search", {"question": "valve"})[0] == 200


def test_sighup_reloads_the_configuration(token_server: Server) -> None:
    config = token_server.home.parent / ".ragcli.toml"
    question = {"question": "Which valve opens at 8 bar of pressure, and what is its body made of?"}
    assert token_server.json("POST", "/v1/search", question)[0] == 200
    original = config.read_text()
    config.write_text(original + "max_question_chars = 40\n")
    try:
        token_server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while (status := token_server.json("POST", "/v1/search", question)[0]) == 200:
            assert time.monotonic() < deadline, "the new limit never applied"
            time.sleep(0.2)
        assert status == 400
    finally:
        config.write_text(original)
        token_server.proc.send_signal(signal.SIGHUP)
    assert token_server.proc.poll() is None


def test_any_bind_but_loopback_requires_a_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, host="0.0.0.0")
    done = run_cli(config, "serve", timeout=120)
    assert done.returncode == 2, done.stderr
    assert "without a token" in done.stderr and "RAGCLI_SERVE_TOKEN" in done.stderr


def test_ask_uses_the_server_then_falls_back_when_it_is_gone(token_server: Server) -> None:
    config = token_server.home.parent / ".ragcli.toml"
    env = child_env(config, RAGCLI_SERVE_TOKEN="s3cret-token")
    question = "At what pressure does the relief valve open?"
    done = run_cli(config, "ask", question, "--json", env=env)
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout)
    assert served["via"] == "server" and "8 bar" in served["answer"]

    # Through the server the CLI imports none of the heavy libraries.
    code = (
        "import sys\nfrom ragcli.cli import main\nsys.argv = ['ragcli', 'ask', sys.argv[1], '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('lancedb', 'pyarrow', 'onnxruntime', 'numpy', 'httpx', 'tiktoken') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    light = subprocess.run([sys.executable, "-c", code, question], env=env, cwd=config.parent,
                           capture_output=True, text=True, timeout=120)
    assert json.loads(light.stdout)["via"] == "server" and "HEAVY=\n" in light.stderr, light.stderr

    local = run_cli(config, "ask", question, "--json", "--no-server", env=env)
    assert json.loads(local.stdout)["via"] == "process"

    token_server.stop(signal.SIGKILL)  # serve.json stays behind, naming a dead pid
    assert (token_server.home / "serve.json").exists()
    done = run_cli(config, "ask", question, "--json", env=env)
    assert done.returncode == 0, done.stderr
    fallback = json.loads(done.stdout)
    assert fallback["via"] == "process" and "8 bar" in fallback["answer"]


def test_the_server_caps_malloc_arenas_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc's mallopt(M_ARENA_MAX) takes the cap on this platform; a MALLOC_ARENA_MAX of the user's
    is left alone."""
    import sys

    from ragcli.memory import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas(8) is sys.platform.startswith("linux")  # 8: glibc's own cap on 1 core
