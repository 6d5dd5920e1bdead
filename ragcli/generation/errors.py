"""Errors of the generation providers."""

from __future__ import annotations

from ragcli.errors import EXIT_STORE, TransientError


class GeneratorUnavailable(TransientError):
    """The generator gave no answer this time: a timeout, a refused connection, an HTTP 429/5xx, an empty
    reply. Retrieval already worked, so the caller may retry, or fall back to the extractive generator."""

    exit_code = EXIT_STORE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, stage="generate", hint=hint)
