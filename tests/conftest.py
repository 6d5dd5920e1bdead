from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings, load_settings

# Session fixtures for real S3 (moto) and Redis servers: tests/servers.py.
pytest_plugins = ["tests.servers"]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"


class RecordingObserver:
    """An ingest observer that keeps every event, in order: (kind, count)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def started(self, total_files: int) -> None:
        self.events.append(("started", total_files))

    def file_done(self, source: str, outcome: str) -> None:
        self.events.append(("file_done", 0))

    def chunks_found(self, chunks: int) -> None:
        self.events.append(("found", chunks))

    def embedded(self, chunks: int) -> None:
        self.events.append(("embedded", chunks))


class CountingEmbedder:
    """The real embedder, with a count of the texts it was asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.texts_embedded = 0
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> Any:
        self.calls += 1
        self.texts_embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Any:
        return self.inner.embed_query(text)

    def reset(self) -> None:
        self.texts_embedded = 0
        self.calls = 0


@pytest.fixture(scope="session")
def onnx_embedder() -> Any:
    from ragcli.config import EmbeddingConfig
    from ragcli.embedding import get_embedder

    return get_embedder(EmbeddingConfig())  # type: ignore[call-arg]


@pytest.fixture
def embedder(onnx_embedder: Any) -> CountingEmbedder:
    return CountingEmbedder(onnx_embedder)


@pytest.fixture(autouse=True)
def _keep_the_runner_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-process ingest would renice the test runner for good ([ingest] nice), and every later
    subprocess with it; subprocess tests still see the real behaviour."""
    monkeypatch.setattr("ragcli.app.ingest.lower_priority", lambda niceness: None)


@pytest.fixture(autouse=True)
def _user_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Outside a project ragcli keeps its state in the per-user data directory; tests never touch the real one."""
    data = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    return data / "ragcli"


def make_settings(home: Path, **env: str) -> Settings:
    return load_settings(env={"RAGCLI_HOME": str(home), **env})


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    return make_settings(tmp_path / "state")


@pytest.fixture
def docs_tree(tmp_path: Path) -> Path:
    """A writable copy of the fixture documents."""
    target = tmp_path / "docs"
    shutil.copytree(FIXTURES / "docs", target)
    return target


@pytest.fixture(autouse=True)
def _restore_logging() -> Any:
    """CLI tests configure logging for the process; put levels and handlers back after each test."""
    import logging

    root = logging.getLogger()
    names = ("ragcli", "lance", "lancedb", "httpx", "httpcore")
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in names})
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


# ----- a real OpenAI-compatible LLM server (llama.cpp) on loopback, one per test session ---------------
LLM_KEY_ENV = "RAGCLI_TEST_LLM_KEY"


@pytest.fixture(scope="session")
def llm_server() -> Iterator[Any]:
    pytest.importorskip("xllamacpp")
    from ragcli.generation.server import default_model_path
    from tests.llm_server import LLMServer

    server = LLMServer(default_model_path(), n_ctx=1024, threads=1)
    yield server
    server.close()


@pytest.fixture
def llm(llm_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.llm_server import API_KEY

    llm_server.delay_s = 0.0
    monkeypatch.setenv(LLM_KEY_ENV, API_KEY)
    return llm_server
