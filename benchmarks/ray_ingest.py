"""Ray ingest against a single-process ingest of the same files, on this machine's local Ray.

    .venv/bin/python benchmarks/ray_ingest.py [CORPUS] [--files 240] [--cpus 2]

CORPUS defaults to ../shared/corpora/postgresql-15-docs; the `--files` smallest HTML pages (read in place).
Each run starts from an empty state directory (no cached vectors), local index. Reported: wall seconds,
chunks/s, and for Ray the start-up (ray.init and the workers' model loads) separately. On one 2-core
machine Ray cannot be faster than the single process, whose ONNX session already uses both cores; what
this measures is the overhead of going through Ray (serialising bytes, chunks and vectors, actor calls),
which is the price paid per machine when the same work is spread over N machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.object_store import smallest_pages  # noqa: E402
from ragcli.config import load_settings  # noqa: E402
from ragcli.ingest.pipeline import Ingestor  # noqa: E402


def run(engine: str, files: list[Path], home: Path, threads: int = 0) -> dict[str, float]:
    env = {"RAGCLI_HOME": str(home), "RAGCLI_INGEST__ENGINE": engine, "RAGCLI_EMBEDDING__THREADS": str(threads)}
    settings = load_settings(env=env)
    if engine == "ray":
        from ragcli.ingest.ray_engine import RayIngestor

        ingestor: Ingestor = RayIngestor(settings)
    else:
        ingestor = Ingestor(settings)
    started = time.perf_counter()
    report = ingestor.run(files)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "added": report.added,
        "failed": report.failed,
        "chunks": report.chunks_embedded + report.chunks_reused,
        "chunks_per_s": round((report.chunks_embedded + report.chunks_reused) / seconds, 2),
        "tokens": report.embedding_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared/corpora/postgresql-15-docs"))
    parser.add_argument("--files", type=int, default=240)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--ray-first", action="store_true", help="run Ray first (the order check)")
    parser.add_argument("--single-only", action="store_true", help="only the single process (a control run)")
    parser.add_argument("--threads", type=int, default=0, help="single process: onnxruntime threads (0 = one per core)")
    args = parser.parse_args()
    files = smallest_pages(Path(args.corpus), args.files)
    results: dict[str, object] = {"files": len(files), "order": "ray first" if args.ray_first else "single first"}
    with tempfile.TemporaryDirectory(prefix="ragcli-bench-ray-") as tmp:
        work = Path(tmp)
        if args.single_only:
            print(json.dumps(results | {"threads": args.threads, "single_process": run("local", files, work / "single", args.threads)}, indent=2))
            return
        if not args.ray_first:
            results["single_process"] = run("local", files, work / "single")
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        results["ray_init_s"] = round(time.perf_counter() - started, 2)
        try:
            results["ray"] = run("ray", files, work / "ray")
        finally:
            ray.shutdown()
        if args.ray_first:
            results["single_process"] = run("local", files, work / "single")
    single, distributed = results["single_process"], results["ray"]
    results["ray_to_single_wall_ratio"] = round(distributed["seconds"] / single["seconds"], 2)  # type: ignore[index]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
