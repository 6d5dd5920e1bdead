"""What `ragcli serve` keeps warm between requests, and how requests share it.

- One set of models (embedder, reranker, generators) for every request. A QueryEngine is cheap: the
  engines only hold references, so a refresh or a per-request provider builds a new engine around the
  loaded models. onnxruntime and LanceDB release the GIL, and a shared engine answered 32 concurrent
  questions identically to one at a time (docs/benchmarks.md), so workers share the models.
- A bounded pool: `workers` threads answer, `queue_size` more requests wait; beyond that a request is
  refused at once (429 + Retry-After) instead of queueing without bound.
- Freshness: every `refresh_seconds` a background thread reads the corpus journal's generation and the
  table's version. A change (an ingest in another process) opens the table again and swaps a new engine
  in; requests in flight finish on the old one. An ingest never waits for the server, nor the reverse.
- Telemetry: the event log's SQLite connection belongs to one thread, so every telemetry call runs on
  a single-thread executor; answers are written in batches (telemetry.flush_every / flush_seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.errors import StoreError
from ragcli.serve.metrics import Metrics

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.query import AskOptions, QueryEngine

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Busy(Exception):
    """Every worker is busy and the queue is full."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


class NotReady(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class AskRequest:
    question: str
    options: AskOptions
    provider: str | None = None
    use_cache: bool = True


@dataclass
class _Models:
    """Loaded models, keyed by the configuration they were loaded with (a reload keeps what did not change)."""

    embedder: Any = None
    embedder_config: Any = None
    reranker: Any = None
    reranker_config: Any = None
    generators: dict[str, Any] | None = None
    generation_config: Any = None


class ServeRuntime:
    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        cfg = settings.config.serve
        self.workers = cfg.workers
        self.capacity = cfg.workers + cfg.queue_size
        self.pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="ragcli-ask")
        self._telemetry_pool = ThreadPoolExecutor(1, thread_name_prefix="ragcli-telemetry")
        self._telemetry: Any = None
        self._pending = 0  # touched only on the event loop thread
        self._lock = threading.RLock()
        self._refresh_lock = threading.Lock()
        self._models = _Models(generators={})
        self._engines: dict[str, QueryEngine] = {}
        self._store: Any = None
        self._fingerprint: tuple[int, int, int] | None = None
        self.not_ready_reason: str | None = "starting: loading the models and opening the index"
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self._recent_ms: list[float] = []
        self._cache: Any = None
        self._cache_settings: Settings | None = None
        self.on_reload: Callable[[Settings], None] | None = None

    # ----- life cycle -------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.not_ready_reason is None

    def start(self) -> None:
        """Load models and open the index in the background; /readyz says 503 until that is done."""
        self._refresher = threading.Thread(target=self._refresh_loop, name="ragcli-refresh", daemon=True)
        self._refresher.start()

    def stop(self) -> None:
        """After the HTTP server drained: let queued work finish, then write the pending events."""
        self._stop.set()
        self.pool.shutdown(wait=True)
        if self._refresher is not None:
            self._refresher.join(timeout=30)
        self._telemetry_pool.submit(self._close_telemetry).result(timeout=60)
        self._telemetry_pool.shutdown(wait=True)

    def reload(self, settings: Settings) -> None:
        """New configuration (SIGHUP): models whose section did not change stay loaded."""
        with self._lock:
            self.settings = settings
            self._fingerprint = None
            self._engines = {}
        self._telemetry_pool.submit(self._close_telemetry)
        self.refresh()
        if self.on_reload is not None:
            self.on_reload(settings)
        logger.info("Configuration reloaded")

    # ----- admission ----------------------------------------------------------------------------------
    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func` on a worker, or raise Busy when the workers and the queue are all taken."""
        if self._pending >= self.capacity:
            self.metrics.rejected.labels("busy").inc()
            raise Busy(self._retry_after())
        self._pending += 1
        self.metrics.in_flight.set(self._pending)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)
        finally:
            self._pending -= 1
            self.metrics.in_flight.set(self._pending)

    def _retry_after(self) -> int:
        """Seconds until a queue slot is likely free: the queue's length in recent answer times."""
        recent = sorted(self._recent_ms[-50:])
        typical_s = recent[len(recent) // 2] / 1000 if recent else 1.0
        return max(1, math.ceil(typical_s * self._pending / self.workers))

    # ----- requests (on worker threads) -----------------------------------------------------------------
    def ask(self, request: AskRequest) -> dict[str, Any]:
        from ragcli.query import ask_with_cache

        # Read before the engine: after a swap in between, the older cap only makes answers look stale.
        cap = self._fingerprint[2] if self._fingerprint else 0
        engine = self._engine(request.provider, rerank=request.options.rerank)
        cpu_started = time.thread_time()
        result, _ = ask_with_cache(
            engine.settings,
            request.question,
            request.options,
            use_cache=request.use_cache,
            engine=engine,
            answer_cache=self._answer_cache(),
            generation_cap=cap,
        )
        cpu_seconds = time.thread_time() - cpu_started
        self._remember_latency(result)
        self.metrics.observe_answer(result)
        self._telemetry_pool.submit(self._record_ask, result, cpu_seconds)
        return result

    def search(self, question: str, options: AskOptions) -> dict[str, Any]:
        from ragcli.serve.payloads import search_json

        started = time.perf_counter()
        engine = self._engine(None, rerank=options.rerank)
        retrieval = engine.retrieve(question, options)
        return search_json(question, retrieval, (time.perf_counter() - started) * 1000)

    async def feedback(self, request_id: str, rating: str, note: str | None) -> None:
        await self._in_telemetry_thread(lambda: self._get_telemetry().feedback(request_id, rating, note))

    async def stats(self, since_seconds: float | None) -> dict[str, Any]:
        from ragcli.app.stats import collect_stats

        return await self._in_telemetry_thread(
            lambda: collect_stats(self.settings, self._get_telemetry(), since_seconds)
        )

    def _answer_cache(self) -> Any:
        """One open answer cache for every worker (diskcache is thread-safe; opening it per question is
        what made a cache hit cost ~30 ms in a fresh `ask`)."""
        with self._lock:
            if self._cache is None or self._cache_settings is not self.settings:
                from ragcli.cache.answers import AnswerCache

                self._cache, self._cache_settings = AnswerCache(self.settings), self.settings
            return self._cache

    def _remember_latency(self, result: dict[str, Any]) -> None:
        total = (result.get("timings_ms") or {}).get("total")
        if isinstance(total, int | float):
            self._recent_ms.append(float(total))
            if len(self._recent_ms) > 200:
                del self._recent_ms[:100]

    # ----- engines ------------------------------------------------------------------------------------
    def _engine(self, provider: str | None, *, rerank: bool | None) -> QueryEngine:
        if not self.ready:
            raise NotReady(self.not_ready_reason or "not ready")
        provider = provider or self.settings.config.generation.provider
        wants_rerank = self._needs_cross_encoder(self.settings.config) or bool(rerank)
        with self._lock:
            if wants_rerank and self._models.reranker is None:
                self._load_reranker()
                self._engines = {}
            engine = self._engines.get(provider)
            if engine is None:
                engine = self._engines[provider] = self._new_engine(provider)
        return engine

    def _settings_for(self, provider: str) -> Settings:
        config = self.settings.config
        if provider == config.generation.provider:
            return self.settings
        generation = config.generation.model_copy(update={"provider": provider})
        return replace(self.settings, config=config.model_copy(update={"generation": generation}))

    def _new_engine(self, provider: str) -> QueryEngine:
        from ragcli.query import QueryEngine

        settings = self._settings_for(provider)
        generators = self._models.generators or {}
        if provider not in generators:
            from ragcli.generation import get_generator

            generators[provider] = get_generator(settings.config.generation)
            self._models.generators = generators
        return QueryEngine(
            settings,
            embedder=self._models.embedder,
            store=self._store,
            reranker=self._models.reranker,
            generator=generators[provider],
        )

    def _load_models(self) -> None:
        """Load what the configuration needs and is not loaded yet (with the configuration it was loaded for)."""
        config = self.settings.config
        models = self._models
        if models.embedder is None or models.embedder_config != config.embedding:
            from ragcli.embedding import get_embedder

            models.embedder = get_embedder(config.embedding)
            models.embedder_config = config.embedding
        if models.reranker_config is not None and models.reranker_config != config.rerank:
            models.reranker = models.reranker_config = None
        if self._needs_cross_encoder(config) and models.reranker is None:
            self._load_reranker()
        if models.generation_config != config.generation:
            models.generators, models.generation_config = {}, config.generation

    @staticmethod
    def _needs_cross_encoder(config: Any) -> bool:
        """The answer gate reads the cross-encoder too: loaded here, it is shared by every engine and
        survives a refresh, instead of each new engine loading its own on its first question."""
        return bool(config.rerank.enabled or config.answer.gate)

    def _load_reranker(self) -> None:
        """One shared cross-encoder: its runs are single-threaded and its pool is shared by every request
        (onnx_models.ParallelRuns), so concurrent requests never run more of them at once than there are
        cores, and a lone request gets them all (docs/benchmarks.md)."""
        from ragcli.rerank import get_reranker

        self._models.reranker = get_reranker(self.settings.config.rerank)
        self._models.reranker_config = self.settings.config.rerank

    # ----- freshness -----------------------------------------------------------------------------------
    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # the next round tries again; the old engine keeps serving
                logger.warning("Index refresh failed: %s", exc, exc_info=logger.isEnabledFor(logging.DEBUG))
            self._flush_telemetry_soon()
            interval = self.settings.config.serve.refresh_seconds
            self._stop.wait(interval if self.ready else min(interval, 1.0))

    def refresh(self) -> bool:
        """Open the index again when an ingest changed it since; True when a new engine was swapped in."""
        with self._refresh_lock:  # the refresh thread and a SIGHUP reload, one at a time
            return self._refresh()

    def _refresh(self) -> bool:
        from ragcli.cache.factory import open_journal
        from ragcli.store import get_store

        with self._lock:
            settings = self.settings
            self._load_models()
        journal = open_journal(settings)
        # Settled before the store is opened: the engine sees every generation up to it, so an answer it
        # computes is filed under at most that one, even after a newer ingest settled (ask_with_cache).
        generation, settled = journal.current(), journal.settled()
        store = get_store(settings)
        if not store.exists():
            self._set_not_ready(f"there is no index at {store.uri} yet: run `ragcli ingest PATH`")
            return False
        version = store.version
        if self._fingerprint == (generation, version, settled):
            return False
        with self._lock:
            previous, self._store = self._store, store
            try:
                engine = self._new_engine(settings.config.generation.provider)
                self._warm(engine)
            except Exception:
                self._store = previous
                raise
            self._engines = {settings.config.generation.provider: engine}
            self._fingerprint = (generation, version, settled)
        self.not_ready_reason = None
        self.metrics.ready.set(1)
        self.metrics.index_version.set(version)
        self.metrics.generation.set(generation)
        self._set_ingest_age(store)
        if previous is not None:
            self.metrics.refreshes.inc()
            logger.info("Serving index version %d (corpus generation %d)", version, generation)
        return True

    def _warm(self, engine: QueryEngine) -> None:
        """Load the table and its indexes before the engine takes requests (and fail here, not there)."""
        from ragcli.query import AskOptions

        try:
            if self._fingerprint is None:  # the first time also loads what only answering needs (tokenizers)
                engine.ask("warm up", AskOptions(k=1))
            else:
                engine.retrieve("warm up", AskOptions(k=1))
        except StoreError as exc:
            self._set_not_ready(exc.message)
            raise

    def _set_ingest_age(self, store: Any) -> None:
        try:
            updated = float(store.meta().get("updated_at", "0") or 0)
        except Exception:
            return
        if updated:
            self._last_ingest = updated
            self.metrics.last_ingest_age.set_function(lambda: time.time() - updated)

    def _set_not_ready(self, reason: str) -> None:
        if self.not_ready_reason != reason and self._fingerprint is None:
            logger.warning("Not ready: %s", reason)
        if self._fingerprint is None:  # once serving, a failed refresh keeps the old index
            self.not_ready_reason = reason
            self.metrics.ready.set(0)

    # ----- telemetry (one thread) -------------------------------------------------------------------------
    def _get_telemetry(self) -> Any:
        if self._telemetry is None:
            from ragcli.telemetry.facade import Telemetry

            self._telemetry = Telemetry(self.settings)
        return self._telemetry

    def _record_ask(self, result: dict[str, Any], cpu_seconds: float) -> None:
        self._get_telemetry().record_ask(result, cpu_seconds)

    def _flush_telemetry_soon(self) -> None:
        """An idle server still writes its last answers within about flush_seconds + refresh_seconds."""
        if self._telemetry is not None and not self._stop.is_set():
            with contextlib.suppress(RuntimeError):  # the pool shut down meanwhile
                self._telemetry_pool.submit(self._telemetry.flush)

    def _close_telemetry(self) -> None:
        if self._telemetry is not None:
            self._telemetry.close()
            self._telemetry = None

    async def _in_telemetry_thread(self, func: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self._telemetry_pool.submit(func))

