"""Re-ingest after a share of the documents changed one paragraph, against the first full ingest.

    .venv/bin/python benchmarks/changed_reingest.py STATE_HOME CORPUS_DIR [--share 0.1]

Works on an index that already holds CORPUS_DIR (for example the one `ragcli eval retrieval` builds
under <home>/eval/). It backs up the state directory and the files it edits, appends one sentence
to the middle paragraph of `--share` of the files, re-ingests, reports chunks re-embedded and seconds,
and restores both, so the index is left as it was.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("corpus")
    parser.add_argument("--share", type=float, default=0.1)
    args = parser.parse_args()

    from ragcli.config import load_settings
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.store import get_store

    home, corpus = Path(args.home), Path(args.corpus)
    settings = load_settings(env={"RAGCLI_HOME": str(home)})
    total_chunks = get_store(settings).count()
    backup = Path(tempfile.mkdtemp(prefix="ragcli-changed-"))
    shutil.copytree(home, backup / "home", ignore=shutil.ignore_patterns("corpus"))
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    rng = random.Random(11)
    chosen = rng.sample(files, max(1, int(len(files) * args.share)))
    originals = {p: p.read_bytes() for p in chosen}
    try:
        for path in chosen:
            paragraphs = path.read_text(encoding="utf-8").split("\n\n")
            middle = len(paragraphs) // 2
            paragraphs[middle] += " This sentence was added to measure a partial re-ingest."
            path.write_text("\n\n".join(paragraphs), encoding="utf-8")
        started = time.perf_counter()
        report = Ingestor(settings).run([corpus])
        seconds = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "documents": len(files),
                    "documents_changed": len(chosen),
                    "updated": report.updated,
                    "chunks_in_index": total_chunks,
                    "chunks_embedded": report.chunks_embedded,
                    "chunks_reused": report.chunks_reused,
                    "seconds": round(seconds, 1),
                },
                indent=2,
            )
        )
    finally:
        for path, data in originals.items():
            path.write_bytes(data)
        for item in ("lancedb", "corpus.sqlite3", "cache", "dead_letter.jsonl"):
            target = home / item
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if (backup / "home" / item).is_dir():
                shutil.copytree(backup / "home" / item, target)
            elif (backup / "home" / item).exists():
                shutil.copy2(backup / "home" / item, target)
        shutil.rmtree(backup, ignore_errors=True)


if __name__ == "__main__":
    main()
