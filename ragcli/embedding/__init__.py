"""Embedders turn texts into unit-length float32 vectors.

`identity` (name and dimension) is stored with the index, so an index is never queried with vectors of
another model. Backends: `onnx` (default, the bundled bge-small-en-v1.5), `sentence-transformers`
(optional extra; any local model folder), `openai` (any OpenAI-compatible /embeddings endpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import EmbeddingConfig


class Embedder(Protocol):
    name: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32, rows L2-normalised, in the order given."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dimension,) float32, L2-normalised; applies the model's query prefix."""
        ...


BACKENDS = ("onnx", "sentence-transformers", "openai")


def get_embedder(config: EmbeddingConfig) -> Embedder:
    if config.backend == "onnx":
        from ragcli.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder.from_config(config)
    if config.backend == "sentence-transformers":
        from ragcli.embedding.st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder.from_config(config)
    if config.backend == "openai":
        from ragcli.embedding.openai_http import OpenAIEmbedder

        return OpenAIEmbedder.from_config(config)
    raise ValueError(f"unknown embedding backend {config.backend!r}; choose one of {', '.join(BACKENDS)}")
