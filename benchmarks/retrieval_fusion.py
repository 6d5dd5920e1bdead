"""Which fusion and document aggregation to ship: a replay study over dumped candidate lists.

    .venv/bin/python benchmarks/retrieval_fusion.py benchmarks/out/replay-squad-clean.json \
        benchmarks/out/replay-scifact-clean.json                 # the grid; choices made on half A
    .venv/bin/python benchmarks/retrieval_fusion.py R.json --only dense,rrf,convex(0.6)   # named variants
    .venv/bin/python benchmarks/retrieval_fusion.py NEW.json --versus BASE.json --only dense,convex(0.6)

Input: files from benchmarks/retrieval_replay.py (per judged query, the store's own top-100 vector and
keyword chunks with raw scores). Every variant is computed by the shipped functions in
ragcli.retrieval.fusion, scored by ragcli.evaluation.runner (ir-measures nDCG@10, as `ragcli eval`), and
compared with plain dense retrieval (the vector list alone) by a paired bootstrap (runner.paired_bootstrap).

Procedure (written before looking at the numbers): queries are split in halves by a hash of their id.
On half A, each family's parameter is chosen to maximise the *smallest* gain over dense across the data
sets given (a default must not lose anywhere); the choice is then reported on half B, and on all
queries. Half B never influences a choice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragcli.evaluation.runner import dedupe_ranked, paired_bootstrap, score_rankings
from ragcli.models import Passage
from ragcli.retrieval import fusion

Lists = tuple[list[Passage], list[Passage]]
Fuse = Callable[[list[Passage], list[Passage]], list[Passage]]


def passages(rows: Sequence[Sequence[Any]]) -> list[Passage]:
    return [Passage(cid, doc, doc, "", None, None, int(idx), "", float(score)) for cid, doc, idx, score in rows]


def load(path: Path) -> tuple[dict[str, Lists], dict[str, dict[str, int]]]:
    data = json.loads(path.read_text())
    lists = {qid: (passages(row["vector"]), passages(row["keyword"])) for qid, row in data["queries"].items()}
    return lists, data["qrels"]


def half(qid: str) -> str:
    return "A" if int(hashlib.sha256(qid.encode()).hexdigest(), 16) % 2 == 0 else "B"


def variants() -> dict[str, tuple[str, Fuse]]:
    """name -> (family, fuse(vector, keyword))."""
    out: dict[str, tuple[str, Fuse]] = {
        "dense": ("dense", lambda v, k: v),
        "keyword": ("keyword", lambda v, k: k),
        "rrf": ("rrf", lambda v, k: fusion.reciprocal_rank_fusion([v, k], 60)),
    }
    for w in (0.55, 0.6, 0.7, 0.8):
        out[f"wrrf({w})"] = ("wrrf", lambda v, k, w=w: fusion.weighted_rrf([v, k], [w, 1 - w], 60))
    for w in (0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9):
        out[f"convex({w})"] = ("convex", lambda v, k, w=w: fusion.weighted_fusion(v, k, w))
    for w in (0.5, 0.6, 0.65, 0.7, 0.75):
        out[f"adaptive({w})"] = (
            "adaptive",
            lambda v, k, w=w: fusion.weighted_fusion(v, k, fusion.adaptive_weight(v, k, w)),
        )
    for w in (0.5, 0.7):
        out[f"adaptive-wrrf({w})"] = (
            "adaptive-wrrf",
            lambda v, k, w=w: fusion.weighted_rrf([v, k], [a := fusion.adaptive_weight(v, k, w), 1 - a], 60),
        )
    return out


def named(name: str) -> tuple[Fuse, float | None]:
    """A variant by name, with an optional "+doc(decay)" suffix."""
    base, _, doc = name.partition("+doc(")
    return variants()[base][1], (float(doc.rstrip(")")) if doc else None)


def per_query(
    lists: dict[str, Lists], qrels: dict[str, dict[str, int]], fuse: Fuse, decay: float | None
) -> dict[str, dict[str, float]]:
    rankings = {}
    for qid, (vector, keyword) in lists.items():
        fused = fuse(vector, keyword)
        if decay is not None:
            fused = fusion.document_aware(fused, decay)
        rankings[qid] = dedupe_ranked(p.doc_id for p in fused)[:100]
    return score_rankings(qrels, rankings)


def subset(scores: dict[str, dict[str, float]], part: str) -> dict[str, dict[str, float]]:
    return scores if part == "all" else {q: s for q, s in scores.items() if half(q) == part}


def mean(scores: dict[str, dict[str, float]]) -> float:
    return statistics.fmean(s["ndcg@10"] for s in scores.values())


def versus(base_path: Path, new_path: Path, names: Sequence[str], base_variant: str | None = None) -> None:
    """Each variant on NEW against the same variant (or `base_variant`) on BASE: same queries, another
    index, paired."""
    base_lists, qrels = load(base_path)
    new_lists, new_qrels = load(new_path)
    assert qrels == new_qrels, "the two replays must judge the same queries"
    print(f"{new_path.stem} against {base_path.stem} (paired bootstrap, nDCG@10)")
    for name in names:
        fuse, decay = named(name)
        base_fuse, base_decay = named(base_variant or name)
        ours = per_query(new_lists, qrels, fuse, decay)
        theirs = per_query(base_lists, qrels, base_fuse, base_decay)
        iv = paired_bootstrap(ours, theirs, "ndcg@10")
        print(
            f"  {(base_variant or name) + ' -> ' + name:36s} {mean(theirs):.4f} -> {mean(ours):.4f}  {iv['delta']:+.4f} "
            f"[{iv['low']:+.4f}, {iv['high']:+.4f}] p={iv['p']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("replays", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "retrieval_fusion.json")
    parser.add_argument("--only", help="comma-separated variants to score (no choosing), e.g. dense,convex(0.6)")
    parser.add_argument("--versus", type=Path, help="a replay of the same queries on another index: compare")
    parser.add_argument("--base-variant", help="with --versus: the variant on the other index (default: same)")
    args = parser.parse_args()
    if args.versus:
        versus(args.versus, args.replays[0], (args.only or "dense,keyword,rrf").split(","), args.base_variant)
        return
    sets = {path.stem.removeprefix("replay-"): load(path) for path in args.replays}
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    specs = variants()
    wanted = args.only.split(",") if args.only else list(specs)
    for name in dict.fromkeys(["dense", *wanted]):
        fuse, decay = named(name)
        table[name] = {ds: per_query(lists, qrels, fuse, decay) for ds, (lists, qrels) in sets.items()}
    chosen: dict[str, str] = {}
    if not args.only:
        # Half A: per family, the parameter whose smallest gain over dense (across data sets) is largest.
        for name, (family, _) in specs.items():
            gain = min(mean(subset(table[name][ds], "A")) - mean(subset(table["dense"][ds], "A")) for ds in sets)
            best = chosen.get(family)
            if best is None or gain > min(
                mean(subset(table[best][ds], "A")) - mean(subset(table["dense"][ds], "A")) for ds in sets
            ):
                chosen[family] = name
        # Document aggregation on top of each family's choice.
        for family, name in list(chosen.items()):
            if family in ("dense", "keyword"):
                continue
            for decay in (0.1, 0.25):
                doc_name = f"{name}+doc({decay})"
                fuse, _ = named(name)
                table[doc_name] = {
                    ds: per_query(lists, qrels, fuse, decay) for ds, (lists, qrels) in sets.items()
                }
    report: dict[str, Any] = {"chosen_on_A": chosen, "rows": {}}
    print(f"{'variant':28s} " + " ".join(f"{ds + ' ' + part:>40s}" for ds in sets for part in ("A", "B", "all")))
    for name in table:
        cells, row = [], {}
        for ds in sets:
            for part in ("A", "B", "all"):
                ours, base = subset(table[name][ds], part), subset(table["dense"][ds], part)
                iv = paired_bootstrap(ours, base, "ndcg@10")
                row[f"{ds}:{part}"] = {"ndcg@10": mean(ours), **iv}
                cells.append(f"{mean(ours):.4f} {iv['delta']:+.4f} [{iv['low']:+.4f},{iv['high']:+.4f}]")
        report["rows"][name] = row
        mark = "*" if name in chosen.values() else " "
        print(f"{mark}{name:27s} " + " ".join(f"{c:>40s}" for c in cells), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print("chosen on half A:", chosen)


if __name__ == "__main__":
    main()
