"""The local generator: a GGUF model run by llama.cpp in this process (the `xllamacpp` wheel).

The model is loaded on the first question, once per generator; llama.cpp's server engine is thread-safe,
so one generator may serve several threads (their requests queue for its single slot).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import ModelError
from ragcli.generation.citations import finish_llm_answer
from ragcli.generation.errors import GeneratorUnavailable
from ragcli.generation.prompt import build_messages, estimate_tokens
from ragcli.generation.server import (
    XLLAMACPP_INSTALL,
    default_model_path,
    require_xllamacpp,
    start_llama_server,
)
from ragcli.models import REFUSAL, ContextItem, Generation

if TYPE_CHECKING:
    from ragcli.config import GenerationConfig

logger = logging.getLogger(__name__)


@dataclass
class _Reply:
    """What one chat completion returned, streamed or not."""

    text: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


class LocalGenerator:
    name = "local"

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        threads: int = 0,
        max_tokens: int = 256,
        temperature: float = 0.0,
        label: str | None = None,
    ) -> None:
        self.model_path = model_path
        self.model = label or model_path.stem
        self.n_ctx = n_ctx
        self.threads = threads
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.last_timings: dict[str, Any] = {}
        self._server: Any = None
        self._load_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: GenerationConfig) -> LocalGenerator:
        require_xllamacpp()
        path = Path(config.model_path).expanduser() if config.model_path else default_model_path()
        if not path.is_file():
            raise ModelError(
                f"The GGUF model {path} does not exist.",
                hint="Set [generation] model_path to a .gguf file, or unset it to use the bundled SmolLM2.",
            )
        return cls(
            path,
            n_ctx=config.n_ctx,
            threads=config.threads,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            label=config.model,
        )

    def generate(
        self,
        question: str,
        context: Sequence[ContextItem],
        on_token: Callable[[str], None] | None = None,
    ) -> Generation:
        if not context:
            return Generation(REFUSAL, [], True, 0, 0, self.model)
        server = self._loaded()
        items = list(context)
        while True:
            messages = build_messages(question, items)
            reply = self._chat(server, messages, on_token)
            if reply.error is None:
                break
            if reply.error.get("type") == "exceed_context_size_error" and len(items) > 1:
                logger.warning(
                    "the prompt needs %s tokens, more than n_ctx=%d; dropping context item [%d]",
                    reply.error.get("n_prompt_tokens"), self.n_ctx, items[-1].n,
                )
                items.pop()
                continue
            raise _error_from_reply(reply.error, self.n_ctx)
        if not reply.text.strip():
            raise GeneratorUnavailable(f"{self.model} returned an empty answer.")
        self.last_timings = reply.timings
        _log_speed(reply.timings)
        return finish_llm_answer(
            reply.text,
            items,
            tokens_in=int(reply.usage.get("prompt_tokens") or estimate_tokens(messages)),
            tokens_out=int(reply.usage.get("completion_tokens") or estimate_tokens(reply.text)),
            model=self.model,
        )

    def complete(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        """A plain chat completion (query rewriting); no citations, no context."""
        server = self._loaded()
        request = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "stream": False}
        try:
            reply = _reply_from_response(server.handle_chat_completions(request))
        except (RuntimeError, ValueError) as exc:
            raise GeneratorUnavailable(f"llama.cpp failed: {exc}") from exc
        if reply.error is not None:
            raise _error_from_reply(reply.error, self.n_ctx)
        return reply.text

    def close(self) -> None:
        """Free the model now instead of when the generator is garbage-collected."""
        with self._load_lock:
            self._server = None

    def _loaded(self) -> Any:
        with self._load_lock:
            if self._server is None:
                self._server = start_llama_server(self.model_path, n_ctx=self.n_ctx, threads=self.threads)
            return self._server

    def _chat(
        self, server: Any, messages: list[dict[str, str]], on_token: Callable[[str], None] | None
    ) -> _Reply:
        request: dict[str, Any] = {
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": on_token is not None,
        }
        try:
            if on_token is None:
                return _reply_from_response(server.handle_chat_completions(request))
            return _stream(server, request, on_token)
        except (RuntimeError, ValueError) as exc:
            raise GeneratorUnavailable(
                f"llama.cpp failed while answering: {exc}",
                hint=f"Reinstall the bindings (`{XLLAMACPP_INSTALL}`) or use another provider.",
            ) from exc


def _stream(server: Any, request: dict[str, Any], on_token: Callable[[str], None]) -> _Reply:
    reply = _Reply()
    pieces: list[str] = []
    raised: list[BaseException] = []
    request["stream_options"] = {"include_usage": True}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        # An exception cannot cross llama.cpp's callback: it would be printed and lost. Keep it, stop the
        # stream (returning True does), and raise it here.
        try:
            if "error" in chunk:
                reply.error = chunk["error"]
                return True
            reply.usage = chunk.get("usage") or reply.usage
            reply.timings = chunk.get("timings") or reply.timings
            for choice in chunk.get("choices") or []:
                token = (choice.get("delta") or {}).get("content")
                if token:
                    pieces.append(token)
                    on_token(token)
            return False
        except BaseException as exc:
            raised.append(exc)
            return True

    server.handle_chat_completions(request, on_chunk)
    if raised:
        raise raised[0]
    reply.text = "".join(pieces)
    return reply


def _reply_from_response(response: dict[str, Any]) -> _Reply:
    if "error" in response:
        return _Reply(error=response["error"])
    choices = response.get("choices") or [{}]
    text = (choices[0].get("message") or {}).get("content") or ""
    return _Reply(text=text, usage=response.get("usage") or {}, timings=response.get("timings") or {})


def _error_from_reply(error: dict[str, Any], n_ctx: int) -> Exception:
    if error.get("type") == "exceed_context_size_error":
        return ModelError(
            f"One context passage alone is longer than the model's context window (n_ctx={n_ctx}).",
            hint="Raise [generation] n_ctx, or use a smaller [chunking] chunk_size.",
        )
    return GeneratorUnavailable(f"llama.cpp refused the request: {error.get('message', error)}")


def _log_speed(timings: dict[str, Any]) -> None:
    if timings:
        logger.debug(
            "llama.cpp: prompt %s tokens at %.0f tokens/s, answer %s tokens at %.0f tokens/s",
            timings.get("prompt_n"), timings.get("prompt_per_second", 0.0),
            timings.get("predicted_n"), timings.get("predicted_per_second", 0.0),
        )
