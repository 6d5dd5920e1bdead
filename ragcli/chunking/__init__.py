"""Chunkers split a text into spans measured in tokens.

Each chunker works on one section's text at a time (the pipeline never lets a chunk cross a heading or
page boundary, so every chunk has one citation). `get_chunker(config, embedder)` rejects unknown names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ragcli.models import Span

if TYPE_CHECKING:
    from ragcli.config import ChunkingConfig
    from ragcli.embedding import Embedder


class Chunker(Protocol):
    name: str

    def split(self, text: str) -> list[Span]:
        """Spans that cover the meaningful text in order; whitespace-only stretches may be left out."""
        ...


CHUNKERS = ("recursive", "fixed", "semantic")


def get_chunker(config: ChunkingConfig, embedder: Embedder | None = None) -> Chunker:
    if config.strategy == "recursive":
        from ragcli.chunking.recursive import RecursiveChunker

        return RecursiveChunker(config.chunk_size, config.chunk_overlap)
    if config.strategy == "fixed":
        from ragcli.chunking.fixed import FixedTokenChunker

        return FixedTokenChunker(config.chunk_size, config.chunk_overlap)
    if config.strategy == "semantic":
        if embedder is None:
            raise ValueError("the semantic chunker needs an embedder")
        from ragcli.chunking.semantic import SemanticChunker

        return SemanticChunker(embedder, config.chunk_size, config.semantic_threshold)
    raise ValueError(f"unknown chunking strategy {config.strategy!r}; choose one of {', '.join(CHUNKERS)}")
