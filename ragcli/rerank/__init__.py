"""Cross-encoder reranking: score (question, passage) pairs jointly, more precise and far slower than
vector search, so it runs only on the top few fused candidates and only when measurement says it helps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ragcli.config import RerankConfig


class Reranker(Protocol):
    name: str

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, higher is better, in the order given."""
        ...


BACKENDS = ("onnx", "sentence-transformers")


def get_reranker(config: RerankConfig) -> Reranker:
    if config.backend == "onnx":
        from ragcli.rerank.onnx import OnnxCrossEncoder

        return OnnxCrossEncoder.from_config(config)
    if config.backend == "sentence-transformers":
        from ragcli.rerank.st import SentenceTransformerCrossEncoder

        return SentenceTransformerCrossEncoder.from_config(config)
    raise ValueError(f"unknown rerank backend {config.backend!r}; choose one of {', '.join(BACKENDS)}")
