"""Answer generation with citations. Providers share one small interface:

- `extractive`: no LLM; the best supporting sentences with their citations. Always available, never invents.
- `local`: llama.cpp through the `xllamacpp` wheel on a GGUF file (default: SmolLM2-135M-Instruct).
- `openai`: any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp server).

Every provider gets numbered context items and returns a `Generation`; when the context does not hold
the answer the answer is `REFUSAL`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ragcli.models import ContextItem, Generation

if TYPE_CHECKING:
    from ragcli.config import GenerationConfig


class Generator(Protocol):
    name: str
    model: str

    def generate(
        self,
        question: str,
        context: Sequence[ContextItem],
        on_token: Callable[[str], None] | None = None,
    ) -> Generation: ...


PROVIDERS = ("extractive", "local", "openai")


def get_generator(config: GenerationConfig) -> Generator:
    if config.provider == "extractive":
        from ragcli.generation.extractive import ExtractiveGenerator

        return ExtractiveGenerator.from_config(config)
    if config.provider == "local":
        from ragcli.generation.local import LocalGenerator

        return LocalGenerator.from_config(config)
    if config.provider == "openai":
        from ragcli.generation.openai_chat import OpenAIChatGenerator

        return OpenAIChatGenerator.from_config(config)
    raise ValueError(f"unknown generation provider {config.provider!r}; choose one of {', '.join(PROVIDERS)}")
