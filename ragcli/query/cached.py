"""`ask_with_cache`: the answer caches in front of the query engine, and the degraded answer from a
similar cached question when the index cannot be read."""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ragcli.errors import StoreError
from ragcli.query.engine import STAGES, AskOptions, QueryEngine, error_reason

if TYPE_CHECKING:
    import numpy as np

    from ragcli.cache.answers import AnswerCache
    from ragcli.config import Settings

logger = logging.getLogger(__name__)


def ask_with_cache(
    settings: Settings,
    question: str,
    options: AskOptions | None = None,
    *,
    use_cache: bool = True,
    on_token: Callable[[str], None] | None = None,
    engine: QueryEngine | None = None,
    answer_cache: AnswerCache | None = None,
    generation_cap: int | None = None,
) -> tuple[dict[str, Any], QueryEngine | None]:
    """Answer through the caches: exact hit (no model, no index opened), then semantic hit (the
    question is embedded, the index is not searched), then the full pipeline, whose answer is cached
    unless it was degraded. Returns the JSON result and the engine, for reuse across questions.
    `answer_cache`: a long-lived process's open cache (opening one costs tens of ms per question).
    `generation_cap`: the settled generation a long-lived engine's index version includes; a newer
    ingest it has not reopened the index for must not make its answers look current."""
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.keys import scope_key

    options = options or AskOptions()
    config = settings.config
    started = time.perf_counter()
    mode = options.mode or config.retrieval.mode
    k = options.k or config.retrieval.top_k
    rerank = config.rerank.enabled if options.rerank is None else options.rerank
    scope = scope_key(config, filters=options.filters.fingerprint(), mode=mode, k=k, rerank=rerank)
    cache = (answer_cache or AnswerCache(settings)) if use_cache and config.cache.enabled else None

    if cache is not None:
        opened = cache
        hit = _safe_cache_call(lambda: opened.get_exact(question, scope))
        if hit is not None:
            return _served_from_cache(hit, question, started), engine
        # Read before searching, so a concurrent ingest makes the answer stale. A journal that cannot
        # be read (damaged, or a shared one on a Redis that is down) leaves no way to tell a stale
        # answer: answer without the cache.
        generation = _safe_cache_call(cache.generation)
        if generation is None:
            cache = None
        elif generation_cap is not None:
            generation = min(generation, generation_cap)
    engine = engine or QueryEngine(settings)
    engine.prefetch()
    vector = None
    embed_ms = 0.0
    if cache is not None and cache.semantic_enabled and mode != "keyword":
        embed_started = time.perf_counter()
        try:
            vector = engine.embed_query(question)
        except Exception as exc:
            logger.debug("No semantic lookup: the question could not be embedded (%s)", exc)
        embed_ms = (time.perf_counter() - embed_started) * 1000
        if vector is not None:
            semantic = vector
            hit = _safe_cache_call(lambda: cache.get_semantic(question, semantic, scope))
            if hit is not None:
                return _served_from_cache(hit, question, started, embed_ms), engine
    try:
        result = engine.ask(question, options, on_token=on_token, vector=vector)
    except StoreError as exc:
        fallback = _similar_cached_answer(cache, question, vector, scope) if cache is not None else None
        if fallback is None:
            raise
        data = _served_from_cache(fallback, question, started, embed_ms)
        data["degraded"] = True
        data["degraded_reason"] = (
            f"store_unavailable: {error_reason(exc)}; served the cached answer to a similar question"
        )
        return data, engine
    data = result.to_json()
    if embed_ms:  # the question was embedded before the search, for the semantic lookup
        data["timings_ms"]["embed"] = round(embed_ms, 2)
        data["timings_ms"]["total"] = round((time.perf_counter() - started) * 1000, 2)
    if cache is not None and not result.degraded:
        doc_ids = [c["doc_id"] for c in result.citations] + result.candidate_doc_ids
        _safe_cache_call(
            lambda: cache.put(question, scope, data, doc_ids=doc_ids, generation=generation, vector=vector)
        )
    return data, engine


def _similar_cached_answer(cache: Any, question: str, vector: np.ndarray | None, scope: str) -> Any:
    """With the index unreadable, a guarded answer to a similar question beats no answer (flagged)."""
    if vector is None:
        return None
    # A shallow copy with its own threshold: the cache may be shared by a server's threads.
    relaxed = copy.copy(cache)
    relaxed.threshold = max(0.85, cache.threshold - 0.07)
    return _safe_cache_call(lambda: relaxed.get_semantic(question, vector, scope))


def _safe_cache_call(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # the cache may cost a miss, never an answer
        from ragcli.cache.disk import warn_once

        warn_once("answer-cache", type(exc).__name__, "Cache unavailable (%s: %s); answering without it",
                  type(exc).__name__, exc)
        return None


def _served_from_cache(hit: Any, question: str, started: float, embed_ms: float = 0.0) -> dict[str, Any]:
    data = dict(hit.result)
    data["question"] = question
    data["request_id"] = uuid.uuid4().hex
    data["cache"] = hit.kind
    data["matched_question"] = hit.matched_question
    if hit.similarity is not None:
        data["similarity"] = hit.similarity
    data["timings_ms"] = {stage: 0.0 for stage in STAGES} | {
        "embed": round(embed_ms, 2),
        "total": round((time.perf_counter() - started) * 1000, 2),
    }
    data["tokens"] = {key: 0 for key in data.get("tokens", {})}
    return data
