"""The index on a loopback S3 server (moto) against local disk: ingest time and warm query latency.

    .venv/bin/python benchmarks/object_store.py [CORPUS] [--files 240] [--queries 40] [--rounds 3]

CORPUS defaults to ../shared/corpora/postgresql-15-docs; the `--files` smallest HTML pages are ingested
(read in place, by path). One state directory holds the chunk embedding cache for every run, so:
1. a first ingest into a local index embeds everything (its time is the model's, and is not compared);
2. an ingest into a second local index and one into s3://…/index then take every vector from the cache:
   the difference between the two is what the object store costs (reads, writes, commits, index builds);
3. the same `--queries` questions (the pages' titles) are searched `--rounds` times against each index
   after a warm-up round (query vectors cached, so only the search and the store are timed):
   p50/p95 per index and their ratio.
moto is a Python server on the same two cores, so this is an upper bound on what a real S3-compatible
endpoint costs from the same machine; a real S3 in another building adds its round trips (about 10–30 ms
per request).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ragcli.config import load_settings  # noqa: E402
from ragcli.ingest.pipeline import Ingestor  # noqa: E402
from ragcli.query import AskOptions, QueryEngine  # noqa: E402
from tests.servers import s3_server  # noqa: E402


def smallest_pages(corpus: Path, count: int) -> list[Path]:
    pages = sorted(corpus.rglob("*.html"), key=lambda p: (p.stat().st_size, str(p)))
    return pages[:count]


def titles(pages: list[Path], count: int) -> list[str]:
    import re

    found = []
    for page in pages:
        match = re.search(r"<title>(.*?)</title>", page.read_text(errors="replace"), re.S)
        if match:
            found.append(" ".join(match.group(1).split()))
    step = max(1, len(found) // count)
    return found[::step][:count]


def ingest(settings_env: dict[str, str], files: list[Path]) -> dict[str, float]:
    settings = load_settings(env=settings_env)
    started = time.perf_counter()
    report = Ingestor(settings).run(files)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "added": report.added,
        "chunks_embedded": report.chunks_embedded,
        "chunks_reused": report.chunks_reused,
    }


def query_latency(settings_env: dict[str, str], questions: list[str], rounds: int) -> dict[str, float]:
    settings = load_settings(env=settings_env)
    engine = QueryEngine(settings)
    options = AskOptions(k=5)
    for question in questions:  # warm-up: models, query vectors, the table's files
        engine.retrieve(question, options)
    times = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            engine.retrieve(question, options)
            times.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(times, n=100)
    return {"p50_ms": round(cuts[49], 1), "p95_ms": round(cuts[94], 1), "samples": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared/corpora/postgresql-15-docs"))
    parser.add_argument("--files", type=int, default=240)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = smallest_pages(Path(args.corpus), args.files)
    questions = titles(files, args.queries)
    results: dict[str, object] = {"files": len(files), "queries": len(questions), "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="ragcli-bench-s3-") as tmp:
        work = Path(tmp)
        home = {"RAGCLI_HOME": str(work / "state")}
        results["first_ingest_local"] = ingest(home | {"RAGCLI_STORE__URI": str(work / "warmup")}, files)
        local = home | {"RAGCLI_STORE__URI": str(work / "local")}
        results["ingest_local_cached_vectors"] = ingest(local, files)
        with s3_server(work) as s3:
            import os

            os.environ.update(s3.env)
            remote = home | {"RAGCLI_STORE__URI": f"s3://{s3.new_bucket('bench')}/index"}
            results["ingest_s3_cached_vectors"] = ingest(remote, files)
            results["query_local"] = query_latency(local, questions, args.rounds)
            results["query_s3"] = query_latency(remote, questions, args.rounds)
    local_ingest = results["ingest_local_cached_vectors"]["seconds"]  # type: ignore[index]
    results["ingest_ratio_s3_to_local"] = round(results["ingest_s3_cached_vectors"]["seconds"] / local_ingest, 2)  # type: ignore[index]
    for cut in ("p50_ms", "p95_ms"):
        results[f"query_{cut}_ratio_s3_to_local"] = round(
            results["query_s3"][cut] / results["query_local"][cut], 2  # type: ignore[index]
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
