"""Disk after a real re-ingest with changes, against the live data (issue 11, item 3).

Copies a corpus to a temporary folder, ingests it with `ragcli ingest`, rewrites a share of its
files (a changed paragraph at the top of each), ingests again, and compares the index's size on disk
with a fresh ingest of the changed copy into a new home. Default configuration throughout.

    .venv/bin/python benchmarks/reingest_disk.py /work/shared/corpora/rust-book-md --share 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def index_mb(home: Path) -> float:
    total = sum(p.stat().st_size for p in home.rglob("*") if p.is_file() and ".lance" in str(p))
    return round(total / 1e6, 2)


def ingest(folder: Path, home: Path) -> None:
    env = {**os.environ, "RAGCLI_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(folder), "--json"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def rewrite(folder: Path, share: float) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".md", ".txt", ".html", ".rst"})
    chosen = files[:: max(1, round(1 / share))]
    for n, path in enumerate(chosen):
        text = path.read_text(encoding="utf-8", errors="replace")
        path.write_text(f"Revision note {n}: this page was revised for the re-ingest benchmark.\n\n{text}")
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--share", type=float, default=0.1, help="share of the files rewritten")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        docs = work / "docs"
        shutil.copytree(args.corpus, docs)
        ingest(docs, work / "home")
        first = index_mb(work / "home")
        changed = rewrite(docs, args.share)
        ingest(docs, work / "home")
        after = index_mb(work / "home")
        ingest(docs, work / "fresh")
        live = index_mb(work / "fresh")
    print(json.dumps({
        "corpus": str(args.corpus), "files_rewritten": changed, "first_ingest_mb": first,
        "after_reingest_mb": after, "live_mb": live, "after_x_live": round(after / live, 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
