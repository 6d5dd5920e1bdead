"""Ingest throughput on the two awkward shapes of corpus, against the bare model on the same chunks.

    .venv/bin/python benchmarks/shape_throughput.py [--docs 600] [--out benchmarks/out/shapes]

Two corpora are written from SciFact abstracts (../shared/eval/scifact/corpus.jsonl, read by path):
- `tiny`: one small Markdown file per abstract (a title and one paragraph, about one chunk each);
- `huge`: the same abstracts as sections of one Markdown document.
For each, in fresh processes, one after the other:
1. `ragcli ingest` with the default configuration into a new state directory: CPU seconds (user + system
   of the process and its threads), wall seconds, peak RSS, chunks and model tokens;
2. the bare ONNX embedder (the same model, batch size and token budget as the defaults) on exactly the
   chunk texts the ingest indexed, read back from its index: CPU seconds.
The figure is the pipeline's tokens per CPU-second as a share of the bare model's. CPU time, not wall
time, because the machine is shared: another process's load stretches wall time, not this one's CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared" / "eval" / "scifact" / "corpus.jsonl"

BARE = r"""
import json, resource, sys, time
import lance
from ragcli.config import EmbeddingConfig
from ragcli.embedding.onnx import OnnxEmbedder
home = sys.argv[1]
texts = lance.dataset(f"{home}/lancedb/chunks.lance").to_table(columns=["search_text", "text"]).to_pydict()
chunks = [s or t for s, t in zip(texts["search_text"], texts["text"])]
embedder = OnnxEmbedder.from_config(EmbeddingConfig())
tokens = sum(embedder.count_tokens(chunks))
start = resource.getrusage(resource.RUSAGE_SELF)
wall = time.perf_counter()
size = EmbeddingConfig().batch_size
ordered = sorted(chunks, key=len)
for i in range(0, len(ordered), size):
    embedder.embed_documents(ordered[i : i + size])
end = resource.getrusage(resource.RUSAGE_SELF)
cpu = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
print(json.dumps({"chunks": len(chunks), "tokens": tokens, "cpu_s": cpu, "wall_s": time.perf_counter() - wall}))
"""


def write_corpora(out: Path, docs: int) -> dict[str, Path]:
    rows = []
    with SCIFACT.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row.get("text", "").strip():
                rows.append(row)
            if len(rows) == docs:
                break
    tiny, huge = out / "tiny", out / "huge"
    for folder in (tiny, huge):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for row in rows:
        (tiny / f"{row['_id']}.md").write_text(f"# {row['title']}\n\n{row['text']}\n", encoding="utf-8")
    sections = "\n\n".join(f"## {row['title']}\n\n{row['text']}" for row in rows)
    (huge / "all.md").write_text(f"# SciFact abstracts\n\n{sections}\n", encoding="utf-8")
    return {"tiny": tiny, "huge": huge}


def run_ingest(corpus: Path, home: Path) -> dict[str, float]:
    shutil.rmtree(home, ignore_errors=True)
    env = os.environ | {"RAGCLI_HOME": str(home), "PYTHONPATH": str(REPO)}
    wall = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "ragcli", "ingest", str(corpus), "--json", "-q"],
            env=env, stdout=out, stderr=subprocess.DEVNULL,
        )
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN's peak RSS is the largest child so far).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        report = json.loads(out.read())
    if child.returncode != 0:
        raise SystemExit(f"ingest of {corpus} exited {child.returncode}")
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "chunks_embedded": report.get("chunks_embedded"),
        "files": report.get("added"),
    }


def run_bare(home: Path) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", BARE, str(home)], env=env, capture_output=True, text=True, check=True, timeout=7200
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "shapes")
    args = parser.parse_args()
    corpora = write_corpora(args.out, args.docs)
    results: dict[str, dict[str, object]] = {}
    for shape, corpus in corpora.items():
        home = args.out / f"home-{shape}"
        ingest = run_ingest(corpus, home)
        bare = run_bare(home)
        tokens = float(bare["tokens"])
        results[shape] = {
            "ingest": ingest,
            "bare": bare,
            "pipeline_tokens_per_cpu_s": tokens / ingest["cpu_s"],
            "bare_tokens_per_cpu_s": tokens / float(bare["cpu_s"]),
            "share_of_bare": (tokens / ingest["cpu_s"]) / (tokens / float(bare["cpu_s"])),
        }
        print(shape, json.dumps(results[shape]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
