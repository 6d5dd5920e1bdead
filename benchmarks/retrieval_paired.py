"""Paired bootstrap between two `ragcli eval retrieval --details` files (e.g. two indexes of one set).

    .venv/bin/python benchmarks/retrieval_paired.py "BASE.jsonl#dense" "NEW.jsonl#hybrid" [--metric ndcg@10]

Each argument is a details file and, after "#", the variant in it; the queries both scored are paired
(ragcli.evaluation.runner.paired_bootstrap, the code behind `--ci`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ragcli.evaluation.runner import paired_bootstrap


def scores(spec: str) -> dict[str, dict[str, float]]:
    path, _, variant = spec.partition("#")
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    return {r["query_id"]: r for r in rows if r["variant"] == variant}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base")
    parser.add_argument("new")
    parser.add_argument("--metric", default="ndcg@10")
    args = parser.parse_args()
    base, new = scores(args.base), scores(args.new)
    iv = paired_bootstrap(new, base, args.metric)
    mean_base = sum(s[args.metric] for s in base.values()) / len(base)
    print(
        f"{args.base} -> {args.new}: {mean_base:.4f} -> {mean_base + iv['delta']:.4f}, {args.metric} "
        f"{iv['delta']:+.4f} [{iv['low']:+.4f}, {iv['high']:+.4f}] p={iv['p']:.3f} ({iv['queries']} queries)"
    )


if __name__ == "__main__":
    main()
