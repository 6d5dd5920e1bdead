"""The answer cache: exact hits by key, semantic hits by question embedding, both checked for staleness.

The never-stale rule. An answer is filed under the corpus generation it was computed in (the journal's
settled generation, read before the search: ragcli/store/journal.py) and is served only while
1. no document among its retrieval candidates — the passages it cites and every other document the
   search ranked for it — was changed or removed after that generation;
2. no document added or changed after that generation holds any content word of the question: such a
   document could now enter the candidates (the keyword search would find it, and a passage about the
   question almost always shares a word with it), so the answer might change;
3. for a refusal or a low-confidence answer (confidence below `STRICT_BELOW_CONFIDENCE`): the corpus has
   not changed at all since. "The documents do not say" is a claim about every document, so any new
   document can make it wrong.
Rule 2 is lexical: a new document that matches the question only in meaning, with no word in common,
does not invalidate a confident answer (vector search could rank it; that case is rare and the answer
expires after `[cache] ttl_hours`). An index rebuilt by `ragcli reindex` starts a new cache scope.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.cache.disk import safe_get, warn_once
from ragcli.cache.guards import semantic_match_refused
from ragcli.cache.keys import exact_key, normalise_question
from ragcli.store.journal import term_hash

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings

logger = logging.getLogger(__name__)

KINDS = ("exact", "semantic", "embeddings")
# Answers less sure than this are served only while the corpus is unchanged (rule 3 above).
STRICT_BELOW_CONFIDENCE = 0.75


@dataclass
class CacheHit:
    kind: str
    result: dict[str, Any]
    matched_question: str
    similarity: float | None = None


class AnswerCache:
    def __init__(self, settings: Settings) -> None:
        cfg = settings.config.cache
        from ragcli.cache.factory import answers_can_be_shared, open_journal

        self.settings = settings
        self.enabled = cfg.enabled and answers_can_be_shared(settings)
        # Privacy mode keeps question text out of every file; the semantic guards need the text, so
        # that mode has exact hits only, keyed and stored by hash.
        self.private = not settings.config.telemetry.store_question_text
        self.semantic_enabled = self.enabled and cfg.semantic and not self.private
        self.threshold = cfg.semantic_threshold
        self.ttl_seconds = cfg.ttl_hours * 3600
        self.directory = settings.cache_dir / "answers"
        self.size_limit_mb = cfg.size_limit_mb
        self.journal = open_journal(settings)
        self._cache: Any = None

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from ragcli.cache.factory import open_kv

            self._cache = open_kv(self.settings, "answers")
        return self._cache

    def generation(self) -> int:
        """The generation a result computed from now on is filed under (read it before searching)."""
        return self.journal.settled()

    # ----- lookups --------------------------------------------------------------------------------
    def get_exact(self, question: str, scope: str) -> CacheHit | None:
        if not self.enabled:
            return None
        entry = self._valid_entry(exact_key(question, scope))
        if entry is None:
            self._count("exact", hit=False)
            return None
        self._count("exact", hit=True)
        return CacheHit("exact", entry["result"], entry["question"])

    def get_semantic(self, question: str, vector: np.ndarray, scope: str) -> CacheHit | None:
        if not self.semantic_enabled:
            return None
        for key_id, similarity in self._vectors(vector.shape[0]).search(vector, k=8):
            if similarity < self.threshold:
                break
            pointer = safe_get(self.cache, f"s:{key_id}")
            if not pointer or pointer.get("scope") != scope:
                continue
            refused = semantic_match_refused(pointer["question"], question)
            if refused:
                logger.debug("Semantic match with %r refused: %s differ", pointer["question"], refused)
                continue
            entry = self._valid_entry(pointer["key"])
            if entry is None:
                continue
            self._count("semantic", hit=True)
            return CacheHit("semantic", entry["result"], entry["question"], round(similarity, 4))
        self._count("semantic", hit=False)
        return None

    def _valid_entry(self, key: str) -> dict[str, Any] | None:
        entry = safe_get(self.cache, key)
        if not isinstance(entry, dict) or "result" not in entry:
            return None
        if self._stale(entry):
            self.cache.delete(key)
            return None
        return entry

    def _stale(self, entry: dict[str, Any]) -> bool:
        generation = int(entry["generation"])
        if entry.get("strict"):
            return self.journal.current() > generation
        if self.journal.changed_since(generation, entry["doc_ids"]):
            return True
        return self.journal.terms_changed_since(generation, entry.get("terms", ()))

    # ----- writes ---------------------------------------------------------------------------------
    def put(
        self,
        question: str,
        scope: str,
        result: dict[str, Any],
        *,
        doc_ids: list[str],
        generation: int,
        vector: np.ndarray | None,
    ) -> None:
        """`doc_ids`: every document among the answer's retrieval candidates, cited or not."""
        if not self.enabled:
            return
        from ragcli.generation.extractive import content_terms
        key = exact_key(question, scope)
        if self.private:
            digest = "sha256:" + hashlib.sha256(normalise_question(question).encode()).hexdigest()
            result = result | {"question": digest}
        entry = {
            "question": digest if self.private else question,
            "normalised": digest if self.private else normalise_question(question),
            "result": result,
            "doc_ids": sorted(set(doc_ids)),
            "generation": generation,
            # Hashed, so privacy mode keeps no word of the question either.
            "terms": sorted({term_hash(t) for t in content_terms(question)}),
            "strict": bool(result.get("refused"))
            or (result.get("confidence") is not None and result["confidence"] < STRICT_BELOW_CONFIDENCE),
            "created": time.time(),
        }
        if not self.cache.set(key, entry, expire=self.ttl_seconds):
            return  # the cache cannot be written; it said so once
        if vector is not None and self.semantic_enabled:
            key_id = self.cache.incr("s:next")
            if key_id is None:
                return
            self.cache.set(
                f"s:{key_id}", {"key": key, "scope": scope, "question": question}, expire=self.ttl_seconds
            )
            try:
                self._vectors(vector.shape[0]).append(key_id, vector)
            except OSError as exc:
                warn_once(self.directory.parent, "vectors", "Cannot save question vectors (%s); semantic hits "
                          "will miss this question", exc)

    def _vectors(self, dimension: int) -> Any:
        from ragcli.cache.factory import question_vectors

        return question_vectors(self.settings, dimension)

    # ----- bookkeeping ----------------------------------------------------------------------------
    def _count(self, kind: str, *, hit: bool) -> None:
        try:
            self.cache.incr(f"stats:{kind}:{'hit' if hit else 'miss'}")
        except Exception:  # counters are nice to have; never fail a question over them
            logger.debug("Could not count a cache %s", kind, exc_info=True)

    def stats(self) -> dict[str, Any]:
        cache = self.cache
        entries = sum(1 for key in cache.iterkeys() if isinstance(key, str) and key.startswith("a:"))
        out: dict[str, Any] = {"entries": entries, "size_bytes": int(cache.volume())}
        for kind in ("exact", "semantic"):
            out[f"{kind}_hits"] = int(cache.get(f"stats:{kind}:hit", 0))
            out[f"{kind}_misses"] = int(cache.get(f"stats:{kind}:miss", 0))
        return out

    def clear(self) -> int:
        count = int(self.cache.clear())
        for path in self.directory.parent.glob("questions-*.f32"):
            path.unlink(missing_ok=True)
        return count


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
