"""The query pipeline behind `ragcli ask`: embed → search (vector, keyword, hybrid) → fuse → rerank →
compress → generate with citations. One `QueryEngine` keeps its models loaded across questions.

Every stage that fails degrades instead of failing the question, and says so (`degraded_reasons`):
- the embedder fails      → keyword-only retrieval;
- the reranker fails      → the fused order is kept;
- the generator fails     → the compressed passages are the answer;
- the index is unreadable → a StoreError with the fix (there is nothing to degrade to yet).
`RAGCLI_FAULTS=embedder,reranker,generator,store` forces these failures, for tests.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.errors import RagcliError, StoreError
from ragcli.models import REFUSAL, ContextItem, Passage
from ragcli.retrieval.filters import Filters, build_where

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings
    from ragcli.embedding import Embedder
    from ragcli.generation import Generator
    from ragcli.generation.evidence import Assessment
    from ragcli.rerank import Reranker
    from ragcli.store.lance import LanceStore

logger = logging.getLogger(__name__)

STAGES = ("embed", "retrieve", "rerank", "compress", "generate")


class FaultInjected(RagcliError):
    """Raised by `inject_fault` when RAGCLI_FAULTS names a stage."""


def inject_fault(stage: str) -> None:
    faults = {f.strip() for f in os.environ.get("RAGCLI_FAULTS", "").split(",") if f.strip()}
    if stage in faults:
        raise FaultInjected(f"fault injected into the {stage} stage (RAGCLI_FAULTS)")


@dataclass
class AskOptions:
    k: int | None = None
    mode: str | None = None
    rerank: bool | None = None
    filters: Filters = field(default_factory=Filters)
    generate: bool = True


@dataclass
class Retrieval:
    passages: list[Passage]
    mode: str
    timings_ms: dict[str, float]
    degraded_reasons: list[str]
    notes: list[str]
    candidates: int = 0
    candidate_doc_ids: list[str] = field(default_factory=list)


@dataclass
class AskResult:
    question: str
    answer: str
    citations: list[dict[str, Any]]
    degraded: bool
    degraded_reason: str | None
    timings_ms: dict[str, float]
    tokens: dict[str, int]
    request_id: str
    mode: str
    provider: str
    model: str
    refused: bool
    retrieved: int
    top_score: float | None
    notes: list[str]
    confidence: float | None = None
    refused_reason: str | None = None
    citations_verified: float | None = None
    """Share of the answer's sentences supported by the passage they cite (1.0 for extractive answers)."""
    unsupported: list[str] = field(default_factory=list)
    candidate_doc_ids: list[str] = field(default_factory=list)
    """Every document the search ranked for the question (the answer cache's staleness check)."""

    cache: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cache": self.cache,
            "question": self.question,
            "answer": self.answer,
            "citations": self.citations,
            "degraded": self.degraded,
            "degraded_reason": self.degraded_reason,
            "timings_ms": self.timings_ms,
            "tokens": self.tokens,
            "request_id": self.request_id,
            "mode": self.mode,
            "provider": self.provider,
            "model": self.model,
            "refused": self.refused,
            "refused_reason": self.refused_reason,
            "confidence": self.confidence,
            "citations_verified": self.citations_verified,
            "unsupported_sentences": self.unsupported,
            "retrieved": self.retrieved,
            "top_score": self.top_score,
            "notes": self.notes,
        }


@dataclass
class _Verdict:
    answer: str = REFUSAL
    cited: list[int] = field(default_factory=list)
    refused: bool = False
    reason: str | None = None

    def refuse(self, reason: str) -> None:
        self.answer, self.cited, self.refused, self.reason = REFUSAL, [], True, reason


_prefetching: list[threading.Thread] = []


@atexit.register
def _wait_for_prefetch() -> None:
    """A process that ends while a prefetch thread is still inside pylance's or onnxruntime's loading
    code (an ask that failed before it needed them) aborted with SIGABRT ("terminate called without an
    active exception") when the interpreter tore the libraries down under it: let the load finish."""
    for thread in _prefetching:
        thread.join(timeout=60)


class _Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def record(self, stage: str, started: float) -> None:
        self.ms[stage] = round(self.ms.get(stage, 0.0) + (time.perf_counter() - started) * 1000, 2)


class QueryEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: LanceStore | None = None,
        reranker: Reranker | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.config
        self._embedder = embedder
        self._store = store
        self._reranker = reranker
        self._generator = generator
        self._sources: list[tuple[str, str]] | None = None
        self._identity_checked = False
        self._query_cache: Any = None
        # Guards lazy loading that prefetch() may run on another thread.
        self._loading = threading.RLock()

    # ----- components, loaded on first use -------------------------------------------------------
    @property
    def store(self) -> LanceStore:
        if self._store is None:
            from ragcli.store import get_store

            try:
                inject_fault("store")
            except FaultInjected as exc:
                raise StoreError(
                    f"The index cannot be read: {exc.message}",
                    hint="Run `ragcli reindex` to rebuild it from the source files.",
                ) from exc
            self._store = get_store(self.settings)
        if not self._store.exists():
            raise StoreError(
                f"There is no index at {self._store.uri} yet.", hint="Run `ragcli ingest PATH` first."
            )
        return self._store

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from ragcli.embedding import get_embedder

            self._embedder = get_embedder(self.config.embedding)
        return self._embedder

    @property
    def reranker(self) -> Reranker:
        with self._loading:
            if self._reranker is None:
                from ragcli.rerank import get_reranker

                self._reranker = get_reranker(self.config.rerank)
            return self._reranker

    def reopen_index(self) -> None:
        """Open the index again on next use, at its newest version (a long-lived engine after an
        ingest by another process); the models stay loaded."""
        with self._loading:
            self._store = None
            self._sources = None

    def prefetch(self) -> None:
        """Import pylance, then load the answer gate's cross-encoder, on a thread while the question is
        embedded: a fresh process pays for them (~0.1 s, needed to open the index right after the
        embedding; ~0.2 s, mostly inside onnxruntime, which releases the GIL) on the second core. Loading
        the embedder there too was slower: two model loads and the main thread share two cores. A no-op
        when everything is loaded or will not be used."""
        want_lance = "lance" not in sys.modules
        want_reranker = self._reranker is None and (self.config.answer.gate or self.config.rerank.enabled)
        if not (want_lance or want_reranker):
            return

        def load() -> None:
            try:
                if want_lance:
                    import lance  # noqa: F401
                if want_reranker:
                    self.reranker  # noqa: B018 - loading is the point
            except Exception:  # the ask that needs it loads it again and reports the failure itself
                logger.debug("Prefetching failed", exc_info=True)

        thread = threading.Thread(target=load, name="ragcli-prefetch", daemon=True)
        thread.start()
        _prefetching[:] = [*(t for t in _prefetching if t.is_alive()), thread]

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from ragcli.generation import get_generator

            self._generator = get_generator(self.config.generation)
        return self._generator

    def _check_identity(self, vector: np.ndarray) -> None:
        """Refuse an index built with another model. The configured model name and the vector's size are
        enough, so a cached query vector does not force loading the model."""
        if self._identity_checked:
            return
        from ragcli.store.lance import EmbedderIdentity

        identity = EmbedderIdentity(self.config.embedding.model, int(vector.shape[0]))
        self.store.ensure_identity(identity, create=False)
        self._identity_checked = True

    def _where(self, filters: Filters) -> str | None:
        if filters.empty:
            return None
        if filters.sources and self._sources is None:
            self._sources = [(s.doc_id, s.source) for s in self.store.document_states().values()]
        return build_where(filters, self._sources or [])

    # ----- retrieval ------------------------------------------------------------------------------
    def embed_query(self, question: str) -> np.ndarray:
        """The question's vector, from the query embedding cache when it was embedded before."""
        inject_fault("embedder")
        from ragcli.cache.embeddings import EmbeddingCache

        if self._query_cache is None:
            self._query_cache = EmbeddingCache(self.settings)
        cached = self._query_cache.get_query(question)
        if cached is not None:
            return cached
        vector = self.embedder.embed_query(question)
        try:
            self._query_cache.put_query(question, vector)
        except Exception:  # a cache that cannot be written costs a future miss, nothing more
            logger.warning("Could not cache the query embedding", exc_info=True)
        return vector

    def retrieve(
        self, question: str, options: AskOptions | None = None, vector: np.ndarray | None = None
    ) -> Retrieval:
        options = options or AskOptions()
        cfg = self.config.retrieval
        k = options.k or cfg.top_k
        mode = options.mode or cfg.mode
        use_rerank = self.config.rerank.enabled if options.rerank is None else options.rerank
        timer = _Timer()
        degraded: list[str] = []
        notes: list[str] = []
        where = self._where(options.filters)
        store = self.store

        if mode in ("vector", "hybrid") and vector is None:
            started = time.perf_counter()
            try:
                vector = self.embed_query(question)
            except StoreError:
                raise
            except Exception as exc:
                degraded.append(f"embedder_failed: {error_reason(exc)}")
                logger.warning("Embedder failed (%s); falling back to keyword search", error_reason(exc))
                mode = "keyword"
            timer.record("embed", started)
        if mode == "keyword":
            vector = None
        if vector is not None:
            self._check_identity(vector)

        extra_queries = (
            self._expanded_queries(question, timer, notes) if cfg.rewrite or cfg.multi_query else []
        )
        started = time.perf_counter()
        fetch = max(cfg.candidates, k, self.config.rerank.top_n if use_rerank else 0)
        if mode == "hybrid" and cfg.fusion in ("weighted", "adaptive"):
            from ragcli.retrieval.fusion import NORMALISE_DEPTH

            fetch = max(fetch, NORMALISE_DEPTH)  # the scores are scaled over this many (fusion._normalised)
        rankings: list[list[Passage]] = []
        kinds: list[str] = []  # "vector" or "keyword", per ranking: for the raw scores of each citation
        try:
            if vector is not None:
                rankings.append(self._vector_search(vector, fetch, where, degraded))
                kinds.append("vector")
            if mode in ("keyword", "hybrid"):
                keyword = self._keyword_search(question, fetch, where, degraded, alone=not rankings)
                if keyword is not None:
                    rankings.append(keyword)
                    kinds.append("keyword")
            for extra in extra_queries:
                if vector is not None:
                    rankings.append(store.vector_search(self.embed_query(extra), fetch, where))
                    kinds.append("vector")
                if mode in ("keyword", "hybrid"):
                    rankings.append(store.keyword_search(extra, fetch, where))
                    kinds.append("keyword")
        except Exception as exc:
            raise StoreError(
                f"The index at {store.uri} cannot be searched: {error_reason(exc)}",
                hint="Run `ragcli reindex` to rebuild it from the source files.",
            ) from exc
        if len(rankings) > 2:
            from ragcli.retrieval.fusion import reciprocal_rank_fusion

            fused = reciprocal_rank_fusion(rankings, cfg.rrf_k)
        elif mode == "hybrid" and len(rankings) == 2:
            from ragcli.retrieval.fusion import fuse_hybrid

            fused = fuse_hybrid(rankings[0], rankings[1], cfg.fusion, cfg.vector_weight, cfg.rrf_k)
        else:
            fused = rankings[0] if rankings else []
        fused = self._with_raw_scores(fused, rankings, kinds)
        if cfg.document_decay is not None and fused:
            from ragcli.retrieval.fusion import document_aware

            fused = document_aware(fused, cfg.document_decay)
        timer.record("retrieve", started)
        candidates = len(fused)

        if use_rerank and fused:
            started = time.perf_counter()
            try:
                fused = (
                    self._rerank(question, fused[: self.config.rerank.top_n])
                    + fused[self.config.rerank.top_n :]
                )
            except Exception as exc:
                degraded.append(f"reranker_failed: {error_reason(exc)}")
                logger.warning("Reranker failed (%s); keeping the fused order", error_reason(exc))
            timer.record("rerank", started)
        candidate_docs = list(dict.fromkeys(p.doc_id for p in fused))
        return Retrieval(fused[:k], mode, timer.ms, degraded, notes, candidates, candidate_docs)

    def _vector_search(self, vector: np.ndarray, k: int, where: str | None, degraded: list[str]) -> list[Passage]:
        """Through the ANN index; a damaged ANN index costs speed, not the answer: an exact scan."""
        try:
            return self.store.vector_search(vector, k, where)
        except Exception as exc:
            if not self.store.has_vector_index_files():
                raise
            hits = self.store.vector_search(vector, k, where, exact=True)
            degraded.append(f"vector_index_unreadable: {error_reason(exc)}")
            logger.warning("The vector index cannot be read (%s); searched without it. `ragcli reindex` "
                           "rebuilds it.", error_reason(exc))
            return hits

    def _keyword_search(
        self, question: str, k: int, where: str | None, degraded: list[str], *, alone: bool
    ) -> list[Passage] | None:
        """A damaged full-text index in hybrid mode leaves the vector search to answer alone."""
        try:
            return self.store.keyword_search(question, k, where)
        except Exception as exc:
            if alone:
                raise
            degraded.append(f"keyword_search_failed: {error_reason(exc)}")
            logger.warning("The full-text index cannot be read (%s); answered from the vector search alone. "
                           "`ragcli reindex` rebuilds it.", error_reason(exc))
            return None

    def _with_raw_scores(
        self, fused: list[Passage], rankings: list[list[Passage]], kinds: list[str]
    ) -> list[Passage]:
        """Each passage's own vector/keyword scores and its fused score's best case (issue 10, item 6)."""
        from ragcli.retrieval.scores import attach_raw_scores

        cfg = self.config.retrieval
        fusion = "rrf" if len(rankings) > 2 else (cfg.fusion if len(rankings) == 2 else None)
        return attach_raw_scores(fused, rankings, kinds, fusion=fusion, rrf_k=cfg.rrf_k)

    def _expanded_queries(self, question: str, timer: _Timer, notes: list[str]) -> list[str]:
        """Extra queries from the LLM (rewrite, multi-query); none without an LLM, said in the notes."""
        from ragcli.retrieval.rewrite import expand_queries

        cfg = self.config.retrieval
        if self.config.generation.provider == "extractive":
            notes.append("rewrite/multi-query skipped: the extractive provider has no LLM")
            return []
        started = time.perf_counter()
        try:
            generator = self.generator
        except Exception as exc:
            notes.append(f"rewrite/multi-query skipped: the generator is unavailable ({error_reason(exc)})")
            return []
        queries, expansion_notes = expand_queries(
            generator, question, rewrite=cfg.rewrite, extra=cfg.multi_query
        )
        notes.extend(expansion_notes)
        timer.record("rewrite", started)
        return queries[1:]

    def _rerank(self, question: str, passages: list[Passage]) -> list[Passage]:
        from dataclasses import replace

        from ragcli.retrieval.fusion import blend_rankings

        inject_fault("reranker")
        scores = self.reranker.score(question, [p.text for p in passages])
        from ragcli.retrieval.scores import with_rerank_scores

        passages = with_rerank_scores(passages, scores)
        blend = self.config.rerank.blend
        if blend > 0:
            return blend_rankings(passages, scores, blend)
        ranked = sorted(zip(scores, range(len(passages)), passages, strict=True), key=lambda t: (-t[0], t[1]))
        return [replace(p, score=float(s)) for s, _, p in ranked]

    # ----- the whole question ---------------------------------------------------------------------
    def ask(
        self,
        question: str,
        options: AskOptions | None = None,
        on_token: Callable[[str], None] | None = None,
        vector: np.ndarray | None = None,
    ) -> AskResult:
        options = options or AskOptions()
        request_id = uuid.uuid4().hex
        started_all = time.perf_counter()
        retrieval = self.retrieve(question, options, vector)
        if not retrieval.passages and self._filters_leave_nothing(options.filters):
            return self._filtered_out(question, options.filters, retrieval, request_id, started_all)
        timer = _Timer()
        timer.ms.update(retrieval.timings_ms)
        degraded = list(retrieval.degraded_reasons)
        notes = list(retrieval.notes)

        started = time.perf_counter()
        items, tokens_before, tokens_after = self._compress(question, retrieval.passages)
        timer.record("compress", started)

        provider = self.config.generation.provider
        model = ""
        tokens = {"context_in": tokens_before, "context_out": tokens_after, "prompt": 0, "completion": 0}
        assessment = self._assess(question, items, timer, degraded) if items else None
        verdict = _Verdict()
        started = time.perf_counter()
        if not items:
            verdict.refuse(self._why_nothing_was_found(options))
        elif assessment is not None and assessment.refused:
            verdict.refuse(assessment.refused_reason or "no_relevant_passage")
        else:
            try:
                inject_fault("generator")
                generator = self.generator
                model = generator.model
                generation = self._generate(generator, question, items, assessment, on_token)
                verdict.answer, verdict.cited, verdict.refused = generation.answer, generation.cited, generation.refused
                if generation.refused:
                    verdict.reason = "generator_refused"
                tokens["prompt"], tokens["completion"] = generation.tokens_in, generation.tokens_out
                if not verdict.cited and not verdict.refused:
                    notes.append("the answer cites none of the sources: check it against them")
            except Exception as exc:
                degraded.append(f"generator_failed: {error_reason(exc)}")
                logger.warning("Generator failed (%s); answering with the retrieved passages", error_reason(exc))
                verdict.answer = "\n\n".join(f"{item.text} [{item.n}]" for item in items)
                verdict.cited, verdict.refused = [item.n for item in items], False
        timer.record("generate", started)
        verified: float | None = None
        unsupported: list[str] = []
        if not verdict.refused and verdict.cited:
            from ragcli.generation.verify import verify_citations

            verified, unsupported = verify_citations(verdict.answer, items)
            if unsupported:
                notes.append(f"{len(unsupported)} answer sentence(s) not supported by the passage they cite")
        timer.ms["total"] = round((time.perf_counter() - started_all) * 1000, 2)
        for stage in STAGES:
            timer.ms.setdefault(stage, 0.0)
        answer, cited, refused = verdict.answer, verdict.cited, verdict.refused
        citations = [_citation(item, item.n in cited) for item in items]
        return AskResult(
            question=question,
            answer=answer,
            citations=citations,
            degraded=bool(degraded),
            degraded_reason="; ".join(degraded) or None,
            timings_ms=timer.ms,
            tokens=tokens,
            request_id=request_id,
            mode=retrieval.mode,
            provider=provider,
            model=model,
            refused=refused,
            retrieved=len(retrieval.passages),
            top_score=_display_score(retrieval.passages[0]) if retrieval.passages else None,
            notes=notes,
            confidence=_confidence(assessment, items),
            refused_reason=verdict.reason if refused else None,
            citations_verified=verified,
            unsupported=unsupported,
            candidate_doc_ids=retrieval.candidate_doc_ids,
        )

    def _assess(
        self, question: str, items: list[ContextItem], timer: _Timer, degraded: list[str]
    ) -> Assessment | None:
        """The answerability gate: every provider's answer waits on it, so a refusal costs no generation."""
        if not self.config.answer.gate:
            return None
        from ragcli.generation.evidence import EvidenceScorer

        started = time.perf_counter()
        try:
            inject_fault("reranker")
            relevance: Any = self.reranker
        except Exception as exc:
            # Without the cross-encoder the gate still has the lexical and constraint signals.
            degraded.append(f"reranker_failed: {error_reason(exc)}")
            relevance = None
        scorer = EvidenceScorer(
            relevance, shortlist=self.config.answer.shortlist, min_confidence=self.config.answer.min_confidence
        )
        assessment = scorer.assess(question, items)
        timer.record("gate", started)
        return assessment

    def _generate(
        self,
        generator: Generator,
        question: str,
        items: list[ContextItem],
        assessment: Assessment | None,
        on_token: Callable[[str], None] | None,
    ) -> Any:
        compose = getattr(generator, "compose", None)
        if assessment is not None and compose is not None:
            # The extractive answer is the gate's own best evidence: no second scoring pass.
            generation = compose(assessment.sentences)
            if on_token is not None:
                on_token(generation.answer)
            return generation
        return generator.generate(question, items, on_token=on_token)

    def _why_nothing_was_found(self, options: AskOptions) -> str:
        if self._filters_leave_nothing(options.filters):
            return "filtered_out"
        try:
            empty = self.store.count() == 0
        except Exception:  # the reason is a courtesy; the refusal stands without it
            empty = False
        return "empty_index" if empty else "no_passage"

    # ----- filters that leave no document (issue 10, item 5) ---------------------------------------
    def _filters_leave_nothing(self, filters: Filters) -> bool:
        from ragcli.retrieval.filters import nothing_passes

        return not filters.empty and nothing_passes(self.store, self._where(filters))

    def _filtered_out(
        self, question: str, filters: Filters, retrieval: Retrieval, request_id: str, started: float
    ) -> AskResult:
        """A refusal that names the filters: the question may be fine, the filters removed everything."""
        from ragcli.retrieval.filters import FILTERED_OUT, filtered_out_answer

        timings = dict(retrieval.timings_ms)
        timings["total"] = round((time.perf_counter() - started) * 1000, 2)
        for stage in STAGES:
            timings.setdefault(stage, 0.0)
        return AskResult(
            question=question,
            answer=filtered_out_answer(filters),
            citations=[],
            degraded=bool(retrieval.degraded_reasons),
            degraded_reason="; ".join(retrieval.degraded_reasons) or None,
            timings_ms=timings,
            tokens={"context_in": 0, "context_out": 0, "prompt": 0, "completion": 0},
            request_id=request_id,
            mode=retrieval.mode,
            provider=self.config.generation.provider,
            model="",
            refused=True,
            retrieved=0,
            top_score=None,
            notes=list(retrieval.notes),
            confidence=0.0,
            refused_reason=FILTERED_OUT,
        )

    def _compress(self, question: str, passages: list[Passage]) -> tuple[list[ContextItem], int, int]:
        from ragcli.retrieval.compress import compress

        # Lexical sentence scoring: embedding every sentence would cost seconds per question here.
        result = compress(question, passages, self.config.compression, None)
        return result.items, result.tokens_before, result.tokens_after


def _confidence(assessment: Assessment | None, items: list[ContextItem]) -> float | None:
    """0 when nothing was found; None when the gate is off (no evidence was weighed)."""
    if assessment is not None:
        return assessment.confidence
    return 0.0 if not items else None


def _citation(item: ContextItem, cited: bool) -> dict[str, Any]:
    p = item.passage
    return {
        "n": item.n,
        "source": p.source,
        "title": p.title,
        "page": p.page,
        "heading": p.heading,
        "chunk_id": p.chunk_id,
        "doc_id": p.doc_id,
        "score": round(_display_score(p), 4),  # 0..1: see ragcli/retrieval/scores.py
        "scores": _raw_scores(p),
        "text": item.text,
        "cited": cited,
    }


def _display_score(passage: Passage) -> float:
    from ragcli.retrieval.scores import display_score

    return display_score(passage)


def _raw_scores(passage: Passage) -> dict[str, float | None]:
    from ragcli.retrieval.scores import raw_scores_json

    return raw_scores_json(passage)


def error_reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.splitlines()[0][:200]
