"""`ragcli ask` latency per stage: warm (one process, N questions) and cold (a fresh process each).

    .venv/bin/python benchmarks/ask_latency.py [SQUAD_JSON] [--warm 100] [--cold 10] [--provider extractive]

The index is the SQuAD contexts (built once under benchmarks/out/ask-home). Caches are off, so every
question runs the whole pipeline. Cold runs are broken into: interpreter + ragcli imports, the lancedb
import, the embedding model load, and the question itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COLD_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from ragcli.config import load_settings
from ragcli.query import AskOptions, QueryEngine
t1 = time.perf_counter()
import lancedb  # noqa: F401
t2 = time.perf_counter()
settings = load_settings()
engine = QueryEngine(settings)
engine.embedder
t3 = time.perf_counter()
result = engine.ask(sys.argv[1], AskOptions())
t4 = time.perf_counter()
print(json.dumps({"imports_ms": (t1 - t0) * 1000, "lancedb_import_ms": (t2 - t1) * 1000,
                  "model_load_ms": (t3 - t2) * 1000, "ask_ms": (t4 - t3) * 1000,
                  "stages": result.timings_ms}))
"""


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    q = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else [values[0]] * 19
    return {"p50": round(statistics.median(values), 1), "p95": round(q[18], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("squad", nargs="?", default=str(REPO.parent / "shared/eval/squad-v2-part/dev-v2.0-part.json"))
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--provider", default="extractive")
    parser.add_argument("--rerank", action="store_true")
    args = parser.parse_args()

    from ragcli.config import load_settings
    from ragcli.evaluation.harness import build_index
    from ragcli.evaluation.squad import load_squad, paragraph_documents
    from ragcli.query import AskOptions, QueryEngine

    home = REPO / "benchmarks/out/ask-home"
    env = {
        "RAGCLI_HOME": str(home),
        "RAGCLI_CACHE__ENABLED": "false",
        "RAGCLI_TELEMETRY__ENABLED": "false",
        "RAGCLI_GENERATION__PROVIDER": args.provider,
        "RAGCLI_RERANK__ENABLED": "true" if args.rerank else "false",
    }
    settings = load_settings(env=env)
    examples = load_squad(args.squad)
    build_index(settings, paragraph_documents(examples))
    questions = [e.question for e in examples if not e.is_impossible][: max(args.warm, args.cold)]

    engine = QueryEngine(settings)
    engine.ask(questions[0], AskOptions())  # load models once; warm means warm
    stages: dict[str, list[float]] = {}
    for question in questions[: args.warm]:
        result = engine.ask(question, AskOptions())
        for stage, ms in result.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    out: dict[str, object] = {"provider": args.provider, "rerank": args.rerank, "warm_questions": args.warm}
    out["warm_ms"] = {stage: percentiles(values) for stage, values in stages.items()}

    cold: dict[str, list[float]] = {}
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | env
    for question in questions[: args.cold]:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", COLD_SCRIPT, question], capture_output=True, text=True, env=child_env,
            check=True, cwd=REPO,
        )
        wall = (time.perf_counter() - started) * 1000
        data = json.loads(done.stdout.strip().splitlines()[-1])
        for key in ("imports_ms", "lancedb_import_ms", "model_load_ms", "ask_ms"):
            cold.setdefault(key, []).append(data[key])
        cold.setdefault("process_wall_ms", []).append(wall)
    out["cold_ms"] = {key: percentiles(values) for key, values in cold.items()}
    out["cold_questions"] = args.cold
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
