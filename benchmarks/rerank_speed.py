"""Cross-encoder reranking: what it costs and what it buys, on SciFact.

    .venv/bin/python benchmarks/rerank_speed.py [--data /work/shared/eval/scifact] [--skip-quality]

Speed: pairs/s and tokens/s of the ONNX reranker for top_n in (10, 20) × max_tokens in (128, 256, 512),
on SciFact abstracts (title + text) paired with SciFact claims.

Quality: nDCG@10 over the first 100 queries of qrels/train.tsv, for the dense ranking alone (the bundled
bge-small embedder, whole corpus, exact dot product) and for its top 20 reranked, with the reranker's
latency per query. The corpus embedding takes several minutes on 2 cores, so it is cached (--emb-cache).
The machine's other load moves the timings; run it on a quiet machine for figures worth quoting.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragcli.config import EmbeddingConfig, RerankConfig
from ragcli.rerank import get_reranker

DEFAULT_DATA = Path("/work/shared/eval/scifact")


def load_corpus(data: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with (data / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            ids.append(str(doc["_id"]))
            texts.append(f"{doc.get('title', '')} {doc['text']}".strip())
    return ids, texts


def load_queries(data: Path) -> dict[str, str]:
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        return {str(q["_id"]): q["text"] for q in map(json.loads, fh)}


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            qid, doc_id, rel = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[doc_id] = int(rel)
    return qrels


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def speed_table(texts: list[str], queries: list[str], args: argparse.Namespace) -> None:
    rng = random.Random(0)
    candidates = [rng.sample(texts, max(args.top_n)) for _ in queries]
    print(f"\nSpeed ({len(queries)} queries per row, batch_size={args.batch_size}, threads={args.threads})")
    print(f"{'top_n':>5} {'max_tok':>7} {'tok/pair':>8} {'s/query':>8} {'pairs/s':>8} {'tokens/s':>9}")
    for max_tokens in args.max_tokens:
        reranker: Any = get_reranker(
            RerankConfig(max_tokens=max_tokens, batch_size=args.batch_size, threads=args.threads)  # type: ignore[call-arg]
        )
        reranker.score(queries[0], candidates[0][:2])  # warm-up: ORT allocates on the first run
        for top_n in args.top_n:
            reranker.reset_counters()
            start = time.perf_counter()
            for query, passages in zip(queries, candidates, strict=True):
                reranker.score(query, passages[:top_n])
            elapsed = time.perf_counter() - start
            pairs, tokens = reranker.pairs_scored, reranker.tokens_processed
            print(
                f"{top_n:>5} {max_tokens:>7} {tokens / pairs:>8.0f} {elapsed / len(queries):>8.2f} "
                f"{pairs / elapsed:>8.1f} {tokens / elapsed:>9.0f}"
            )


def corpus_matrix(ids: list[str], texts: list[str], cache: Path) -> np.ndarray:
    ids_file = cache.with_suffix(".ids.json")
    if cache.is_file() and ids_file.is_file() and json.loads(ids_file.read_text()) == ids:
        return np.load(cache)
    from ragcli.embedding import get_embedder

    embedder = get_embedder(EmbeddingConfig())  # type: ignore[call-arg]
    print(f"Embedding {len(texts)} documents (cached to {cache}) …", flush=True)
    start = time.perf_counter()
    matrix = np.vstack([embedder.embed_documents(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    print(f"  {time.perf_counter() - start:.0f} s", flush=True)
    np.save(cache, matrix)
    ids_file.write_text(json.dumps(ids))
    return matrix


def quality(ids: list[str], texts: list[str], queries: dict[str, str], args: argparse.Namespace) -> None:
    from ragcli.embedding import get_embedder

    qrels = load_qrels(args.data / "qrels" / "train.tsv")
    qids = [qid for qid in qrels if qid in queries][: args.quality_queries]
    matrix = corpus_matrix(ids, texts, args.emb_cache)
    embedder = get_embedder(EmbeddingConfig())  # type: ignore[call-arg]
    dense: dict[str, list[int]] = {}
    for qid in qids:
        sims = matrix @ embedder.embed_query(queries[qid])
        dense[qid] = [int(i) for i in np.argsort(-sims)[: args.rerank_depth]]

    dense_ndcg = statistics.mean(ndcg_at_k([ids[i] for i in dense[qid]], qrels[qid]) for qid in qids)
    print(f"\nQuality: nDCG@10 on {len(qids)} SciFact train queries (rerank depth {args.rerank_depth})")
    print(f"{'ranking':<28} {'nDCG@10':>8} {'rerank s/query':>15} {'p95 s':>6}")
    print(f"{'dense (bge-small) only':<28} {dense_ndcg:>8.4f} {'-':>15} {'-':>6}")
    for max_tokens in args.quality_max_tokens:
        reranker = get_reranker(
            RerankConfig(max_tokens=max_tokens, batch_size=args.batch_size, threads=args.threads)  # type: ignore[call-arg]
        )
        scores, latencies = [], []
        for qid in qids:
            top = dense[qid]
            start = time.perf_counter()
            rerank_scores = reranker.score(queries[qid], [texts[i] for i in top])
            latencies.append(time.perf_counter() - start)
            order = sorted(range(len(top)), key=lambda j: -rerank_scores[j])
            scores.append(ndcg_at_k([ids[top[j]] for j in order], qrels[qid]))
        p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
        label = f"dense top-{args.rerank_depth} + rerank@{max_tokens}"
        print(f"{label:<28} {statistics.mean(scores):>8.4f} {statistics.mean(latencies):>15.2f} {p95:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--speed-queries", type=int, default=5)
    parser.add_argument("--top-n", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--batch-size", type=int, default=RerankConfig().batch_size)  # type: ignore[call-arg]
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--quality-queries", type=int, default=100)
    parser.add_argument("--quality-max-tokens", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--rerank-depth", type=int, default=20)
    parser.add_argument("--emb-cache", type=Path, default=Path("/tmp/scifact_emb.npy"))
    args = parser.parse_args()

    ids, texts = load_corpus(args.data)
    queries = load_queries(args.data)
    if not args.skip_speed:
        speed_table(texts, list(queries.values())[: args.speed_queries], args)
    if not args.skip_quality:
        quality(ids, texts, queries, args)


if __name__ == "__main__":
    main()
