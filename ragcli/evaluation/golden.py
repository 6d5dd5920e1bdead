"""Golden sets: a user's own questions with the files that should answer them, as JSONL.

One JSON object per line:

    {"question": "How do I rotate the API key?",
     "expected_sources": ["docs/security.md", "runbooks/**/keys*.md"],
     "expected_answer": "ragcli keys rotate"}

expected_sources are paths or globs, relative to the golden file's folder or absolute; a folder (or a
path ending in "/") stands for every file under it. `*` and `?` stay within one path segment, `**`
spans any number of them. expected_answer is optional. Other keys (an "id", notes) are allowed and
ignored. Sources are compared as resolved absolute paths, which is how the index records them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli.errors import UsageError
from ragcli.evaluation.runner import ProgressFn, dedupe_ranked, latency_summary
from ragcli.evaluation.squad import normalize_answer

logger = logging.getLogger(__name__)

SourceRetrieveFn = Callable[[str, int], Sequence[str]]
"""(question, k) -> source paths of the retrieved chunks, best first; duplicates are fine."""
AnswerFn = Callable[[str], str]
"""question -> the generated answer."""

GOLDEN_FORMAT_HINT = (
    'Each line is a JSON object: {"question": "...", "expected_sources": ["path or glob", ...], '
    '"expected_answer": "..." (optional)}.'
)
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourcePattern:
    """One expected source, made absolute: an exact file, a folder prefix, or a glob."""

    written: str
    kind: str  # "file", "folder" or "glob"
    target: str
    regex: re.Pattern[str] | None = None

    def matches(self, source: str) -> bool:
        if self.kind == "file":
            return source == self.target
        if self.kind == "folder":
            return source.startswith(self.target.rstrip(os.sep) + os.sep)
        assert self.regex is not None
        return self.regex.fullmatch(source) is not None


@dataclass(frozen=True)
class GoldenItem:
    line: int
    question: str
    expected_sources: tuple[SourcePattern, ...]
    expected_answer: str | None = None

    def first_hit_rank(self, sources: Sequence[str]) -> int | None:
        """1-based rank of the first source matching an expected one, or None."""
        for rank, source in enumerate(sources, start=1):
            if any(pattern.matches(source) for pattern in self.expected_sources):
                return rank
        return None


# ----- loading ------------------------------------------------------------------------------------
def load_golden(path: str | Path) -> list[GoldenItem]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"{file} does not exist or is not a file.", hint=GOLDEN_FORMAT_HINT)
    base = file.resolve().parent
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{file} is not UTF-8 text ({exc.reason}).") from None
    items = [
        _parse_line(line, line_no, file, base) for line_no, line in enumerate(lines, start=1) if line.strip()
    ]
    if not items:
        raise UsageError(f"{file} holds no questions.", hint=GOLDEN_FORMAT_HINT)
    return items


def _parse_line(line: str, line_no: int, file: Path, base: Path) -> GoldenItem:
    where = f"{file} line {line_no}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc.msg}).", hint=GOLDEN_FORMAT_HINT) from None
    if not isinstance(record, dict):
        raise UsageError(f"{where}: expected a JSON object.", hint=GOLDEN_FORMAT_HINT)
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise UsageError(f'{where}: "question" must be a non-empty string.', hint=GOLDEN_FORMAT_HINT)
    return GoldenItem(
        line=line_no,
        question=question.strip(),
        expected_sources=tuple(source_pattern(written, base) for written in _sources(record, where)),
        expected_answer=_expected_answer(record, where),
    )


def _sources(record: dict[str, Any], where: str) -> list[str]:
    sources = record.get("expected_sources")
    if isinstance(sources, str):
        sources = [sources]
    if (
        not isinstance(sources, list)
        or not sources
        or not all(isinstance(source, str) and source.strip() for source in sources)
    ):
        raise UsageError(
            f'{where}: "expected_sources" must be a non-empty list of paths or globs.',
            hint=GOLDEN_FORMAT_HINT,
        )
    return [source.strip() for source in sources]


def _expected_answer(record: dict[str, Any], where: str) -> str | None:
    answer = record.get("expected_answer")
    if answer is None:
        return None
    if not isinstance(answer, str) or not normalize_answer(answer):
        raise UsageError(
            f'{where}: "expected_answer" must be a string with words in it (or be left out).',
            hint=GOLDEN_FORMAT_HINT,
        )
    return answer


def source_pattern(written: str, base: Path) -> SourcePattern:
    """`written` (as in the golden file) made absolute against `base`, symlinks resolved."""
    raw = Path(written).expanduser()
    absolute = Path(os.path.normpath(raw if raw.is_absolute() else base / raw))
    if _GLOB_CHARS.search(str(absolute)):
        literal, rest = _split_literal_prefix(absolute)
        target = str(literal.resolve().joinpath(*rest))
        return SourcePattern(written, "glob", target, re.compile(glob_to_regex(target)))
    resolved = absolute.resolve()
    kind = "folder" if written.endswith(("/", os.sep)) or resolved.is_dir() else "file"
    return SourcePattern(written, kind, str(resolved))


def _split_literal_prefix(path: Path) -> tuple[Path, tuple[str, ...]]:
    """(/a/b, ("c*", "d.md")) for /a/b/c*/d.md: only the part without glob characters can be resolved."""
    parts = path.parts
    first_glob = next(index for index, part in enumerate(parts) if _GLOB_CHARS.search(part))
    return Path(*parts[:first_glob]), parts[first_glob:]


def glob_to_regex(pattern: str) -> str:
    """A regex for a path glob: `*`/`?` within one segment, `**` across segments, [...] classes."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif char == "*":
            out.append("[^/]*")
            index += 1
        elif char == "?":
            out.append("[^/]")
            index += 1
        elif char == "[" and (close := _class_end(pattern, index)) is not None:
            body = pattern[index + 1 : close]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            index = close + 1
        else:
            out.append(re.escape(char))
            index += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int | None:
    # "]" right after "[" or "[!" is part of the class, as in fnmatch.
    index = start + 1
    if index < len(pattern) and pattern[index] == "!":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    close = pattern.find("]", index)
    return None if close == -1 else close


# ----- scoring ------------------------------------------------------------------------------------
def score_golden(
    items: Sequence[GoldenItem],
    retrieve: SourceRetrieveFn,
    k: int = 10,
    answer: AnswerFn | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """How well `retrieve` (and `answer`, when given) does on the golden items.

    recall        share of items with at least one expected source in the top k distinct sources
    mrr           mean of 1/rank of the first expected source in the top k (0 when none is)
    answer_containment  share of the items with an expected_answer whose generated answer contains it
                  (SQuAD-normalised, whole words); None without `answer` or without such items
    plus k, items, p50_ms/p95_ms/mean_ms/max_ms of the retrieve calls, and per_item details.
    """
    if k < 1:
        raise UsageError(f"k must be at least 1, not {k}.")
    if not items:
        raise UsageError("There are no golden questions to score.")
    per_item = []
    latencies_ms = []
    for done, item in enumerate(items, start=1):
        started = time.perf_counter()
        retrieved = retrieve(item.question, k)
        latencies_ms.append((time.perf_counter() - started) * 1000.0)
        top = dedupe_ranked(_absolute(source) for source in retrieved)[:k]
        per_item.append(_item_result(item, top, answer))
        if progress is not None:
            progress(done, len(items))
    with_answers = [row["answer_contained"] for row in per_item if row["answer_contained"] is not None]
    result: dict[str, Any] = {
        "recall": statistics.fmean(float(row["hit"]) for row in per_item),
        "mrr": statistics.fmean(row["reciprocal_rank"] for row in per_item),
        "answer_containment": statistics.fmean(float(hit) for hit in with_answers) if with_answers else None,
        "k": k,
        "items": len(per_item),
        "answered_items": len(with_answers),
    }
    result.update(latency_summary(latencies_ms))
    result["per_item"] = per_item
    return result


def _item_result(item: GoldenItem, top: list[str], answer: AnswerFn | None) -> dict[str, Any]:
    rank = item.first_hit_rank(top)
    generated = answer(item.question) if answer is not None and item.expected_answer is not None else None
    return {
        "line": item.line,
        "question": item.question,
        "hit": rank is not None,
        "rank": rank,
        "reciprocal_rank": 1.0 / rank if rank is not None else 0.0,
        "retrieved": top,
        "expected_sources": [pattern.written for pattern in item.expected_sources],
        "answer": generated,
        "answer_contained": None
        if generated is None or item.expected_answer is None
        else answer_contains(generated, item.expected_answer),
    }


def answer_contains(answer: str, expected: str) -> bool:
    """Whether `expected` appears in `answer` as whole words, after SQuAD normalisation."""
    return f" {normalize_answer(expected)} " in f" {normalize_answer(answer)} "


def _absolute(source: str) -> str:
    return str(Path(source).expanduser().resolve())


def check_thresholds(
    result: dict[str, Any], min_recall: float | None = None, min_mrr: float | None = None
) -> list[str]:
    """One message per threshold the result falls below; empty when all are met."""
    breaches = []
    for name, label, minimum in (
        ("recall", f"recall@{result.get('k')}", min_recall),
        ("mrr", "MRR", min_mrr),
    ):
        if minimum is None:
            continue
        if not 0.0 <= minimum <= 1.0:
            raise UsageError(f"The minimum {label} must be between 0 and 1, not {minimum}.")
        value = result[name]
        if value < minimum:
            breaches.append(f"{label} {value:.3f} is below the minimum {minimum:.3f}")
    return breaches
