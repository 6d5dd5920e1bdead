"""Embedding caches: query vectors by (model, text) and chunk vectors by (model, chunk hash).

Vectors are stored as raw float32 bytes, not pickles, so a damaged entry cannot execute anything and is
recognised by its length. The model key includes the truncation length, which changes the vectors too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ragcli.cache.disk import safe_get

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings

logger = logging.getLogger(__name__)


class EmbeddingCache:
    def __init__(self, settings: Settings) -> None:
        cfg = settings.config.cache
        self.settings = settings
        self.enabled = cfg.enabled and cfg.embeddings
        self.directory = settings.cache_dir / "embeddings"
        self.size_limit_mb = cfg.size_limit_mb
        emb = settings.config.embedding
        self.model_key = f"{emb.backend}:{emb.model}:{emb.model_path or ''}:{emb.max_tokens}"
        self._cache: Any = None
        self.hits = 0
        self.misses = 0

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from ragcli.cache.factory import open_kv

            self._cache = open_kv(self.settings, "embeddings")
        return self._cache

    def _decode(self, raw: Any, dimension: int | None) -> np.ndarray | None:
        import numpy as np

        if not isinstance(raw, bytes) or len(raw) % 4:
            return None
        vector = np.frombuffer(raw, dtype="<f4")
        if dimension is not None and vector.shape[0] != dimension:
            return None
        return vector

    def get_query(self, text: str, dimension: int | None = None) -> np.ndarray | None:
        if not self.enabled:
            return None
        key = f"q:{self.model_key}:{hashlib.sha256(text.encode()).hexdigest()}"
        vector = self._decode(safe_get(self.cache, key), dimension)
        self._tally(vector is not None)
        return vector

    def put_query(self, text: str, vector: np.ndarray) -> None:
        if self.enabled:
            key = f"q:{self.model_key}:{hashlib.sha256(text.encode()).hexdigest()}"
            self.cache.set(key, vector.astype("<f4").tobytes())

    def get_chunks(self, chunk_hashes: Iterable[str], dimension: int) -> dict[str, np.ndarray]:
        if not self.enabled:
            return {}
        found: dict[str, np.ndarray] = {}
        for chunk_hash in set(chunk_hashes):
            vector = self._decode(safe_get(self.cache, f"c:{self.model_key}:{chunk_hash}"), dimension)
            self._tally(vector is not None)
            if vector is not None:
                found[chunk_hash] = vector
        return found

    def put_chunks(self, vectors: Mapping[str, np.ndarray]) -> None:
        if not self.enabled or not vectors:
            return
        with self.cache.transact():
            for chunk_hash, vector in vectors.items():
                self.cache.set(f"c:{self.model_key}:{chunk_hash}", vector.astype("<f4").tobytes())

    def _tally(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def stats(self) -> dict[str, Any]:
        cache = self.cache
        queries = chunks = 0
        for key in cache.iterkeys():
            if isinstance(key, str):
                queries += key.startswith("q:")
                chunks += key.startswith("c:")
        return {"query_entries": queries, "chunk_entries": chunks, "size_bytes": int(cache.volume())}

    def clear(self) -> int:
        return int(self.cache.clear())
