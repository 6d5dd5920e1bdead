"""Which backend holds the caches and the corpus journal: local disk (diskcache, SQLite, a vector file in
the state directory) or Redis (`[cache] backend = "redis"`, shared by several machines: redis_backend.py).

The caches talk to a `KeyValueStore` and a `QuestionVectors`, whichever backend is behind them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings

logger = logging.getLogger(__name__)


class KeyValueStore(Protocol):
    """The subset of diskcache.Cache the caches use."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, expire: float | None = None) -> bool: ...

    def delete(self, key: str) -> Any: ...

    def incr(self, key: str, delta: int = 1) -> int | None: ...

    def iterkeys(self) -> Iterator[str]: ...

    def volume(self) -> int: ...

    def clear(self) -> int: ...

    def transact(self) -> AbstractContextManager[Any]: ...


class QuestionVectors(Protocol):
    def append(self, key: int, vector: np.ndarray) -> None: ...

    def search(self, vector: np.ndarray, k: int = 5) -> list[tuple[int, float]]: ...

    def __len__(self) -> int: ...

    def rewrite(self, keep: set[int]) -> None: ...


class Journal(Protocol):
    """The corpus journal (store/journal.py)."""

    def current(self) -> int: ...

    def settled(self) -> int: ...

    def finish(self) -> None: ...

    def record(
        self,
        doc_ids: Iterable[str],
        terms: Iterable[str] = (),
        *,
        sources: Mapping[str, str] | None = None,
        removed: bool = False,
    ) -> int: ...

    def remember_documents(self, documents: Mapping[str, str]) -> None: ...

    def changed_since(self, gen: int, doc_ids: Iterable[str]) -> bool: ...

    def terms_changed_since(self, gen: int, term_hashes: Iterable[int]) -> bool: ...


def uses_redis(settings: Settings) -> bool:
    return settings.config.cache.backend == "redis"


def open_kv(settings: Settings, kind: str) -> KeyValueStore:
    """The store of one cache ("answers" or "embeddings")."""
    if uses_redis(settings):
        from ragcli.cache.redis_backend import RedisStore, client, namespace

        return RedisStore(client(settings.config.cache.redis_url), f"{namespace(settings)}:{kind}")
    from ragcli.cache.disk import open_cache

    cache: KeyValueStore = open_cache(settings.cache_dir / kind, size_limit_mb=settings.config.cache.size_limit_mb)
    return cache


def question_vectors(settings: Settings, dimension: int) -> QuestionVectors:
    if uses_redis(settings):
        from ragcli.cache.redis_backend import RedisVectors, client, namespace

        key = f"{namespace(settings)}:answers:questions-{dimension}"
        return RedisVectors(client(settings.config.cache.redis_url), key, dimension)
    from ragcli.cache.semantic import FlatVectorFile

    return FlatVectorFile(settings.cache_dir / f"questions-{dimension}.f32", dimension)


def open_journal(settings: Settings) -> Journal:
    """With Redis, the journal is shared: every machine sees the generation any machine's ingest opened."""
    if uses_redis(settings):
        from ragcli.cache.redis_backend import RedisJournal, client, namespace

        return RedisJournal(client(settings.config.cache.redis_url), namespace(settings))
    from ragcli.store.journal import journal_for

    return journal_for(settings)


def answers_can_be_shared(settings: Settings) -> bool:
    """An index on object storage can be changed by another machine, whose ingest a local journal never
    sees: answers are cached only when the journal is shared (Redis), else they could be served stale."""
    from ragcli.store.remote import is_remote

    if is_remote(settings.store_uri) and not uses_redis(settings):
        logger.info(
            'The answer cache is off: the index is on object storage and [cache] backend is "disk"; '
            'set [cache] backend = "redis" to cache answers across machines.'
        )
        return False
    return True
