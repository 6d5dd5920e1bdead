"""The served models in-process: the answer gate's cross-encoder is loaded with the models, once, and
kept across index refreshes; the index is read as a reader reads it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions
from ragcli.serve.runtime import AskRequest, ServeRuntime

pytestmark = pytest.mark.slow


def _ask(runtime: ServeRuntime) -> dict[str, Any]:
    question = "What is the default Wi-Fi password of the mount?"
    return runtime.ask(AskRequest(question, AskOptions(), use_cache=False))


def test_the_gate_cross_encoder_is_loaded_once_and_survives_a_refresh(
    settings: Settings, docs_tree: Path, onnx_embedder: Any
) -> None:
    assert settings.config.answer.gate and not settings.config.rerank.enabled  # the defaults
    Ingestor(settings, embedder=onnx_embedder).run([docs_tree])
    runtime = ServeRuntime(settings)
    assert runtime.refresh()
    encoder = runtime._models.reranker
    assert encoder is not None
    # Every core for its runs although the server has several workers (see ServeRuntime._load_reranker).
    assert encoder.workers == len(os.sched_getaffinity(0))
    assert _ask(runtime)["confidence"] is not None
    # A reader's store: one opened dataset, not a lancedb table opened again for every query.
    assert runtime._store._table is None

    (docs_tree / "robots.md").write_text("# Robots\n\nThe Zephyr-9 maintenance robot is painted teal.\n")
    Ingestor(settings, embedder=onnx_embedder).run([docs_tree])
    assert runtime.refresh()  # a new engine around the new table version
    assert _ask(runtime)["confidence"] is not None
    # Before, each new engine loaded a cross-encoder of its own on its first question.
    assert runtime._models.reranker is encoder
    assert runtime._engine(None, rerank=None)._reranker is encoder
