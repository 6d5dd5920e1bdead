"""How far the answer gate's cross-encoder scales on this machine's cores: one shared model with one
onnxruntime thread per call (as `ragcli serve` runs it with several workers), called from N Python
threads at once.

    .venv/bin/python benchmarks/cross_encoder_threads.py [--threads 1,2,4] [--calls 40] [--rounds 4]

Each call scores 8 (question, sentence) pairs, the gate's shortlist. Prints calls per second per N,
rounds interleaved, and the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

from ragcli.config import RerankConfig
from ragcli.rerank import get_reranker

QUESTION = "What is the capital city of the Norman duchy in the tenth century?"
PAIRS = [
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region "
    f"in France. They were descended from Norse raiders {i}."
    for i in range(8)
]


def rate(model: object, threads: int, calls: int) -> float:
    def work() -> None:
        for _ in range(calls):
            model.score(QUESTION, PAIRS)  # type: ignore[attr-defined]

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    model = get_reranker(RerankConfig(threads=1))
    model.score(QUESTION, PAIRS)
    counts = [int(n) for n in args.threads.split(",")]
    rates: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(args.rounds):
        for n in counts:
            rates[n].append(round(rate(model, n, args.calls), 1))
    print(json.dumps({n: {"calls_per_s": r, "median": statistics.median(r)} for n, r in rates.items()}, indent=2))


if __name__ == "__main__":
    main()
