"""Runs evaluations through the real pipeline: its own index per data set, the configured retrieval.

Each data set gets a folder under <home>/eval/<name>-<hash of its path>/ with the corpus written as files
and an index of its own, so evaluating never touches the user's index, and a second run re-uses the
first one's index (idempotent ingestion: nothing is re-embedded while corpus and chunking are unchanged).
Caches are switched off so latencies are those of real searches.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import UsageError

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.evaluation.beir import CorpusDoc
    from ragcli.ingest.pipeline import IngestObserver, IngestReport
    from ragcli.query import QueryEngine

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


VARIANT_HINT = (
    "Use vector (or dense), keyword (or bm25), hybrid or hybrid:FUSION (rrf, weighted_rrf, weighted, "
    "adaptive), each optionally with +rerank."
)


@dataclass(frozen=True)
class Variant:
    """A named retrieval configuration: a mode, with or without reranking, and for hybrid perhaps a
    fusion other than the configured one (`hybrid:rrf`)."""

    name: str
    mode: str
    rerank: bool
    fusion: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Variant:
        from ragcli.retrieval.fusion import FUSIONS

        parts = spec.lower().replace("dense", "vector").replace("bm25", "keyword").split("+")
        mode, _, fusion = parts[0].partition(":")
        extras = set(parts[1:])
        known_fusion = not fusion or (mode == "hybrid" and fusion in FUSIONS)
        if mode not in ("vector", "keyword", "hybrid") or not extras <= {"rerank"} or not known_fusion:
            raise UsageError(f"Unknown variant {spec!r}.", hint=VARIANT_HINT)
        return cls(spec, mode, "rerank" in extras, fusion or None)


def eval_settings(settings: Settings, dataset: Path, label: str) -> Settings:
    """Settings whose state directory is this data set's own folder under <home>/eval/."""
    from ragcli.config import Settings as SettingsType

    digest = hashlib.sha256(str(dataset.resolve()).encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.name or label)[:40]
    config = settings.config.model_copy(deep=True)
    config.home = str(settings.home / "eval" / f"{label}-{name}-{digest}")
    config.store.uri = None
    config.cache.enabled = False
    return SettingsType(
        config=config, sources=settings.sources, file=settings.file, base_dir=settings.base_dir
    )


def build_index(
    settings: Settings, docs: Sequence[CorpusDoc], observer: IngestObserver | None = None
) -> IngestReport:
    from ragcli.evaluation.beir import write_corpus_files
    from ragcli.ingest.pipeline import Ingestor

    corpus_dir = settings.home / "corpus"
    written = write_corpus_files(docs, corpus_dir)
    logger.info("Evaluation corpus: %d documents (%d written) in %s", len(docs), written, corpus_dir)
    return Ingestor(settings, observer=observer).run([corpus_dir])


def corpus_retriever(engine: QueryEngine, variant: Variant) -> Callable[[str, int], list[str]]:
    """retrieve(question, k) -> corpus ids, best first, as the metric code wants them."""
    from ragcli.evaluation.beir import corpus_id_for_source
    from ragcli.query import AskOptions

    def retrieve(question: str, k: int) -> list[str]:
        # A document may come back as several chunks; fetch more so k distinct documents remain.
        options = AskOptions(k=max(k * 2, k + 20), mode=variant.mode, rerank=variant.rerank)
        passages = engine.retrieve(question, options).passages
        return [corpus_id_for_source(p.source) for p in passages]

    return retrieve


def evaluate_beir(
    settings: Settings,
    directory: Path,
    *,
    split: str,
    variants: Sequence[Variant],
    k: int = 100,
    limit: int | None = None,
    progress: Progress | None = None,
    observer: IngestObserver | None = None,
    ci: bool = False,
    details: Path | None = None,
) -> dict[str, Any]:
    """Every variant on one BEIR folder. With `ci`, each variant after the first gets a paired bootstrap
    95% interval of its difference from the first (the baseline) under "ci"; with `details`, per-query
    scores of every variant go to that file as JSON lines."""
    from ragcli.evaluation.beir import load_beir
    from ragcli.evaluation.runner import confidence_rows, evaluate_retrieval, write_details
    from ragcli.query import QueryEngine

    dataset = load_beir(directory, split)
    own = eval_settings(settings, directory, "beir")
    report = build_index(own, list(dataset.corpus.values()), observer)
    queries = dict(dataset.queries)
    if limit:
        judged = [q for q in queries if q in dataset.qrels][:limit]
        queries = {q: queries[q] for q in judged}
    engine = QueryEngine(own)
    results: dict[str, Any] = {}
    for variant in variants:
        result = evaluate_retrieval(
            queries, dataset.qrels, corpus_retriever(_engine_for(engine, variant), variant), k=k, progress=progress
        )
        results[variant.name] = result | {"mode": variant.mode, "rerank": variant.rerank}
    intervals = confidence_rows(results) if ci and len(results) > 1 else {}
    if details is not None:
        write_details(details, results)
    for result in results.values():
        result.pop("per_query", None)  # 800 rows of detail drown the summary; --details has them
    for name, interval in intervals.items():
        results[name]["ci"] = interval
    return {
        "dataset": str(directory),
        "split": split,
        "index": own.store_uri,
        "ingest": {
            key: report.summary()[key] for key in ("added", "skipped_unchanged", "chunks_embedded", "seconds")
        },
        "fingerprint": _fingerprint(own),
        "variants": results,
    }


def _engine_for(engine: QueryEngine, variant: Variant) -> QueryEngine:
    """The engine itself, or one sharing its models and index with the variant's fusion configured."""
    from ragcli.query import QueryEngine

    if variant.fusion is None or variant.fusion == engine.config.retrieval.fusion:
        return engine
    config = engine.config.model_copy(deep=True)
    config.retrieval.fusion = variant.fusion  # type: ignore[assignment]
    own = engine.settings.__class__(
        config=config, sources=engine.settings.sources, file=engine.settings.file, base_dir=engine.settings.base_dir
    )
    return QueryEngine(own, embedder=engine.embedder, store=engine.store, reranker=engine._reranker)


def evaluate_squad(
    settings: Settings,
    path: Path,
    *,
    limit: int | None = None,
    mode: str | None = None,
    rerank: bool | None = None,
    progress: Progress | None = None,
    observer: IngestObserver | None = None,
    details: Path | None = None,
) -> dict[str, Any]:
    """SQuAD 2.0 through the full `ask`; `details` gets one JSON line per question (squad.write_details)."""
    from ragcli.evaluation.beir import corpus_id_for_source
    from ragcli.evaluation.squad import Outcome, load_squad, paragraph_documents, score_qa, write_details
    from ragcli.query import AskOptions, QueryEngine

    examples = load_squad(path)
    own = eval_settings(settings, path, "squad")
    build_index(own, paragraph_documents(examples), observer)
    chosen = _balanced(examples, limit) if limit else list(examples)
    engine = QueryEngine(own)
    predictions: dict[str, str | Outcome] = {}
    contexts: dict[str, list[str]] = {}
    latencies: list[float] = []
    for done, example in enumerate(chosen, 1):
        result = engine.ask(example.question, AskOptions(mode=mode, rerank=rerank))
        predictions[example.question_id] = Outcome.from_result(result.to_json())
        contexts[example.question_id] = [corpus_id_for_source(c["source"]) for c in result.citations]
        latencies.append(result.timings_ms["total"])
        if progress:
            progress(done, len(chosen))
    scores = score_qa(predictions, chosen, contexts)
    rows = scores.pop("per_question", [])
    if details is not None:
        write_details(rows, details)
    from ragcli.evaluation.runner import latency_summary

    return {
        "dataset": str(path),
        "provider": own.config.generation.provider,
        "model": engine.generator.model if chosen else "",
        "fingerprint": _fingerprint(own),
        **scores,
        **latency_summary(latencies),
        **({"details": str(details)} if details is not None else {}),
    }


def _balanced(examples: Sequence[Any], limit: int) -> list[Any]:
    """The first `limit` questions, alternating answerable and unanswerable, so both rates are measured."""
    answerable = [e for e in examples if not e.is_impossible]
    impossible = [e for e in examples if e.is_impossible]
    chosen: list[Any] = []
    for pair in zip(answerable, impossible, strict=False):
        chosen.extend(pair)
    chosen.extend(answerable[len(impossible) :] or impossible[len(answerable) :])
    return chosen[:limit]


def _fingerprint(settings: Settings) -> str:
    from ragcli.cache.keys import answer_fingerprint

    return answer_fingerprint(settings.config)


def evaluate_golden(
    settings: Settings,
    path: Path,
    *,
    k: int,
    with_answers: bool,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score the user's own index against a golden file; the answer check runs the full `ask`."""
    from ragcli.evaluation.golden import load_golden, score_golden
    from ragcli.query import AskOptions, QueryEngine

    items = load_golden(path)
    engine = QueryEngine(settings)

    def retrieve(question: str, depth: int) -> list[str]:
        passages = engine.retrieve(question, AskOptions(k=max(depth * 3, depth + 10))).passages
        return [p.source for p in passages]

    def answer(question: str) -> str:
        return engine.ask(question).answer

    result = score_golden(items, retrieve, k=k, answer=answer if with_answers else None, progress=progress)
    result["fingerprint"] = _fingerprint(settings)
    return result
