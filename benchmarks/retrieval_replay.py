"""Dump, once per index, what each retriever returns for every judged query, so fusion and
document-aggregation variants can be studied in memory (benchmarks/retrieval_fusion.py).

    RAGCLI_HOME=/tmp/rh-clean .venv/bin/python benchmarks/retrieval_replay.py /tmp/devsets/squad-graded \
        --out benchmarks/out/replay-squad-clean.json [--set chunking.context_template=...]

Builds (or re-uses) the evaluation index exactly as `ragcli eval retrieval` does (harness.build_index
under <home>/eval/), then for each judged query records the top --depth chunks of the store's own
vector search and keyword search: chunk id, corpus id, chunk index and raw score (cosine similarity;
BM25 score from LanceDB FTS), plus each search's time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def seed_vectors(own: Any, index_uri: str) -> int:
    """Put another index's vectors in this run's chunk embedding cache, keyed by chunk hash as ingestion
    looks them up: chunks whose embedded text did not change are not embedded again (what `ragcli
    reindex` does through the cache). Only a saving of CPU: a changed text has another hash."""
    import numpy as np

    from ragcli.cache.embeddings import EmbeddingCache
    from ragcli.store.lance import LanceStore

    rows = LanceStore.open(index_uri).all_rows(["chunk_hash", "vector"])
    own.config.cache.enabled = True
    vectors = {h: np.asarray(v, dtype=np.float32) for h, v in zip(rows["chunk_hash"], rows["vector"], strict=True)}
    EmbeddingCache(own).put_chunks(vectors)
    return len(vectors)


def dump(
    data: Path, split: str, depth: int, flags: dict[str, Any], limit: int | None, seed_from: str | None = None
) -> dict[str, Any]:
    from ragcli.config import load_settings
    from ragcli.evaluation.beir import corpus_id_for_source, load_beir
    from ragcli.evaluation.harness import build_index, eval_settings
    from ragcli.query import QueryEngine

    settings = load_settings(flags=flags)
    own = eval_settings(settings, data, "beir")
    dataset = load_beir(data, split)
    if seed_from:
        print(f"seeded {seed_vectors(own, seed_from)} vectors from {seed_from}", flush=True)
    started = time.perf_counter()
    report = build_index(own, list(dataset.corpus.values()))
    ingest_s = time.perf_counter() - started
    engine = QueryEngine(own)
    store = engine.store
    judged = [q for q in dataset.qrels if q in dataset.queries][: limit or None]
    rows: dict[str, Any] = {}
    for done, qid in enumerate(judged, 1):
        question = dataset.queries[qid]
        vector = engine.embedder.embed_query(question)
        engine._check_identity(vector)
        t0 = time.perf_counter()
        dense = store.vector_search(vector, depth)
        t1 = time.perf_counter()
        sparse = store.keyword_search(question, depth)
        t2 = time.perf_counter()
        rows[qid] = {
            "vector": [[p.chunk_id, corpus_id_for_source(p.source), p.chunk_index, p.score] for p in dense],
            "keyword": [[p.chunk_id, corpus_id_for_source(p.source), p.chunk_index, p.score] for p in sparse],
            "vector_ms": (t1 - t0) * 1000,
            "keyword_ms": (t2 - t1) * 1000,
        }
        if done % 100 == 0:
            print(f"{done}/{len(judged)}", flush=True)
    return {
        "dataset": str(data),
        "flags": flags,
        "chunks": store.count(),
        "ingest": report.summary(),
        "ingest_seconds": ingest_s,
        "qrels": {q: dataset.qrels[q] for q in judged},
        "queries": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--set", action="append", default=[], help="config flag KEY=VALUE")
    parser.add_argument("--seed-vectors-from", help="an index (LanceDB folder) whose vectors to re-use by hash")
    args = parser.parse_args()
    flags = dict(item.split("=", 1) for item in args.set)
    result = dump(args.data, args.split, args.depth, flags, args.limit, args.seed_vectors_from)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result))
    print(f"{args.out}: {len(result['queries'])} queries, {result['chunks']} chunks, ingest {result['ingest_seconds']:.0f} s")


if __name__ == "__main__":
    main()
