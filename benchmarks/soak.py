"""Memory of one long-lived process answering many questions: RSS growth per question after warm-up.

    PYTHONPATH=. .venv/bin/python benchmarks/soak.py [--questions 10000] [--warmup 1000]

Indexes fixtures/docs into a scratch state directory, then answers `--questions` questions in this
process through the engine and the answer cache (extractive provider, cache on), as `ragcli serve`
does: one QueryEngine and one AnswerCache for the whole run. Each odd-numbered question re-asks the
text of question n // 2, which makes a quarter of all questions exact cache hits; the others are new (a miss: embedded, searched, answered, cached). RSS is read
from /proc/self/statm; the figure is (RSS at the end − RSS after the warm-up) / questions after it.
The issue's bound: ≤ 2 KB per question, 0 failures (docs/operations.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOPICS = ("factory reset", "belt tension", "warranty period", "firmware update", "serial protocol",
          "lubrication", "error code", "power supply", "calibration", "cleaning the lens")


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def question(n: int) -> str:
    if n % 2 == 1:
        n = n // 2  # a repeat: asked before, served from the cache
    return f"What does the manual say about {TOPICS[n % len(TOPICS)]} in case {n}?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    args = parser.parse_args()

    from ragcli.cache.answers import AnswerCache
    from ragcli.config import load_settings
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.query import AskOptions, QueryEngine, ask_with_cache

    home = Path(tempfile.mkdtemp(prefix="ragcli-soak-"))
    settings = load_settings(env={"RAGCLI_HOME": str(home), "RAGCLI_GENERATION__PROVIDER": "extractive"})
    Ingestor(settings).run([REPO / "fixtures" / "docs"])
    engine = QueryEngine(settings)
    cache = AnswerCache(settings)
    failures = hits = 0
    samples: list[tuple[int, int]] = []
    started = time.perf_counter()
    warm_rss = 0
    for n in range(args.questions):
        try:
            result, engine_used = ask_with_cache(settings, question(n), AskOptions(), engine=engine, answer_cache=cache)
            hits += result.get("cache") is not None
            engine = engine_used or engine
        except Exception as exc:  # counted: the bound is 0
            failures += 1
            print(f"question {n} failed: {exc}", file=sys.stderr)
        if n + 1 == args.warmup:
            gc.collect()
            warm_rss = rss_bytes()
        if (n + 1) % 500 == 0:
            samples.append((n + 1, rss_bytes()))
    gc.collect()
    end_rss = rss_bytes()
    after = args.questions - args.warmup
    print(
        json.dumps(
            {
                "questions": args.questions,
                "warmup": args.warmup,
                "failures": failures,
                "cache_hits": hits,
                "seconds": round(time.perf_counter() - started, 1),
                "rss_after_warmup_mb": round(warm_rss / 2**20, 1),
                "rss_end_mb": round(end_rss / 2**20, 1),
                "growth_bytes_per_question": round((end_rss - warm_rss) / after) if after > 0 else None,
                "rss_mb_every_500": [(n, round(r / 2**20, 1)) for n, r in samples],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
