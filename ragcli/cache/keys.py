"""Cache keys: a normalised question and the fingerprint of everything that shapes an answer."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from ragcli import __version__

if TYPE_CHECKING:
    from ragcli.config import RagConfig

_SPACE = re.compile(r"\s+")


def normalise_question(question: str) -> str:
    """Case, surrounding space and trailing punctuation do not change what is asked."""
    text = _SPACE.sub(" ", question.strip().lower())
    return text.strip(" \"'`").rstrip("?!. ").strip()


def answer_fingerprint(config: RagConfig) -> str:
    """Hash of every setting that can change an answer; timeouts, logging and the like are left out."""
    shaping: dict[str, Any] = {
        "version": __version__,
        "embedding": config.embedding.model_dump(include={"backend", "model", "model_path", "query_prefix"}),
        "chunking": config.chunking.model_dump(),
        "retrieval": config.retrieval.model_dump(),
        "rerank": config.rerank.model_dump(
            include={"enabled", "backend", "model", "model_path", "top_n", "blend", "max_tokens"}
        ),
        "compression": config.compression.model_dump(),
        "generation": config.generation.model_dump(
            include={"provider", "model", "model_path", "base_url", "max_tokens", "temperature", "n_ctx"}
        ),
        "answer": config.answer.model_dump(),
        "store": config.store.model_dump(include={"uri", "table"}),
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:32]


def scope_key(config: RagConfig, *, filters: str, mode: str, k: int, rerank: bool) -> str:
    payload = json.dumps([answer_fingerprint(config), filters, mode, k, rerank])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def exact_key(question: str, scope: str) -> str:
    return "a:" + hashlib.sha256(f"{scope}\x00{normalise_question(question)}".encode()).hexdigest()
