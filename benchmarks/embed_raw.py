"""Raw embedding throughput of the ONNX embedder, with length-sorted batches and without.

    .venv/bin/python benchmarks/embed_raw.py /work/shared/eval/scifact/corpus.jsonl --limit 500
    .venv/bin/python benchmarks/embed_raw.py some/folder --batch-size 16 --repeat 3

Input: a .jsonl file (each line's "title" and "text", or "contents"), any other text file (one text per
line), or a folder (each .txt/.md/.rst file is one text). Reports texts/s and tokens/s, where tokens are
the model tokenizer's tokens actually run (after truncation to max_tokens), plus the padded token count:
the work the model does, which sorting shrinks, and which unlike the timings is not moved by other load
on the machine; "cpu s" is the process's CPU time, less moved by other load than the wall clock. Each
repeat runs every mode once, interleaved, and the best time per mode is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from ragcli.embedding.onnx import OnnxEmbedder, resolve_model_dir

TEXT_SUFFIXES = {".txt", ".md", ".rst"}
MODES = {"sorted": (True, None), "unsorted": (False, None), "single": (True, 1)}


def read_texts(source: Path, limit: int) -> list[str]:
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in files[:limit]]
    elif source.suffix == ".jsonl":
        texts = []
        with source.open(encoding="utf-8") as fh:
            for line in fh:
                if len(texts) >= limit:
                    break
                doc = json.loads(line)
                text = doc.get("contents") or f"{doc.get('title', '')}\n{doc.get('text', '')}"
                texts.append(text.strip())
    else:
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        texts = [line for line in lines if line.strip()][:limit]
    return [t for t in texts if t.strip()]


def padded_tokens(lengths: list[int], batch_size: int, sort: bool) -> int:
    order = sorted(range(len(lengths)), key=lengths.__getitem__) if sort else list(range(len(lengths)))
    total = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        total += max(batch) * len(batch)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help=".jsonl / text file, or a folder of text files")
    parser.add_argument("--limit", type=int, default=500, help="texts to embed (default 500)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=0, help="onnxruntime intra-op threads; 0 = ORT decides"
    )
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--modes", default="sorted,unsorted", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--model", default="bge-small-en-v1.5")
    parser.add_argument("--model-path", default=None)
    args = parser.parse_args()

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {list(MODES)}")

    texts = read_texts(args.source, args.limit)
    if not texts:
        parser.error(f"no texts found in {args.source}")
    started = time.perf_counter()
    embedder = OnnxEmbedder(
        resolve_model_dir(args.model, args.model_path),
        name=args.model,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    load_s = time.perf_counter() - started

    raw_lengths = embedder.count_tokens(texts)
    run_lengths = [min(n, embedder.max_tokens) for n in raw_lengths]
    run_tokens = sum(run_lengths)
    print(
        f"model {embedder.name} ({embedder.dimension}-d, max {embedder.max_tokens} tokens), loaded in {load_s:.2f}s"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; threads={args.threads or 'auto'}"
    )
    print(
        f"{len(texts)} texts from {args.source}; tokens per text: mean {run_tokens / len(texts):.0f}, "
        f"max {max(raw_lengths)}; {sum(n > embedder.max_tokens for n in raw_lengths)} truncated"
    )

    embedder.embed_documents(texts[: args.batch_size])  # warm-up: first run allocates ORT's buffers
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.repeat):
        for mode in modes:
            sort, batch_size = MODES[mode]
            embedder.sort_by_length = sort
            embedder.batch_size = batch_size or args.batch_size
            t0, c0 = time.perf_counter(), time.process_time()
            embedder.embed_documents(texts)
            best[mode] = min(best.get(mode, float("inf")), time.perf_counter() - t0)
            cpu[mode] = min(cpu.get(mode, float("inf")), time.process_time() - c0)

    print(
        f"\n{'mode':<10} {'batch':>5} {'seconds':>8} {'cpu s':>8} {'texts/s':>8} {'tokens/s':>9} "
        f"{'padded tokens':>14}"
    )
    for mode in modes:
        sort, batch_size = MODES[mode]
        bs = batch_size or args.batch_size
        seconds = best[mode]
        padded = padded_tokens(run_lengths, bs, sort)
        print(
            f"{mode:<10} {bs:>5} {seconds:>8.2f} {cpu[mode]:>8.2f} {len(texts) / seconds:>8.1f} "
            f"{run_tokens / seconds:>9.0f} {padded:>14} ({padded / run_tokens:.2f}× real)"
        )
    if "sorted" in best and "unsorted" in best:
        print(f"\nsorted vs unsorted: {best['unsorted'] / best['sorted']:.2f}× faster")


if __name__ == "__main__":
    main()
