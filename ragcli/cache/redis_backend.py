"""The caches and the corpus journal in Redis (`[cache] backend = "redis"`): shared by every machine that
queries or ingests one index, so an answer cached by one is served by all, and all see the same corpus
generation (the never-stale rule of ragcli/cache/answers.py holds across machines).

Every key is under `ragcli:<index>:` (a hash of the index URI and table), so several indexes can share
one Redis. Values are raw bytes (vectors) or JSON, never pickles: a value written by another machine can
be damaged or hostile, and then it is a miss, never code. Expiry is Redis's own (`[cache] ttl_hours`);
the memory bound is the server's `maxmemory` with an LRU policy (`[cache] size_limit_mb` applies to the
disk backend only). A Redis that is down costs a miss on the query side; an ingest stops (exit 5),
because a change it could not record could make a cached answer look fresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ragcli.errors import ConfigError, StoreError
from ragcli.store.journal import term_hash

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings

logger = logging.getLogger(__name__)

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client(url: str) -> Any:
    """One connection pool per URL and process (redis-py clients are thread-safe)."""
    with _clients_lock:
        if url not in _clients:
            try:
                import redis
            except ImportError as exc:
                raise ConfigError(
                    '[cache] backend = "redis" needs the redis extra, which is not installed.',
                    hint="pip install 'ragcli[redis]'",
                ) from exc
            _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return _clients[url]


def namespace(settings: Settings) -> str:
    index = f"{settings.store_uri}#{settings.config.store.table}"
    return "ragcli:" + hashlib.sha256(index.encode()).hexdigest()[:16]


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return b"b" + value
    return b"j" + json.dumps(value, separators=(",", ":"), default=str).encode()


def _decode(raw: bytes | None, default: Any = None) -> Any:
    if raw is None:
        return default
    if raw[:1] == b"b":
        return raw[1:]
    if raw[:1] == b"j":
        return json.loads(raw[1:])
    return int(raw)  # a counter written by INCR


class RedisStore:
    """The part of diskcache.Cache's interface the caches use, on Redis keys `<prefix>:<key>`."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + ":"

    def get(self, key: str, default: Any = None) -> Any:
        return _decode(self.redis.get(self.prefix + key), default)

    def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        try:
            self.redis.set(self.prefix + key, _encode(value), px=int(expire * 1000) if expire else None)
        except Exception as exc:  # a cache that cannot be written costs a later miss, not this answer
            logger.warning("Could not write to the Redis cache: %s", exc)
            return False
        return True

    def delete(self, key: str) -> bool:
        with contextlib.suppress(Exception):
            return bool(self.redis.delete(self.prefix + key))
        return False

    def incr(self, key: str, delta: int = 1) -> int:
        return int(self.redis.incrby(self.prefix + key, delta))

    def iterkeys(self) -> Iterator[str]:
        for raw in self.redis.scan_iter(match=self.prefix + "*", count=500):
            yield raw.decode()[len(self.prefix) :]

    def volume(self) -> int:
        keys = [self.prefix + key for key in self.iterkeys()]
        if not keys:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key)
        return sum(int(size or 0) for size in pipe.execute())

    def clear(self) -> int:
        keys = [self.prefix + key for key in self.iterkeys()]
        for start in range(0, len(keys), 500):
            self.redis.delete(*keys[start : start + 500])
        return len(keys)

    @contextlib.contextmanager
    def transact(self) -> Iterator[None]:
        yield


class RedisVectors:
    """The semantic cache's question vectors (cache/semantic.py's FlatVectorFile) in one Redis hash:
    key id -> float32 bytes; searched exactly, by one matrix product, like the file."""

    def __init__(self, redis: Any, key: str, dimension: int) -> None:
        self.redis = redis
        self.key = key
        self.dimension = dimension

    def append(self, key: int, vector: np.ndarray) -> None:
        try:
            self.redis.hset(self.key, str(key), vector.astype("<f4").tobytes())
        except Exception as exc:
            logger.warning("Could not write to the Redis cache: %s", exc)

    def _all(self) -> tuple[list[int], np.ndarray]:
        import numpy as np

        keys, rows = [], []
        for field, raw in self.redis.hgetall(self.key).items():
            if len(raw) == 4 * self.dimension:  # a damaged or foreign value is skipped
                keys.append(int(field))
                rows.append(np.frombuffer(raw, dtype="<f4"))
        return keys, (np.stack(rows) if rows else np.zeros((0, self.dimension), "<f4"))

    def search(self, vector: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        import numpy as np

        keys, matrix = self._all()
        if not keys:
            return []
        scores = matrix @ vector.astype("float32")
        top = np.argsort(-scores)[:k]
        return [(keys[i], float(scores[i])) for i in top]

    def __len__(self) -> int:
        return int(self.redis.hlen(self.key))

    def rewrite(self, keep: set[int]) -> None:
        doomed = [f for f in self.redis.hkeys(self.key) if int(f) not in keep]
        if doomed:
            self.redis.hdel(self.key, *doomed)


# Opening a generation is one atomic step: a reader never sees the new number without it being open.
_OPEN_GENERATION = """
local gen = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], gen, gen)
return gen
"""


class RedisJournal:
    """The corpus journal (store/journal.py, same methods and meaning) in Redis, shared by all machines.

    Per document and per content-word hash it keeps only the newest generation that changed it: that is
    all "changed after generation g?" needs, and it keeps the journal's size bounded by the corpus."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + ":journal:"
        self._gen: int | None = None

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise StoreError(
                f"The corpus journal in Redis cannot be {what}: {exc}",
                hint="Check that Redis at [cache] redis_url is running and reachable.",
            ) from exc

    def current(self) -> int:
        return int(self._call("read", lambda: self.redis.get(self._key("gen"))) or 0)

    def settled(self) -> int:
        def read() -> int:
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(self._key("gen"))
            pipe.zrange(self._key("open"), 0, 0)
            gen, oldest_open = pipe.execute()
            return int(oldest_open[0]) - 1 if oldest_open else int(gen or 0)

        return int(self._call("read", read))

    def finish(self) -> None:
        self._call("written", lambda: self.redis.delete(self._key("open")))

    def record(
        self,
        doc_ids: Iterable[str],
        terms: Iterable[str] = (),
        *,
        sources: Mapping[str, str] | None = None,
        removed: bool = False,
    ) -> int:
        # `sources` and `removed` keep a local journal's list of what each document was read from, so
        # that `ragcli reindex` can rebuild a damaged index; a shared journal leaves that list to the
        # machine's own state.
        del sources, removed

        def write() -> int:
            if self._gen is None:
                self._gen = int(self.redis.eval(_OPEN_GENERATION, 2, self._key("gen"), self._key("open")))
            docs = {doc: self._gen for doc in doc_ids}
            words = {str(term_hash(t)): self._gen for t in set(terms)}
            pipe = self.redis.pipeline(transaction=True)
            if docs:
                pipe.hset(self._key("docs"), mapping=docs)
            if words:
                pipe.hset(self._key("terms"), mapping=words)
            pipe.execute()
            return self._gen

        return int(self._call("written", write))

    def remember_documents(self, documents: Mapping[str, str]) -> None:
        """The list of sources a rebuild reads is kept by each machine's local journal, not here."""

    def _any_after(self, name: str, gen: int, fields: list[str]) -> bool:
        for start in range(0, len(fields), 500):
            values = self._call("read", lambda s=start: self.redis.hmget(self._key(name), fields[s : s + 500]))
            if any(v is not None and int(v) > gen for v in values):
                return True
        return False

    def changed_since(self, gen: int, doc_ids: Iterable[str]) -> bool:
        return self._any_after("docs", gen, sorted(set(doc_ids)))

    def terms_changed_since(self, gen: int, term_hashes: Iterable[int]) -> bool:
        return self._any_after("terms", gen, [str(h) for h in sorted(set(term_hashes))])
