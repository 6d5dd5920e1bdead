"""What onnxruntime's spinning pool threads cost and give: the bundled embedder with
`session.intra_op.allow_spinning` on and off, in one process, alternating.

    .venv/bin/python benchmarks/onnx_spinning.py [--rounds 2]

Per round and setting: 120 Rust-book passages (first 1,500 characters of 60 chapters, twice) embedded in
one call, then 40 single queries; wall time and this process's CPU time (user + system) for each.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from ragcli.config import EmbeddingConfig
from ragcli.embedding.onnx import OnnxEmbedder

BOOK = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "rust-book-md"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def embedder(spinning: bool) -> Any:
    import onnxruntime as ort

    original = ort.SessionOptions.add_session_config_entry

    def add(options: Any, key: str, value: str) -> Any:
        if key == "session.intra_op.allow_spinning" and spinning:
            value = "1"
        return original(options, key, value)

    ort.SessionOptions.add_session_config_entry = add  # type: ignore[method-assign]
    try:
        return OnnxEmbedder.from_config(EmbeddingConfig())
    finally:
        ort.SessionOptions.add_session_config_entry = original  # type: ignore[method-assign]


def measure(model: Any, texts: list[str]) -> dict[str, float]:
    wall, used = time.perf_counter(), cpu()
    model.embed_documents(texts)
    batch = {"batch_wall_s": time.perf_counter() - wall, "batch_cpu_s": cpu() - used}
    wall, used = time.perf_counter(), cpu()
    for text in texts[:40]:
        model.embed_query(text[:100])
    return batch | {"queries_wall_s": time.perf_counter() - wall, "queries_cpu_s": cpu() - used}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    files = sorted(BOOK.rglob("*.md"))[:60]
    texts = [f.read_text(encoding="utf-8")[:1500] for f in files] * 2
    models = {"spinning": embedder(True), "no_spinning": embedder(False)}
    for model in models.values():
        model.embed_documents(texts[:8])
    results: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            results[name].append({k: round(v, 3) for k, v in measure(model, texts).items()})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
