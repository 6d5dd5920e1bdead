"""Runs a development set from build_answer_devsets.py through the real ask pipeline and scores refusals.

    .venv/bin/python benchmarks/answer_eval.py /tmp/ragcli-devsets/rgb [--split dev] [--limit 100]
        [--provider extractive] [--mode hybrid] [--rerank/--no-rerank] [--home DIR] [--details FILE]
        [--json] [--sweep]

The set's docs/ are ingested into a RAGCLI_HOME of their own (a temporary folder, or --home to keep and
re-use the index: a second run re-embeds nothing), with the answer cache and telemetry off, and every
question goes through `ask_with_cache(use_cache=False)`, as `ragcli ask --no-cache` would run it.

A question is answerable when it has gold answers or an expected source. Reported, per kind and overall:
- refusal_rate          share of the unanswerable questions refused (higher is better)
- false_refusal_rate    share of the answerable questions refused (lower is better)
- gold_in_answer_rate   share of the answerable questions with gold answers whose answer contains one
                        (normalised as SQuAD does, on word boundaries)
- source_top3_rate      share of the questions with an expected source cited among the first 3
- refusal_by_reason     counts of `refused_reason` (or "unknown" when the result has none)
- p50_ms / p95_ms       the ask's own total
`refused` is read from the result; an answer that words a refusal (see squad.is_refusal) counts too.
`confidence` is read when the result has it; --sweep then prints the refusal / false-refusal curve a
`min_confidence` threshold would give (refused, or confidence below the threshold).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_questions(folder: Path, split: str, limit: int | None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line]
    if split != "all":
        rows = [row for row in rows if row.get("split", "dev") == split]
    if limit:  # the first `limit` of each kind, so a short run still measures every kind
        seen: Counter[str] = Counter()
        kept = []
        for row in rows:
            seen[row["kind"]] += 1
            if seen[row["kind"]] <= limit:
                kept.append(row)
        rows = kept
    return rows


def is_answerable(row: dict[str, Any]) -> bool:
    return bool(row.get("answers")) or bool(row.get("expected_source"))


def judge(row: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """One details row: what was asked, what came back, and how it scores."""
    from ragcli.evaluation.squad import gold_in_answer, is_refusal

    answer = result.get("answer") or ""
    refused = bool(result.get("refused")) or is_refusal(answer)
    sources = [Path(c.get("source") or "").name for c in result.get("citations", [])]
    expected = row.get("expected_source")
    return {
        "id": row["id"],
        "kind": row["kind"],
        "split": row.get("split"),
        "question": row["question"],
        "answerable": is_answerable(row),
        "answers": row.get("answers", []),
        "answer": answer,
        "refused": refused,
        "refused_reason": (result.get("refused_reason") or "unknown") if refused else None,
        "confidence": result.get("confidence"),
        "gold_in_answer": gold_in_answer(answer, row["answers"]) if row.get("answers") and not refused else (
            False if row.get("answers") else None
        ),
        "source_top3": (expected in sources[:3]) if expected else None,
        "top_source": sources[0] if sources else None,
        "latency_ms": result.get("timings_ms", {}).get("total"),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from ragcli.evaluation.runner import latency_summary

    def rate(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    latency = latency_summary(r["latency_ms"] for r in rows if r["latency_ms"] is not None)
    confidences = [r["confidence"] for r in rows if r["confidence"] is not None]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "refusal_rate": rate([r["refused"] for r in unanswerable]),
        "false_refusal_rate": rate([r["refused"] for r in answerable]),
        "gold_in_answer_rate": rate([r["gold_in_answer"] for r in answerable if r["gold_in_answer"] is not None]),
        "source_top3_rate": rate([r["source_top3"] for r in rows if r["source_top3"] is not None]),
        "refusal_by_reason": dict(Counter(r["refused_reason"] for r in rows if r["refused"])),
        "confidence_seen": len(confidences),
        "p50_ms": round(latency["p50_ms"], 1),
        "p95_ms": round(latency["p95_ms"], 1),
    }


def sweep(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Refusal and false-refusal rates if every answer under a confidence threshold were refused."""
    scored = [r for r in rows if r["confidence"] is not None]
    curve = []
    for step in range(21):
        threshold = step / 20
        refused = [r["refused"] or r["confidence"] < threshold for r in scored]
        unanswerable = [x for x, r in zip(refused, scored, strict=True) if not r["answerable"]]
        answerable = [x for x, r in zip(refused, scored, strict=True) if r["answerable"]]
        curve.append(
            {
                "min_confidence": threshold,
                "refusal_rate": round(sum(unanswerable) / len(unanswerable), 4) if unanswerable else None,
                "false_refusal_rate": round(sum(answerable) / len(answerable), 4) if answerable else None,
            }
        )
    return curve


def settings_for(home: Path, args: argparse.Namespace) -> Any:
    from ragcli.config import load_settings

    env = {
        "RAGCLI_HOME": str(home),
        "RAGCLI_CACHE__ENABLED": "false",
        "RAGCLI_TELEMETRY__ENABLED": "false",
    }
    flags = {"generation.provider": args.provider, "retrieval.mode": args.mode, "rerank.enabled": args.rerank}
    return load_settings(args.config, flags=flags, env=env)


def run(folder: Path, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.query import AskOptions, ask_with_cache

    settings = settings_for(home, args)
    started = time.perf_counter()
    report = Ingestor(settings).run([folder / "docs"])
    ingest_seconds = time.perf_counter() - started
    questions = load_questions(folder, args.split, args.limit)
    engine = None
    rows = []
    for done, row in enumerate(questions, 1):
        result, engine = ask_with_cache(settings, row["question"], AskOptions(), use_cache=False, engine=engine)
        rows.append(judge(row, result))
        if done % 25 == 0:
            print(f"{done}/{len(questions)} questions", file=sys.stderr)
    kinds = sorted({r["kind"] for r in rows})
    summary = {
        "set": str(folder),
        "split": args.split,
        "provider": settings.config.generation.provider,
        "mode": settings.config.retrieval.mode,
        "rerank": settings.config.rerank.enabled,
        "ingest": {"chunks_embedded": report.summary().get("chunks_embedded"), "seconds": round(ingest_seconds, 1)},
        "overall": summarise(rows),
        "by_kind": {kind: summarise([r for r in rows if r["kind"] == kind]) for kind in kinds},
    }
    if args.sweep and any(r["confidence"] is not None for r in rows):
        summary["sweep"] = sweep(rows)
    if args.details:
        with Path(args.details).open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return summary


def print_table(summary: dict[str, Any]) -> None:
    columns = ["questions", "refusal_rate", "false_refusal_rate", "gold_in_answer_rate", "source_top3_rate", "p50_ms"]
    print(f"{summary['set']} ({summary['split']}): provider {summary['provider']}, mode {summary['mode']}, "
          f"rerank {summary['rerank']}")
    print("| kind | " + " | ".join(columns) + " | refusal_by_reason |")
    print("|---" * (len(columns) + 2) + "|")
    for kind, row in [*summary["by_kind"].items(), ("all", summary["overall"])]:
        cells = ["–" if row[c] is None else str(row[c]) for c in columns]
        print(f"| {kind} | " + " | ".join(cells) + f" | {row['refusal_by_reason']} |")
    for point in summary.get("sweep", []):
        print(f"min_confidence {point['min_confidence']:.2f}: refused {point['refusal_rate']}, "
              f"false refusals {point['false_refusal_rate']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="a set folder: docs/ and questions.jsonl")
    parser.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    parser.add_argument("--limit", type=int, default=None, help="at most N questions of each kind")
    parser.add_argument("--provider", default="extractive")
    parser.add_argument("--mode", default=None)
    parser.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--config", default=None, help="a .ragcli.toml to start from")
    parser.add_argument("--home", type=Path, default=None, help="keep the index here (re-used next run)")
    parser.add_argument("--details", default=None, help="write one JSONL row per question")
    parser.add_argument("--sweep", action="store_true", help="the refusal curve over min_confidence")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = args.set.resolve()
    if not (folder / "questions.jsonl").is_file() or not (folder / "docs").is_dir():
        parser.error(f"{folder} has no questions.jsonl and docs/: run benchmarks/build_answer_devsets.py first")
    home = args.home or Path(tempfile.mkdtemp(prefix="ragcli-answer-eval-"))
    try:
        summary = run(folder, home, args)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)


if __name__ == "__main__":
    main()
