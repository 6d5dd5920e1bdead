"""One retry policy for transient failures (HTTP 429/5xx, timeouts, dropped connections).

Exponential backoff with jitter, or exactly the wait a server asked for (an exception with a
`retry_after` attribute, e.g. from a `Retry-After` header). After the last retry the caller gets one
`TransientError` that says how many attempts were made and what the last failure was, so the ingestion
pipeline can record the document for a later run.

`sleep` is injectable: tests pass a recorder and run instantly, like tenacity's own `nap` hook.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ragcli.errors import DocumentError, TransientError

if TYPE_CHECKING:
    from tenacity import RetryCallState, Retrying

logger = logging.getLogger(__name__)

OnRetry = Callable[[int, BaseException, float], None]
"""Called before each wait with (attempt number that failed, its exception, seconds about to wait)."""


class RetriesExhaustedError(TransientError):
    """A transient failure that already went through a retry policy: still worth a later run, but an
    outer policy must not retry it again (nested policies would multiply the attempts)."""


class RetryLaterError(TransientError):
    """A transient failure for which the other side named the wait (HTTP 429 with Retry-After)."""

    def __init__(
        self, message: str, *, retry_after: float | None, stage: str = "embed", hint: str | None = None
    ) -> None:
        super().__init__(message, stage=stage, hint=hint)
        self.retry_after = retry_after


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientError) and not isinstance(exc, RetriesExhaustedError)


def transient_retry(
    max_retries: int,
    *,
    sleep: Callable[[float], Any] = time.sleep,
    on_retry: OnRetry | None = None,
    retry_on: Callable[[BaseException], bool] = is_transient,
    what: str = "operation",
    stage: str = "embed",
    initial_wait: float = 0.5,
    max_wait: float = 30.0,
    max_retry_after: float = 120.0,
) -> Retrying:
    """A tenacity `Retrying`: call it with a function (`policy(fn, *args)`) or iterate over it.

    Exceptions for which `retry_on` is false pass through at once. When the retries are spent, a
    `TransientError` naming `what` and the attempt count is raised from the last failure.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_attempt

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and asked >= 0:
            # A server that names its wait knows its rate window better than any backoff formula; the
            # cap keeps a hostile or broken header from parking the run for hours.
            return float(min(asked, max_retry_after))
        return backoff_seconds(state.attempt_number, initial_wait, max_wait)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s failed (attempt %d of %d): %s; retrying in %.1fs",
            what,
            state.attempt_number,
            max_retries + 1,
            _describe(exc),
            delay,
        )
        if on_retry is not None and exc is not None:
            on_retry(state.attempt_number, exc, delay)

    def give_up(state: RetryCallState) -> Any:
        exc = state.outcome.exception() if state.outcome else None
        attempts = state.attempt_number
        hint = exc.hint if isinstance(exc, DocumentError) else None
        raise RetriesExhaustedError(
            f"{what} failed after {attempts} attempt{'s' if attempts != 1 else ''}: {_describe(exc)}",
            stage=exc.stage if isinstance(exc, DocumentError) else stage,
            hint=hint or "The service may be overloaded or unreachable; run the command again later.",
        ) from exc

    return Retrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait,
        retry=retry_if_exception(retry_on),
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )


def backoff_seconds(attempt: int, initial: float, cap: float) -> float:
    """initial · 2^(attempt-1), capped, plus up to `initial` of jitter so parallel workers spread out."""
    # Written out rather than tenacity's wait_exponential_jitter, whose parameters changed between 8.x
    # and 9.x (the old spelling now warns).
    return min(cap, initial * 2 ** (attempt - 1)) + random.uniform(0, initial)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no exception"
    if isinstance(exc, DocumentError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
