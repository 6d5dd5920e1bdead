"""Replay evidence selection and the answer gate over every SQuAD question, without re-running the models.

    python benchmarks/evidence_replay.py collect --home /tmp/bs/home-evalqa --out /tmp/sq16.jsonl
    python benchmarks/evidence_replay.py analyse /tmp/sq16.jsonl [--recompute]

`collect` opens the index `ragcli eval qa` built for ../shared/eval/squad-v2-part under `--home` (run
`ragcli eval qa` once with that RAGCLI_HOME), retrieves and compresses as `ask` does, and writes for each
question its 16 best sentences by lexical coverage with every signal the shipped `EvidenceScorer` computes
(cross-encoder relevance included) and whether each holds a gold answer. `analyse` then replays the gate
and the composed answer in memory, by halves of the articles: gold in the answer, false refusals,
unanswerable refused, for shortlists of 4 to 10 sentences, and where the answerable questions lose their
gold answer. `--recompute` recomputes the cheap signals (numbers, answer type) with the working tree's
code first, which is how a change to them is measured before the end-to-end `eval qa`
(docs/benchmarks.md, "Numbers the evidence spells out").
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
SQUAD = SHARED / "eval/squad-v2-part/dev-v2.0-part.json"


def collect(args: argparse.Namespace) -> None:
    from ragcli.config import load_settings
    from ragcli.evaluation.harness import eval_settings
    from ragcli.evaluation.squad import gold_in_answer, load_squad
    from ragcli.generation.evidence import EvidenceScorer, sentence_signals
    from ragcli.query import AskOptions, QueryEngine

    settings = eval_settings(load_settings(env={"RAGCLI_HOME": args.home}), Path(args.squad), "squad")
    engine = QueryEngine(settings)
    scorer = EvidenceScorer(engine.reranker, shortlist=16)
    with open(args.out, "w", encoding="utf-8") as out:
        for done, example in enumerate(load_squad(args.squad), 1):
            items, _, _ = engine._compress(
                example.question, engine.retrieve(example.question, AskOptions()).passages
            )
            golds = [] if example.is_impossible else list(example.answers)
            rows = [
                {
                    "rank": s.item_rank,
                    "text": s.text,
                    "prev": s.previous,
                    "signals": sentence_signals(s),
                    "gold": bool(golds) and gold_in_answer(s.text, golds),
                    "gold_prev": bool(golds and s.previous) and gold_in_answer(s.previous or "", golds),
                    "leans": s.leans_on_previous,
                }
                for s in (scorer.evidence(example.question, items) if items else [])
            ]
            record = {
                "q": example.question,
                "article": example.title,
                "answerable": bool(golds),
                "sentences": rows,
            }
            out.write(json.dumps(record) + "\n")
            if done % 200 == 0:
                print(f"{done} questions", file=sys.stderr, flush=True)


def _shortlisted(row: dict[str, Any], k: int) -> list[dict[str, Any]]:
    return sorted(row["sentences"], key=lambda s: (-s["signals"]["lexical"], s["rank"]))[:k]


def _replay(row: dict[str, Any], k: int, threshold: float) -> tuple[bool, bool, int | None]:
    """(refused, gold in the composed answer, position of the first gold sentence or None)."""
    from ragcli.generation.evidence import GATE_WEIGHTS, SELECTION_WEIGHTS, linear, logistic
    from ragcli.generation.extractive import SECOND_SENTENCE_MARGIN, points_back

    ranked = sorted(_shortlisted(row, k), key=lambda s: (-linear(SELECTION_WEIGHTS, s["signals"]), s["rank"]))
    if not ranked:
        return True, False, None
    best = ranked[0]
    signals = best["signals"]
    vetoed = signals["numbers"] == 0 or signals["negation"] >= 1 or signals["opposite"] >= 1
    refused = vetoed or logistic(GATE_WEIGHTS, signals) < threshold
    margin = linear(SELECTION_WEIGHTS, signals) - SECOND_SENTENCE_MARGIN
    chosen = [best] + [s for s in ranked[1:2] if linear(SELECTION_WEIGHTS, s["signals"]) >= margin]

    def holds(s: dict[str, Any]) -> bool:
        return s["gold"] or ((points_back(s["text"]) or s["leans"]) and s["gold_prev"])

    position = next((i for i, s in enumerate(ranked) if holds(s)), None)
    return refused, not refused and any(holds(s) for s in chosen), position


def _recompute(rows: list[dict[str, Any]]) -> None:
    from ragcli.generation.evidence import _type_present, number_agreement, profile_question

    for row in rows:
        profile = profile_question(row["q"])
        for s in row["sentences"]:
            s["signals"]["numbers"], s["leans"], _ = number_agreement(profile, s["text"], s["prev"])
            s["signals"]["answer_type"] = _type_present(profile, s["text"])


def analyse(args: argparse.Namespace) -> None:
    from ragcli.generation.evidence import DEFAULT_MIN_CONFIDENCE

    rows = [json.loads(line) for line in Path(args.rows).read_text(encoding="utf-8").splitlines()]
    if args.recompute:
        _recompute(rows)
    articles = sorted({r["article"] for r in rows})
    halves = {a: "AB"[i % 2] for i, a in enumerate(articles)}
    for k in (4, 6, 8, 10):
        line = []
        for half in "AB":
            part = [r for r in rows if halves[r["article"]] == half]
            answerable = [_replay(r, k, DEFAULT_MIN_CONFIDENCE) for r in part if r["answerable"]]
            unanswerable = [_replay(r, k, DEFAULT_MIN_CONFIDENCE) for r in part if not r["answerable"]]
            line.append(
                f"{half}: gold {statistics.fmean(g for _, g, _ in answerable):.3f}"
                f" false refusals {statistics.fmean(r for r, _, _ in answerable):.3f}"
                f" unanswerable refused {statistics.fmean(r for r, _, _ in unanswerable):.3f}"
            )
        print(f"shortlist {k:2d}  " + " | ".join(line))
    where: collections.Counter[str] = collections.Counter()
    answerable_rows = [r for r in rows if r["answerable"]]
    for row in answerable_rows:
        refused, gold, position = _replay(row, 8, DEFAULT_MIN_CONFIDENCE)
        place = (
            "not shortlisted"
            if position is None
            else "first"
            if position == 0
            else "second"
            if position == 1
            else "later"
        )
        where[
            ("refused" if refused else "answered gold" if gold else "answered without")
            + f", gold sentence {place}"
        ] += 1
    print("\nanswerable questions, shortlist 8:")
    for key, count in sorted(where.items()):
        print(f"  {key:55s} {count:5d} {count / len(answerable_rows):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--home", required=True, help="the RAGCLI_HOME `ragcli eval qa` indexed the SQuAD part in")
    c.add_argument("--squad", default=str(SQUAD))
    c.add_argument("--out", required=True)
    a = sub.add_parser("analyse")
    a.add_argument("rows")
    a.add_argument(
        "--recompute", action="store_true", help="recompute numbers and answer type with this code"
    )
    args = parser.parse_args()
    if args.command == "collect" and not Path(args.squad).is_file():
        raise SystemExit(f"SQuAD part not found at {args.squad}: pass --squad")
    if args.command == "collect":
        collect(args)
    else:
        analyse(args)


if __name__ == "__main__":
    main()
