"""Index scale: build 10K / 100K / 300K (/ 1M) chunk tables through LanceStore and measure them.

    .venv/bin/python benchmarks/scale.py [--sizes 10000,100000,300000] [--queries 50] [--grid]

Texts are SciFact abstracts (../shared/eval/scifact) cut into ~500-character chunks, repeated as the
table grows. Vectors are real: the bundled model's embeddings of a few thousand of those chunks, each
row a random mix of two of them plus a little noise, so the table has the spread of a real corpus
without embedding a million chunks. Queries are SciFact claims embedded as queries.

Each size is a fresh table written with `replace_documents` (100-chunk documents, 10K rows a commit),
then `refresh_indexes` and `ensure_vector_index` as an ingest does. Reported per size: build time, disk,
p50/p95 of vector (exact and ANN), keyword and hybrid (100 candidates from each, adaptive fusion, as `ask` searches) searches, and the ANN's top-10
agreement with exact search (mean, and how many queries fall under 0.8). `--grid` also tries other
refine_factor / nprobes values. The machine may be shared: compare figures within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out"
SCIFACT = REPO.parent / "shared" / "eval" / "scifact"

from ragcli.models import Chunk, chunk_id_for, doc_id_for, sha256_hex  # noqa: E402
from ragcli.retrieval.fusion import NORMALISE_DEPTH, fuse_hybrid  # noqa: E402
from ragcli.store import lance  # noqa: E402
from ragcli.store.lance import EmbedderIdentity, LanceStore  # noqa: E402

CHUNKS_PER_DOC = 100
ROWS_PER_COMMIT = 10_000


def chunk_texts(limit_docs: int = 6000) -> list[str]:
    texts: list[str] = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in list(fh)[:limit_docs]:
            doc = json.loads(line)
            body = f"{doc['title']}. {doc['text']}"
            texts.extend(body[i : i + 500] for i in range(0, len(body), 450))
    return [t for t in texts if len(t) > 80]


def queries(n: int) -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in list(fh)[:n]]


def embeddings(texts: list[str], questions: list[str], base_count: int) -> tuple[np.ndarray, np.ndarray]:
    cache = OUT / f"scale-vectors-{base_count}-{len(questions)}.npz"
    if cache.exists():
        saved = np.load(cache)
        return saved["base"], saved["queries"]
    from ragcli.config import EmbeddingConfig
    from ragcli.embedding import get_embedder

    embedder = get_embedder(EmbeddingConfig(max_tokens=128))  # type: ignore[call-arg]
    base = embedder.embed_documents(texts[:base_count])
    asked = np.stack([embedder.embed_query(q) for q in questions])
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, base=base, queries=asked)
    return base, asked


def row_vectors(base: np.ndarray, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    first = base[rng.integers(0, len(base), rows)]
    second = base[rng.integers(0, len(base), rows)]
    noise = rng.standard_normal(first.shape).astype(np.float32) * (0.3 / np.sqrt(base.shape[1]))
    mixed = first + rng.uniform(0.2, 0.8, (rows, 1)).astype(np.float32) * second + noise
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def build(size: int, texts: list[str], base: np.ndarray, ann_min_rows: int) -> tuple[LanceStore, float]:
    folder = OUT / f"scale-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    store = LanceStore.open(str(folder))
    store.ensure_identity(EmbedderIdentity("bge-small-en-v1.5", base.shape[1]), create=True)
    started = time.perf_counter()
    write_rows(store, range(0, size), texts, base, version=0)
    store.refresh_indexes()
    store.ensure_vector_index(ann_min_rows)
    store.cleanup_versions(1, 0.0)
    return store, time.perf_counter() - started


def write_rows(store: LanceStore, rows: range, texts: list[str], base: np.ndarray, version: int) -> None:
    """Whole 100-chunk documents covering `rows`, ROWS_PER_COMMIT rows a commit; `version` changes
    every chunk's text and vector (an edited document)."""
    now = time.time()
    for start in range(rows.start, rows.stop, ROWS_PER_COMMIT):
        count = min(ROWS_PER_COMMIT, rows.stop - start)
        chunks, doc_ids = [], []
        for row in range(start, start + count):
            doc_n, index = divmod(row, CHUNKS_PER_DOC)
            source = f"/corpus/doc-{doc_n}.txt"
            doc_id = doc_id_for(source)
            if index == 0:
                doc_ids.append(doc_id)
            text = texts[(row + version) % len(texts)]
            chunk_hash = sha256_hex(f"{row}:{version}:{text}")
            chunks.append(
                Chunk(
                    chunk_id=chunk_id_for(doc_id, index, chunk_hash),
                    doc_id=doc_id,
                    source=source,
                    title=f"doc {doc_n}",
                    heading=None,
                    page=None,
                    chunk_index=index,
                    char_start=0,
                    char_end=len(text),
                    token_count=len(text) // 4,
                    chunk_hash=chunk_hash,
                    doc_hash=sha256_hex(source),
                    mtime=now,
                    ingested_at=now,
                    text=text,
                )
            )
        store.replace_documents(chunks, row_vectors(base, count, seed=start + version), doc_ids)


def reingest_disk(
    store: LanceStore, size: int, share: float, texts: list[str], base: np.ndarray, ann_min_rows: int
) -> dict[str, float]:
    """Disk after re-writing `share` of the documents as an ingest does: right after the run (with the
    default [store] cleanup settings) and once nothing but the newest version is kept, against the live
    data (the same table written fresh)."""
    from ragcli.config import StoreConfig

    defaults = StoreConfig()
    changed = int(size * share) // CHUNKS_PER_DOC * CHUNKS_PER_DOC
    write_rows(store, range(0, changed), texts, base, version=1)
    store.refresh_indexes()
    store.cleanup_versions(defaults.keep_versions, defaults.keep_versions_minutes)
    right_after = disk_mb(Path(store.uri))
    store.cleanup_versions(1, 0.0)
    settled = disk_mb(Path(store.uri))
    fresh = LanceStore.open(str(OUT / f"scale-{size}-fresh"))
    shutil.rmtree(fresh.uri, ignore_errors=True)
    fresh.ensure_identity(EmbedderIdentity("bge-small-en-v1.5", base.shape[1]), create=True)
    write_rows(fresh, range(0, changed), texts, base, version=1)
    write_rows(fresh, range(changed, size), texts, base, version=0)
    fresh.refresh_indexes()
    fresh.ensure_vector_index(ann_min_rows)
    fresh.cleanup_versions(1, 0.0)
    live = disk_mb(Path(fresh.uri))
    shutil.rmtree(fresh.uri, ignore_errors=True)
    return {
        "live_mb": live,
        "right_after_mb": right_after,
        "newest_only_mb": settled,
        "right_after_x_live": round(right_after / live, 2),
        "newest_only_x_live": round(settled / live, 2),
    }


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def p50_p95(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def ann_ids(store: LanceStore, vector: np.ndarray, nprobes: int, refine: int, ef: int) -> list[str]:
    query = (
        store.table.search(vector, vector_column_name="vector")
        .metric("cosine")
        .select(["id", "_distance"])
        .limit(10)
    )
    query = query.nprobes(nprobes).ef(max(ef, 10 * max(refine, 1)))
    if refine:
        query = query.refine_factor(refine)
    return [row["id"] for row in query.to_list()]


def measure(store: LanceStore, vectors: np.ndarray, questions: list[str], grid: bool) -> dict[str, Any]:
    exact_ms: list[float] = []
    ann_ms: list[float] = []
    keyword_ms: list[float] = []
    hybrid_ms: list[float] = []
    agreement: list[float] = []
    deep_agreement: list[float] = []  # the top 10 of the 100 a hybrid search fetches
    exact_top: list[set[str]] = []
    # Search as `ragcli ask` does: through a store opened for reading (the writer's store re-reads the
    # table's latest version on every query, which costs a reader nothing).
    writer, store = store, LanceStore.open(store.uri)
    for vector, question in zip(vectors[:3], questions[:3], strict=True):  # warm the caches
        store.vector_search(vector, 20)
        store.keyword_search(question, 20)
    for vector, question in zip(vectors, questions, strict=True):
        times, exact = timed(lambda v=vector: store.vector_search(v, 10, exact=True), 1)
        exact_ms += times
        times, ann = timed(lambda v=vector: store.vector_search(v, 10), 1)
        ann_ms += times
        times, _ = timed(lambda q=question: store.keyword_search(q, 10), 1)
        keyword_ms += times

        def hybrid(v: np.ndarray = vector, q: str = question) -> Any:
            # As the pipeline's default hybrid search: NORMALISE_DEPTH candidates per list, adaptive fusion.
            return fuse_hybrid(
                store.vector_search(v, NORMALISE_DEPTH), store.keyword_search(q, NORMALISE_DEPTH), "adaptive", 0.6, 60
            )

        hybrid_ms += timed(hybrid, 1)[0]
        deep = store.vector_search(vector, NORMALISE_DEPTH)[:10]
        exact_ids = {p.chunk_id for p in exact}
        exact_top.append(exact_ids)
        agreement.append(len(exact_ids & {p.chunk_id for p in ann}) / 10)
        deep_agreement.append(len(exact_ids & {p.chunk_id for p in deep}) / 10)
    result: dict[str, Any] = {
        "indexed": writer.has_vector_index(),
        "vector_exact": p50_p95(exact_ms),
        "vector_ann": p50_p95(ann_ms),
        "keyword": p50_p95(keyword_ms),
        "hybrid": p50_p95(hybrid_ms),
        "agreement": round(statistics.mean(agreement), 3),
        "queries_under_0.8": sum(a < 0.8 for a in agreement),
        "agreement_top10_of_100": round(statistics.mean(deep_agreement), 3),
    }
    if grid and writer.has_vector_index():
        store = writer
        rows = []
        for nprobes in (10, 20, 40):
            for refine in (0, 5, 10, 20):
                scores, times = [], []
                for vector, want in zip(vectors, exact_top, strict=True):
                    took, got = timed(
                        lambda v=vector, n=nprobes, r=refine: ann_ids(store, v, n, r, lance.ANN_EF), 1
                    )
                    times += took
                    scores.append(len(want & set(got)) / 10)
                rows.append(
                    {
                        "nprobes": nprobes,
                        "refine": refine,
                        "agreement": round(statistics.mean(scores), 3),
                        "under_0.8": sum(s < 0.8 for s in scores),
                        **p50_p95(times),
                    }
                )
        result["grid"] = rows
    return result


def disk_mb(folder: Path) -> float:
    out = subprocess.run(["du", "-sb", str(folder)], capture_output=True, text=True, check=True)
    return round(int(out.stdout.split()[0]) / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--base", type=int, default=2000, help="real embeddings the rows are mixed from")
    parser.add_argument("--ann-min-rows", type=int, default=None, help="default: [store] ann_min_rows")
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the tables in benchmarks/out")
    parser.add_argument(
        "--reingest-share", type=float, default=0.0, help="also measure disk after re-writing this share"
    )
    parser.add_argument("--no-search", action="store_true", help="skip the latency and agreement queries")
    args = parser.parse_args()
    from ragcli.config import StoreConfig

    ann_min_rows = args.ann_min_rows or StoreConfig().ann_min_rows  # type: ignore[call-arg]
    texts = chunk_texts()
    questions = queries(args.queries)
    random.seed(0)
    base, asked = embeddings(texts, questions, args.base)
    for size in (int(s) for s in args.sizes.split(",")):
        store, seconds = build(size, texts, base, ann_min_rows)
        report: dict[str, Any] = {
            "rows": size,
            "build_s": round(seconds, 1),
            "disk_mb": disk_mb(Path(store.uri)),
        }
        if not args.no_search:
            report.update(measure(store, asked, questions, args.grid))
        if args.reingest_share:
            report["reingest"] = reingest_disk(store, size, args.reingest_share, texts, base, ann_min_rows)
        print(json.dumps(report), flush=True)
        if not args.keep:
            shutil.rmtree(store.uri, ignore_errors=True)


if __name__ == "__main__":
    main()
