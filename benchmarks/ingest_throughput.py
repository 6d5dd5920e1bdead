"""Ingest throughput against the raw model, re-ingest cost, and a 10%-changed re-ingest.

    .venv/bin/python benchmarks/ingest_throughput.py [CORPUS] [--raw-sample N] [--changed-share 0.1]

CORPUS defaults to ../shared/corpora/postgresql-15-docs. In one process it:
1. ingests CORPUS into a fresh state directory (chunks/s, tokens/s by the model's tokenizer, peak RSS);
2. embeds the same chunk texts with the bare ONNX embedder, same batch size (the model's ceiling);
3. re-ingests the unchanged corpus (seconds, as a share of the first ingest);
4. copies the corpus, edits one paragraph in `--changed-share` of its files, ingests the copy, edits,
   re-ingests: chunks re-embedded and seconds, against the full embed of those documents.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ragcli.config import EmbeddingConfig, load_settings  # noqa: E402
from ragcli.embedding import get_embedder  # noqa: E402
from ragcli.ingest.pipeline import Ingestor  # noqa: E402
from ragcli.store import get_store  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest(home: Path, corpus: Path) -> tuple[dict[str, object], float]:
    settings = load_settings(env={"RAGCLI_HOME": str(home)})
    started = time.perf_counter()
    report = Ingestor(settings).run([corpus])
    return report.summary(), time.perf_counter() - started


def edit_one_paragraph(path: Path, rng: random.Random) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    marker = "</p>" if path.suffix in (".html", ".htm") else "\n\n"
    cut = text.find(marker, len(text) // 2)
    if cut < 0:
        cut = len(text)
    note = f" Edited for the benchmark ({rng.random():.6f})."
    path.write_text(text[:cut] + note + text[cut:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared/corpora/postgresql-15-docs"))
    parser.add_argument("--raw-sample", type=int, default=0, help="embed only N chunks raw (0 = all)")
    parser.add_argument("--changed-share", type=float, default=0.1)
    parser.add_argument("--skip-changed", action="store_true")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        sys.exit(f"{corpus} is not there: this benchmark needs ../shared (see shared/README.md)")
    work = Path(tempfile.mkdtemp(prefix="ragcli-bench-"))
    out: dict[str, object] = {"corpus": str(corpus)}
    try:
        summary, seconds = ingest(work / "home", corpus)
        settings = load_settings(env={"RAGCLI_HOME": str(work / "home")})
        texts = get_store(settings).all_rows(["text"])["text"]
        embedder = get_embedder(EmbeddingConfig())  # type: ignore[call-arg]
        tokens = sum(embedder.count_tokens(texts))  # type: ignore[attr-defined]
        out["ingest"] = summary | {
            "wall_seconds": round(seconds, 1),
            "chunks": len(texts),
            "model_tokens": tokens,
            "chunks_per_s": round(len(texts) / seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        sample = texts if not args.raw_sample else texts[:: max(1, len(texts) // args.raw_sample)]
        started = time.perf_counter()
        for start in range(0, len(sample), 256):
            embedder.embed_documents(sample[start : start + 256])
        raw_seconds = time.perf_counter() - started
        raw_tokens = sum(embedder.count_tokens(sample))  # type: ignore[attr-defined]
        out["raw_model"] = {
            "chunks": len(sample),
            "seconds": round(raw_seconds, 1),
            "chunks_per_s": round(len(sample) / raw_seconds, 2),
            "tokens_per_s": round(raw_tokens / raw_seconds, 1),
        }
        out["pipeline_share_of_raw_tokens_per_s"] = round(
            (tokens / seconds) / (raw_tokens / raw_seconds), 3
        )
        again, again_seconds = ingest(work / "home", corpus)
        out["reingest_unchanged"] = {
            "seconds": round(again_seconds, 2),
            "share_of_first": round(again_seconds / seconds, 4),
            "chunks_embedded": again["chunks_embedded"],
        }
        print(json.dumps(out, indent=2), flush=True)
        if not args.skip_changed:
            copy = work / "copy"
            shutil.copytree(corpus, copy)
            first, first_seconds = ingest(work / "home-copy", copy)
            rng = random.Random(7)
            files = sorted(p for p in copy.rglob("*") if p.is_file())
            chosen = rng.sample(files, max(1, int(len(files) * args.changed_share)))
            for path in chosen:
                edit_one_paragraph(path, rng)
            changed, changed_seconds = ingest(work / "home-copy", copy)
            out["reingest_10pct_changed"] = {
                "files_changed": len(chosen),
                "documents_updated": changed["updated"],
                "chunks_embedded": changed["chunks_embedded"],
                "chunks_reused": changed["chunks_reused"],
                "seconds": round(changed_seconds, 1),
                "full_ingest_seconds": round(first_seconds, 1),
                "full_ingest_chunks_embedded": first["chunks_embedded"],
            }
        print(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
