"""Embeddings from any OpenAI-compatible `POST {base_url}/embeddings` (OpenAI, vLLM, Ollama, TEI, …).

Texts go out in batches of `batch_size` with at most `max_concurrency` requests in flight per embedder.
HTTP 429 (honouring `Retry-After`), 5xx, timeouts and dropped connections are retried with backoff
(`max_retries`); a rejected key or an unknown model is a configuration problem (`ModelError`) and is
never retried; any other 4xx is a problem with the texts themselves (`PermanentError`).
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcli.embedding.retry import RetryLaterError, transient_retry
from ragcli.errors import ModelError, PermanentError, TransientError
from ragcli.models_path import default_query_prefix

if TYPE_CHECKING:
    import httpx

    from ragcli.config import EmbeddingConfig

logger = logging.getLogger(__name__)

STAGE = "embed"
# Statuses that a later attempt may not see again: request timeout, rate limit, server trouble.
RETRY_STATUSES = {408, 429}


class OpenAIEmbedder:
    def __init__(
        self,
        *,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        dimensions: int | None = None,
        batch_size: int = 32,
        max_concurrency: int = 4,
        max_retries: int = 5,
        timeout_s: float = 60.0,
        query_prefix: str | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/embeddings"
        self.api_key_env = api_key_env
        self.requested_dimensions = dimensions
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.query_prefix = default_query_prefix(model) if query_prefix is None else query_prefix
        self._sleep = sleep
        self._dimension = dimensions
        self._in_flight = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self.calls = 0
        self.texts_embedded = 0
        self.requests_sent = 0
        self.retries = 0  # read by ingestion for its report (embedding retries in `ragcli stats`)

    @classmethod
    def from_config(
        cls, config: EmbeddingConfig, *, sleep: Callable[[float], Any] = time.sleep
    ) -> OpenAIEmbedder:
        return cls(
            model=config.model,
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            dimensions=config.dimensions,
            batch_size=config.batch_size,
            max_concurrency=config.max_concurrency,
            max_retries=config.max_retries,
            timeout_s=config.timeout_s,
            query_prefix=config.query_prefix,
            sleep=sleep,
        )

    @property
    def dimension(self) -> int:
        """The vector size: `dimensions` if configured, else learnt from one probe request."""
        if self._dimension is None:
            self._embed_batch(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        self._dimension = value

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self._count(len(texts))
        batches = [list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if not batches:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(batches) == 1 or self.max_concurrency == 1:
            return np.concatenate([self._embed_batch(b) for b in batches])
        return np.concatenate(self._embed_concurrently(batches))

    def embed_query(self, text: str) -> np.ndarray:
        self._count(1)
        return self._embed_batch([self.query_prefix + text])[0]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _count_retry(self, attempt: int, exc: BaseException, delay: float) -> None:
        with self._lock:
            self.retries += 1

    def _count(self, n_texts: int) -> None:
        with self._lock:
            self.calls += 1
            self.texts_embedded += n_texts

    def _embed_concurrently(self, batches: list[list[str]]) -> list[np.ndarray]:
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(batches)))
        futures: list[Future[np.ndarray]] = [pool.submit(self._embed_batch, b) for b in batches]
        try:
            return [f.result() for f in futures]
        except BaseException:
            # One batch failed for good: the call fails, so the batches not yet sent would be wasted.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        policy = transient_retry(
            self.max_retries,
            sleep=self._sleep,
            on_retry=self._count_retry,
            what=f"Embedding request to {self.url}",
            stage=STAGE,
        )
        vectors: np.ndarray = policy(self._request, texts)
        return vectors

    def _request(self, texts: list[str]) -> np.ndarray:
        import httpx

        payload: dict[str, Any] = {
            "model": self.name,
            # Most servers reject an empty string outright; a space embeds as "nothing" everywhere.
            "input": [t if t.strip() else " " for t in texts],
        }
        if self.requested_dimensions is not None:
            payload["dimensions"] = self.requested_dimensions
        with self._in_flight:
            with self._lock:
                self.requests_sent += 1
            try:
                response = self._get_client().post(self.url, json=payload)
            except httpx.TimeoutException as exc:
                raise TransientError(
                    f"No answer from {self.url} within {self.timeout_s:g}s ({type(exc).__name__})",
                    stage=STAGE,
                    hint="Raise embedding.timeout_s or lower embedding.batch_size.",
                ) from exc
            except httpx.TransportError as exc:
                raise TransientError(
                    f"Cannot reach {self.url}: {type(exc).__name__}: {exc}",
                    stage=STAGE,
                    hint="Check embedding.base_url and that the server is running.",
                ) from exc
        self._raise_for_status(response)
        return self._parse(response, len(texts))

    def _get_client(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                headers = {"Accept": "application/json"}
                key = os.environ.get(self.api_key_env)
                if key:  # local servers (Ollama, vLLM, TEI) take no key
                    headers["Authorization"] = f"Bearer {key}"
                self._client = httpx.Client(
                    timeout=self.timeout_s,
                    headers=headers,
                    limits=httpx.Limits(max_connections=self.max_concurrency),
                )
            return self._client

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _error_detail(response)
        where = f"{self.url} answered HTTP {status}"
        if status in RETRY_STATUSES or status >= 500:
            message = f"{where}: {detail}"
            if status == 429:
                raise RetryLaterError(
                    message,
                    retry_after=_retry_after_seconds(response),
                    stage=STAGE,
                    hint="The API is rate-limiting; lower embedding.max_concurrency or batch_size.",
                )
            raise TransientError(message, stage=STAGE)
        if status in (401, 403):
            key_state = "is set" if os.environ.get(self.api_key_env) else "is not set"
            raise ModelError(
                f"{where} (key refused): {detail}. The API key comes from ${self.api_key_env}, which {key_state}.",
                hint=f"Export a valid key in {self.api_key_env}, or set embedding.api_key_env to the "
                "variable that holds it.",
            )
        if status == 404 or _is_config_problem(detail):
            raise ModelError(
                f"{where} for model {self.name!r}: {detail}",
                hint="Check embedding.base_url (it should end in /v1 for most servers) and embedding.model.",
            )
        raise PermanentError(f"{where}: {detail}", stage=STAGE)

    def _parse(self, response: httpx.Response, expected: int) -> np.ndarray:
        try:
            items = response.json()["data"]
            ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
            vectors = np.asarray([item["embedding"] for item in ordered], dtype=np.float32)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # A proxy's HTML error page or a half-written body: the server may do better next time.
            raise TransientError(
                f"{self.url} sent an unreadable embeddings response: {type(exc).__name__}: {exc}",
                stage=STAGE,
            ) from exc
        if vectors.ndim != 2 or vectors.shape[0] != expected:
            raise TransientError(
                f"{self.url} returned {vectors.shape[0] if vectors.ndim else 0} vectors for {expected} texts.",
                stage=STAGE,
            )
        self._check_dimension(vectors.shape[1])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: np.ndarray = vectors / np.maximum(norms, np.float32(1e-12))
        return normalised

    def _check_dimension(self, got: int) -> None:
        with self._lock:
            if self._dimension is None:
                self._dimension = got
                return
        if got != self._dimension:
            raise ModelError(
                f"{self.url} returned {got}-d vectors for model {self.name!r}; expected {self._dimension}.",
                hint="Set embedding.dimensions to the model's size, or leave it unset.",
            )


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)[:300]
    return str(error)[:300]


def _is_config_problem(detail: str) -> bool:
    """A 400/422 about the model or the `dimensions` option: wrong settings, not a bad text."""
    text = detail.lower()
    # Phrases vLLM, Ollama, TEI and OpenAI use; "model" alone also appears in context-length errors,
    # which are about the text.
    about_model = "model" in text and any(w in text for w in ("not found", "does not exist", "unknown model"))
    return about_model or "dimensions" in text


def _retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:  # the header may also be an HTTP date
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
