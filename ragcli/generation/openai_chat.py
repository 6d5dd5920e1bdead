"""The OpenAI-compatible generator: POST {base_url}/chat/completions (OpenAI, Ollama, vLLM, llama.cpp).

`timeout_s` bounds connecting and every wait for the next bytes: a server that says nothing for that long
has failed, while one that keeps streaming tokens may take as long as the answer needs. Failures that a
later try may not meet (timeouts, refused connections, 429, 5xx) raise `GeneratorUnavailable`; a
rejected key or an unknown model or URL is a `ConfigError`, which only the user can fix.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ragcli.errors import ConfigError
from ragcli.generation.citations import finish_llm_answer
from ragcli.generation.errors import GeneratorUnavailable
from ragcli.generation.prompt import build_messages, estimate_tokens
from ragcli.models import REFUSAL, ContextItem, Generation

if TYPE_CHECKING:
    import httpx

    from ragcli.config import GenerationConfig

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "default"  # local servers serve whatever they loaded and ignore the name


class OpenAIChatGenerator:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_tokens: int = 256,
        temperature: float = 0.0,
        api_key_env: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: GenerationConfig) -> OpenAIChatGenerator:
        return cls(
            config.base_url,
            config.model or DEFAULT_MODEL,
            # No key is fine: local servers need none.
            api_key=os.environ.get(config.api_key_env) or None,
            api_key_env=config.api_key_env,
            timeout_s=config.timeout_s,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
        )

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def generate(
        self,
        question: str,
        context: Sequence[ContextItem],
        on_token: Callable[[str], None] | None = None,
    ) -> Generation:
        if not context:
            return Generation(REFUSAL, [], True, 0, 0, self.model)
        messages = build_messages(question, context)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if on_token is None:
            text, usage = self._complete(body)
        else:
            text, usage = self._stream(body, on_token)
        if not text.strip():
            raise GeneratorUnavailable(f"{self.url} returned an empty answer.")
        return finish_llm_answer(
            text,
            context,
            tokens_in=int(usage.get("prompt_tokens") or estimate_tokens(messages)),
            tokens_out=int(usage.get("completion_tokens") or estimate_tokens(text)),
            model=self.model,
        )

    def complete(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        """A plain chat completion (query rewriting); no citations, no context."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
        text, _ = self._complete(body)
        return text

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _complete(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        import httpx

        try:
            response = self._http().post(self.url, json=body)
            self._raise_for_status(response)
            data = response.json()
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from exc
        except ValueError as exc:
            raise GeneratorUnavailable(f"{self.url} answered with something that is not JSON.") from exc
        choices = data.get("choices") or [{}]
        text = (choices[0].get("message") or {}).get("content") or ""
        return text, data.get("usage") or {}

    def _stream(self, body: dict[str, Any], on_token: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
        import httpx

        body = body | {"stream": True, "stream_options": {"include_usage": True}}
        pieces: list[str] = []
        usage: dict[str, Any] = {}
        try:
            with self._http().stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for_status(response)
                for event in _sse_events(response.iter_lines()):
                    if "error" in event:
                        raise GeneratorUnavailable(f"{self.url} failed mid-answer: {_message(event)}")
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        token = (choice.get("delta") or {}).get("content")
                        if token:
                            pieces.append(token)
                            on_token(token)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from exc
        return "".join(pieces), usage

    def _http(self) -> httpx.Client:
        import httpx

        with self._client_lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(timeout=httpx.Timeout(self.timeout_s), headers=headers)
            return self._client

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _message(_json_or_text(response))
        if status in (401, 403):
            raise ConfigError(
                f"{self.url} rejected the API key ({status}): {detail}",
                hint=f"Put a valid key in ${self.api_key_env or 'OPENAI_API_KEY'} ([generation] api_key_env).",
            )
        if status == 404:
            raise ConfigError(
                f"{self.url} has no such endpoint or model {self.model!r} (404): {detail}",
                hint="Check [generation] base_url (it usually ends in /v1) and [generation] model.",
            )
        raise GeneratorUnavailable(f"{self.url} answered {status}: {detail}")

    def _unavailable(self, exc: Exception) -> GeneratorUnavailable:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return GeneratorUnavailable(
                f"{self.url} did not answer within {self.timeout_s:g} s.",
                hint="Raise [generation] timeout_s, or check that the server is up and not overloaded.",
            )
        return GeneratorUnavailable(
            f"Could not talk to {self.url}: {exc}",
            hint="Check [generation] base_url and that the server is running.",
        )


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, up to `data: [DONE]`."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments (": ping"), event names, blank separators
        payload = line[len("data:"):].strip()
        if payload == "[DONE]":
            return
        if not payload:
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            logger.warning("skipping a stream event that is not JSON: %.80s", payload)
            continue
        if isinstance(event, dict):
            yield event


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _message(payload: Any) -> str:
    """The human part of an error body: OpenAI's {"error": {"message": …}} or whatever text there is."""
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        return str(error)[:300]
    return str(payload).strip()[:300]
