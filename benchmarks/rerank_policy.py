"""Which way of using the cross-encoder pays on SciFact: a study over cached scores.

    .venv/bin/python benchmarks/rerank_policy.py --home /tmp/evalhome --limit 809 [--top-n 20]
    .venv/bin/python benchmarks/rerank_policy.py --home /tmp/evalhome --analyse-only

Step 1 (slow, cached in benchmarks/out/rerank_policy_scores.json): for each judged train query, the
hybrid ranking of the real pipeline (the eval index that `ragcli eval retrieval` builds under
<home>/eval/) and the bundled cross-encoder's score of its top N chunks, with the reranker's time.

Step 2 (instant): nDCG@10 (ir-measures, as `ragcli eval`) of policies computed from the same scores:
- fused:       the hybrid order, no rerank;
- ce@n:        the top n reordered by the cross-encoder alone (what `rerank.blend = 0` does);
- blend(w)@n:  the top n reordered by w/(60+fused rank) + (1-w)/(60+cross-encoder rank), a reciprocal
               rank fusion of the two orders;
- scores(w)@n: the top n reordered by w · position (1 first .. 0 last) + (1-w) · min-max scaled
               cross-encoder score — `rerank.blend = w`, replayed through
               ragcli.retrieval.fusion.blend_rankings itself.
Queries are split in two halves; a policy is chosen on the first and checked on the second, so the
figure quoted is not tuned on itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path("/work/shared/eval/scifact")
OUT = Path(__file__).parent / "out" / "rerank_policy_scores.json"
RRF_K = 60


def collect(home: Path, data: Path, limit: int, top_n: int, max_tokens: int) -> dict[str, Any]:
    from ragcli.config import load_settings
    from ragcli.evaluation.beir import corpus_id_for_source, load_beir
    from ragcli.evaluation.harness import eval_settings
    from ragcli.query import AskOptions, QueryEngine

    settings = load_settings(flags={"home": str(home), "rerank.max_tokens": max_tokens})
    own = eval_settings(settings, data, "beir")
    dataset = load_beir(data, "train")
    engine = QueryEngine(own)
    judged = [q for q in dataset.qrels if q in dataset.queries][:limit]
    rows: dict[str, Any] = {}
    for done, qid in enumerate(judged, 1):
        question = dataset.queries[qid]
        passages = engine.retrieve(question, AskOptions(k=200, mode="hybrid", rerank=False)).passages
        started = time.perf_counter()
        scores = engine.reranker.score(question, [p.text for p in passages[:top_n]])
        rows[qid] = {
            "docs": [corpus_id_for_source(p.source) for p in passages],
            "ce": scores,
            "ce_ms": (time.perf_counter() - started) * 1000,
        }
        if done % 25 == 0:
            print(f"{done}/{len(judged)}", flush=True)
    return {"top_n": top_n, "max_tokens": max_tokens, "queries": rows}


def reorder(docs: Sequence[str], ce: Sequence[float], n: int, weight: float) -> list[str]:
    """The top n by a weighted RRF of fused rank and cross-encoder rank (weight 0 = cross-encoder only)."""
    head = list(range(min(n, len(ce))))
    by_ce = sorted(head, key=lambda i: -ce[i])
    ce_rank = {i: r for r, i in enumerate(by_ce, 1)}
    score = {i: weight / (RRF_K + i + 1) + (1 - weight) / (RRF_K + ce_rank[i]) for i in head}
    ordered = sorted(head, key=lambda i: (-score[i], i))
    return [docs[i] for i in ordered] + list(docs[len(head) :])


def score_blend(docs: Sequence[str], ce: Sequence[float], n: int, alpha: float) -> list[str]:
    """The top n reordered by the shipped function itself, so the study measures what ragcli runs."""
    from ragcli.models import Passage
    from ragcli.retrieval.fusion import blend_rankings

    head = min(n, len(ce))
    passages = [Passage(str(i), docs[i], docs[i], "", None, None, 0, "", 0.0) for i in range(head)]
    ordered = blend_rankings(passages, list(ce[:head]), alpha)
    return [p.doc_id for p in ordered] + list(docs[head:])


def ndcg(qrels: dict[str, dict[str, int]], runs: dict[str, list[str]]) -> dict[str, float]:
    from ragcli.evaluation.runner import dedupe_ranked, score_rankings

    per_query = score_rankings(
        {q: qrels[q] for q in runs}, {q: dedupe_ranked(r)[:100] for q, r in runs.items()}
    )
    return {q: v["ndcg@10"] for q, v in per_query.items()}


def analyse(cached: dict[str, Any], data: Path) -> None:
    from ragcli.evaluation.beir import load_qrels

    qrels = load_qrels(data, "train")
    rows = cached["queries"]
    qids = list(rows)
    halves = {"A": qids[: len(qids) // 2], "B": qids[len(qids) // 2 :], "all": qids}
    policies: dict[str, tuple[Any, int, float]] = {"fused": (reorder, 0, 1.0)}
    for n in (5, 10, 20):
        if n > cached["top_n"]:
            continue
        policies[f"ce@{n}"] = (reorder, n, 0.0)
        for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
            policies[f"blend({weight})@{n}"] = (reorder, n, weight)
        for alpha in (0.3, 0.5, 0.7):
            policies[f"scores({alpha})@{n}"] = (score_blend, n, alpha)
    table: dict[str, dict[str, float]] = {}
    per_policy: dict[str, dict[str, float]] = {}
    for name, (policy, n, weight) in policies.items():
        runs = {q: policy(rows[q]["docs"], rows[q]["ce"], n, weight) for q in qids}
        per_query = per_policy[name] = ndcg(qrels, runs)
        table[name] = {half: statistics.fmean(per_query[q] for q in ids) for half, ids in halves.items()}
    print(f"{len(qids)} queries, cross-encoder max_tokens {cached['max_tokens']}")
    print(f"{'policy':18} {'A':>7} {'B':>7} {'all':>7}")
    for name, scores in table.items():
        print(f"{name:18} {scores['A']:7.4f} {scores['B']:7.4f} {scores['all']:7.4f}")
    best_on_a = max((n for n in table if n != "fused"), key=lambda n: table[n]["A"])
    print(f"best on half A: {best_on_a}; on half B it scores {table[best_on_a]['B']:.4f} "
          f"against fused {table['fused']['B']:.4f}")
    for name in (best_on_a, "blend(0.5)@5", "blend(0.6)@20"):
        if name in per_policy:
            low, high, wins, losses = paired(per_policy[name], per_policy["fused"])
            print(f"{name} - fused: 95% bootstrap interval [{low:+.4f}, {high:+.4f}], "
                  f"{wins} queries better, {losses} worse")
    ce_ms = [r["ce_ms"] for r in rows.values()]
    print(f"cross-encoder ms per query for top {cached['top_n']}: p50 {statistics.median(ce_ms):.0f}")


def paired(ours: dict[str, float], base: dict[str, float], rounds: int = 2000) -> tuple[float, float, int, int]:
    """95% bootstrap interval of the mean per-query difference, and the queries won and lost."""
    import random

    diffs = [ours[q] - base[q] for q in base]
    rng = random.Random(7)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(rounds))
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    return means[int(0.025 * rounds)], means[int(0.975 * rounds)], wins, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("/tmp/evalhome"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--top-n", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--analyse-only", action="store_true")
    args = parser.parse_args()
    if not args.analyse_only:
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(collect(args.home, args.data, args.limit, args.top_n, args.max_tokens)))
    analyse(json.loads(OUT.read_text()), args.data)


if __name__ == "__main__":
    main()
