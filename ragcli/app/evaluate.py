"""`ragcli eval retrieval|qa|golden`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragcli.app.console import print_json, print_table, stderr, stdout
from ragcli.app.progress import observer_for, query_progress
from ragcli.config import Settings
from ragcli.errors import EXIT_OK


def run_eval_retrieval(
    settings: Settings,
    directory: Path,
    *,
    split: str,
    variants: Sequence[str],
    k: int,
    limit: int | None,
    json_output: bool,
    ci: bool = False,
    details: Path | None = None,
) -> int:
    from ragcli.evaluation.harness import Variant, evaluate_beir

    parsed = [Variant.parse(v) for v in variants] or [Variant.parse(settings.config.retrieval.mode)]
    with observer_for(json_output) as observer, query_progress("Queries", json_output) as progress:
        result = evaluate_beir(
            settings,
            directory,
            split=split,
            variants=parsed,
            k=k,
            limit=limit,
            progress=progress,
            observer=observer,
            ci=ci,
            details=details,
        )
    if details is not None:
        stderr.print(f"Per-query scores written to {details}")
    if json_output:
        if len(parsed) == 1:  # one variant: its metrics at the top level, as scripts expect
            only = result["variants"][parsed[0].name]
            print_json(
                {
                    **only,
                    "variant": parsed[0].name,
                    "fingerprint": result["fingerprint"],
                    "dataset": result["dataset"],
                    "split": split,
                }
            )
        else:
            print_json(result)
        return EXIT_OK
    _print_comparison(result["variants"], f"{directory} ({split} split)")
    if ci:
        _print_intervals(result["variants"], parsed[0].name)
    return EXIT_OK


def _print_intervals(variants: dict[str, dict[str, Any]], baseline: str) -> None:
    from ragcli.evaluation.runner import significant

    rows = {name: result["ci"] for name, result in variants.items() if "ci" in result}
    if not rows:
        stderr.print("--ci needs at least two variants: the first is the baseline.")
        return
    print_table(
        ["variant", "metric", "Δ vs " + baseline, "95% interval", "p", "significant"],
        [
            (
                name, metric, f"{iv['delta']:+.4f}", f"[{iv['low']:+.4f}, {iv['high']:+.4f}]",
                f"{iv['p']:.3f}", "yes" if significant(iv) else "no",
            )
            for name, intervals in rows.items()
            for metric, iv in intervals.items()
        ],
        title="Paired bootstrap (2,000 resamples of the queries)",
    )


def _print_comparison(variants: dict[str, dict[str, Any]], title: str) -> None:
    from ragcli.evaluation.runner import compare

    rows = compare(variants)
    columns = ["ndcg@10", "recall@10", "recall@100", "mrr@10", "p50_ms", "p95_ms"]
    table = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            delta = row.get(f"{column}_delta")
            text = "" if value is None else (f"{value:.1f}" if column.endswith("_ms") else f"{value:.4f}")
            if delta and not row.get("baseline"):
                text += f" ({delta:+.4f})" if not column.endswith("_ms") else f" ({delta:+.1f})"
            cells.append(text)
        table.append([str(row["variant"]), *cells, str(row.get("queries", ""))])
    print_table(["variant", *columns, "queries"], table, title=title)


def run_eval_qa(
    settings: Settings, path: Path, *, limit: int | None, json_output: bool, details: Path | None = None
) -> int:
    from ragcli.evaluation.harness import evaluate_squad

    with observer_for(json_output) as observer, query_progress("Questions", json_output) as progress:
        result = evaluate_squad(
            settings, path, limit=limit, progress=progress, observer=observer, details=details
        )
    if json_output:
        print_json(result)
        return EXIT_OK
    keys = (
        "questions",
        "answerable",
        "unanswerable",
        "em",
        "f1",
        "gold_in_answer_rate",
        "refusal_rate",
        "false_refusal_rate",
        "hit_rate",
        "p50_ms",
        "p95_ms",
    )
    reasons = result.get("refusal_by_reason") or {}
    print_table(
        ["metric", "value"],
        [(key, _metric(result.get(key))) for key in keys]
        + [("refusal_by_reason", ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "none")],
        title=f"{path} — provider {result['provider']}",
    )
    if details is not None:
        stderr.print(f"Per-question details: {details}", markup=False, highlight=False)
    return EXIT_OK


def _metric(value: Any) -> str:
    return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def run_eval_golden(
    settings: Settings,
    path: Path,
    *,
    k: int,
    min_recall: float | None,
    min_mrr: float | None,
    with_answers: bool,
    json_output: bool,
) -> int:
    from ragcli.errors import EXIT_THRESHOLD
    from ragcli.evaluation.golden import check_thresholds
    from ragcli.evaluation.harness import evaluate_golden

    with query_progress("Golden questions", json_output) as progress:
        result = evaluate_golden(settings, path, k=k, with_answers=with_answers, progress=progress)
    breaches = check_thresholds(result, min_recall=min_recall, min_mrr=min_mrr)
    result["breaches"] = breaches
    if json_output:
        print_json(result)
    else:
        print_table(
            ["question", "hit", "rank"],
            [
                (row.get("question", ""), "yes" if row["hit"] else "NO", row.get("rank") or "-")
                for row in result["per_item"]
            ],
        )
        stdout.print(
            f"recall@{k}: {result['recall']:.3f}   MRR: {result['mrr']:.3f}   items: {result['items']}"
        )
        if result.get("answer_containment") is not None:
            stdout.print(f"answer containment: {result['answer_containment']:.3f}")
        for breach in breaches:
            stderr.print(f"[red]Below threshold:[/red] {breach}", highlight=False)
    return EXIT_THRESHOLD if breaches else EXIT_OK
