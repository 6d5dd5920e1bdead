"""Cold start: a fresh `ragcli ask` process against a bare process that only loads the model and embeds
one query, measured side by side (interleaved rounds) in one run.

    .venv/bin/python benchmarks/cold_start.py [--rounds 7] [--code /work/main]

Per round, each in a new process: the bare process (onnxruntime + tokenizers, bundled model, one query);
`ragcli ask` with a question never asked before (answer-cache miss: embed, search, extractive answer);
`ragcli ask` with a question already cached (exact hit); and `ragcli --help`. Wall time and CPU time
(user + system, from the child's rusage) are reported as medians, with each ask's ratio to the bare
process. The index is fixtures/docs, built once under benchmarks/out/cold-home[-NAME]. `--code` runs
another checkout's ragcli (for a before/after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / "benchmarks" / "out" / "cold-home"

BARE = r"""
import onnxruntime as ort, numpy as np
from tokenizers import Tokenizer
from ragcli.models_path import BUNDLED_EMBEDDING_MODELS, bundled_model_dir
folder = bundled_model_dir(BUNDLED_EMBEDDING_MODELS["bge-small-en-v1.5"])
model = folder / "model.onnx" if (folder / "model.onnx").is_file() else folder / "onnx" / "model.onnx"
session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
enc = tok.encode("Represent this sentence for searching relevant passages: how do I reset the controller?")
ids = np.array([enc.ids], dtype=np.int64)
feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
names = {i.name for i in session.get_inputs()}
session.run(None, {k: v for k, v in feeds.items() if k in names})
"""


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose ragcli is measured")
    args = parser.parse_args()
    home = HOME if args.code == REPO else HOME.with_name(f"cold-home-{args.code.name}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update({"RAGCLI_HOME": str(home), "PYTHONPATH": str(args.code), "RAGCLI_TELEMETRY__ENABLED": "false"})
    ragcli = [sys.executable, "-m", "ragcli"]
    if not (home / "lancedb").exists():
        subprocess.run(
            [*ragcli, "ingest", str(REPO / "fixtures" / "docs")], env=env, cwd=args.code, check=True
        )
    hit_question = "What is the warranty period?"
    subprocess.run([*ragcli, "ask", hit_question], env=env, cwd=args.code, check=True, capture_output=True)
    cases = {
        "bare": [sys.executable, "-c", BARE],
        "miss": None,
        "hit": [*ragcli, "ask", hit_question],
        "help": [*ragcli, "--help"],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for round_ in range(args.rounds):
        for name, argv in cases.items():
            if argv is None:  # a question no earlier round asked: the answer cache misses
                argv = [*ragcli, "ask", f"How long does step {round_}-{time.time_ns()} of the setup take?"]
            results[name].append(timed(argv, env, args.code))
    medians = {
        name: {"wall_s": round(statistics.median(w for w, _ in runs), 3),
               "cpu_s": round(statistics.median(c for _, c in runs), 3)}
        for name, runs in results.items()
    }  # fmt: skip
    bare = medians["bare"]
    for name in ("miss", "hit"):
        medians[name]["wall_x_bare"] = round(medians[name]["wall_s"] / bare["wall_s"], 2)
        medians[name]["cpu_x_bare"] = round(medians[name]["cpu_s"] / bare["cpu_s"], 2)
    print(json.dumps({"rounds": args.rounds, **medians}, indent=2))


if __name__ == "__main__":
    main()
