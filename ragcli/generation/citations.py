"""Citations in answers: `[1]`, `[1, 3]`, `[2-4]`, `[1][2]`; checked against the numbered context.

An LLM may cite a document it was never given (`[7]` with five documents) or cite nothing; the first is
removed from the answer, the second leaves `cited=[]` for the caller to judge. A refusal, however the
model words it, becomes exactly `REFUSAL`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragcli.models import REFUSAL, ContextItem, Generation

logger = logging.getLogger(__name__)

# One bracket group of numbers separated by commas or semicolons, each a number or a range.
# Up to three digits: "[2020]" is a year, not the citation of document 2020.
_GROUP = re.compile(r"\[\s*(\d{1,3}(?:\s*[-–]\s*\d{1,3})?(?:\s*[,;]\s*\d{1,3}(?:\s*[-–]\s*\d{1,3})?)*)\s*\]")
_MAX_RANGE = 50  # "[1-9999]" is noise, not a citation of 9999 documents

_REFUSAL_PATTERNS = [
    re.compile(pattern)
    for pattern in (
        r"\b(documents?|context|sources?|passages?|texts?) (provided |given )?(do|does) not (contain|include|mention|say|provide|state)",
        r"\bnot (contained|mentioned|stated|found|provided|specified) in the (documents?|context|sources?|passages?)",
        r"\b(no|not enough) (information|mention|answer) (about|on|regarding|in|to)\b",
        r"\b(cannot|can't|can not|unable to) (answer|determine) (this|that|the|your) question",
        r"\b(cannot|can't|can not) be (answered|determined) (from|with|by|based on|using|given)",
        r"\bi (do not|don't) know\b",
    )
]
# A long answer that mentions a gap somewhere ("the documents do not say when, but …") is still an answer.
_REFUSAL_MAX_WORDS = 30


@dataclass(frozen=True)
class CitationCheck:
    valid: list[int]
    invalid: list[int]


@dataclass(frozen=True)
class CitedSource:
    n: int
    source: str
    title: str
    heading: str | None
    page: int | None
    chunk_id: str

    def label(self) -> str:
        if self.page is not None:
            return f"{self.source}, page {self.page}"
        if self.heading:
            return f"{self.source} § {self.heading}"
        return self.source


def parse_citations(answer: str) -> list[int]:
    """Every cited number in order of first appearance, without repeats."""
    numbers: list[int] = []
    for match in _GROUP.finditer(answer):
        for n in _group_numbers(match.group(1)):
            if n not in numbers:
                numbers.append(n)
    return numbers


def check_citations(answer: str, context_numbers: Iterable[int]) -> CitationCheck:
    allowed = set(context_numbers)
    cited = parse_citations(answer)
    return CitationCheck(
        valid=[n for n in cited if n in allowed], invalid=[n for n in cited if n not in allowed]
    )


def strip_invalid_citations(answer: str, context_numbers: Iterable[int]) -> str:
    """The answer with citations of numbers outside the context removed; a group keeps its valid numbers."""
    allowed = set(context_numbers)

    def rewrite(match: re.Match[str]) -> str:
        kept = [n for n in _group_numbers(match.group(1)) if n in allowed]
        return "[" + ", ".join(str(n) for n in kept) + "]" if kept else ""

    cleaned = _GROUP.sub(rewrite, answer)
    # Removing "[9]" from "claim [9]." leaves "claim ."; close the gap it left.
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned).strip()


def cited_sources(cited: Iterable[int], context: Sequence[ContextItem]) -> list[CitedSource]:
    """Where each cited number points: source, page or heading, chunk id; unknown numbers are skipped."""
    by_number = {item.n: item for item in context}
    sources = []
    for n in cited:
        item = by_number.get(n)
        if item is None:
            continue
        p = item.passage
        sources.append(CitedSource(n, p.source, p.title, p.heading, p.page, p.chunk_id))
    return sources


def is_refusal(answer: str) -> bool:
    """True when the answer is the refusal sentence or, in a short uncited answer, says the same in
    other words. An answer that cites a document is an answer, whatever else it says."""
    text = _normalise(_GROUP.sub(" ", answer))
    if not text:
        return False
    refusal = _normalise(REFUSAL)
    if text.startswith(refusal):
        return True
    if parse_citations(answer) or len(text.split()) > _REFUSAL_MAX_WORDS:
        return False
    return any(pattern.search(text) for pattern in _REFUSAL_PATTERNS)


def finish_llm_answer(
    answer: str, context: Sequence[ContextItem], *, tokens_in: int, tokens_out: int, model: str
) -> Generation:
    """Turn an LLM's raw answer into a `Generation`: refusal detected, invalid citations removed.

    An answer without a single valid citation is kept as written with `cited=[]`: whether to show it,
    flag it or fall back to extractive is the caller's decision.
    """
    text = answer.strip()
    if is_refusal(text):
        return Generation(REFUSAL, [], True, tokens_in, tokens_out, model)
    numbers = [item.n for item in context]
    check = check_citations(text, numbers)
    if check.invalid:
        logger.warning("answer cites %s, which are not in the context; removed", check.invalid)
        text = strip_invalid_citations(text, numbers)
    if not check.valid:
        logger.info("answer has no valid citation")
    return Generation(text, check.valid, False, tokens_in, tokens_out, model)


def _group_numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"[,;]", group):
        bounds = [int(b) for b in re.split(r"[-–]", part) if b.strip()]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= _MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds[:1])
    return numbers


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower().replace("’", "'")).split())
