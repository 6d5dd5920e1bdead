"""Peak memory and CPU of the ONNX embedder per `[embedding] batch_tokens` budget, each in a fresh process.

    .venv/bin/python benchmarks/embed_memory.py [--shared ../shared] [--texts 600] [--budgets 512 1024 2048 4096]

Texts: paragraphs of the Rust book (../shared/corpora/rust-book-md) joined into texts of 20–450 words, as a
chunker's output of mixed lengths looks; embedded 200 at a time with the default batch size. Prints, per
budget, the resident memory before embedding, the peak (ru_maxrss) and the CPU seconds of embedding.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def texts_from(shared: Path, count: int) -> list[str]:
    words = " ".join(
        p.read_text(encoding="utf-8") for p in sorted((shared / "corpora/rust-book-md").rglob("*.md"))
    ).split()
    rng = random.Random(7)
    out = []
    for _ in range(count):
        length = rng.choice([20, 60, 150, 300, 450])
        start = rng.randrange(0, len(words) - length)
        out.append(" ".join(words[start : start + length]))
    return out


def measure(budget: int, shared: Path, count: int) -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    from ragcli.config import EmbeddingConfig
    from ragcli.embedding.onnx import OnnxEmbedder

    texts = texts_from(shared, count)
    embedder = OnnxEmbedder.from_config(EmbeddingConfig(batch_tokens=budget))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.process_time()
    for i in range(0, len(texts), 200):
        embedder.embed_documents(texts[i : i + 200])
    return {
        "batch_tokens": budget,
        "rss_before_mb": round(before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpu_s": round(time.process_time() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--texts", type=int, default=600)
    parser.add_argument("--budgets", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.shared, args.texts)))
        return
    for budget in args.budgets:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(budget),
                "--shared",
                str(args.shared),
                "--texts",
                str(args.texts),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        print(done.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
