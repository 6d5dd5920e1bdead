"""After generation: is each answer sentence supported by the passage it cites?

A sentence is supported when most of its content words (stemmed, stopwords left out) occur in the
passages its `[n]` markers name; its numbers must all occur there. It is a lexical check — it catches a
model citing the wrong passage or adding facts the passage does not hold, not a subtle paraphrase that
changes the meaning. Sentences without a marker and too short to state anything ("Yes.") are not judged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragcli.models import ContextItem

# Share of a sentence's content words that its cited passages must hold.
SUPPORT_THRESHOLD = 0.6
_MARKER = re.compile(r"\[(\d{1,3})\]")
_LEADING_MARKERS = re.compile(r"\s*((?:\[\d{1,3}\]\s*)+)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def verify_citations(answer: str, context: Sequence[ContextItem]) -> tuple[float | None, list[str]]:
    """(share of judged sentences that are supported, the unsupported sentences); None when none is judged."""
    from ragcli.generation.extractive import content_terms

    passages = {item.n: _as_read(item) for item in context}
    judged = 0
    unsupported: list[str] = []
    for sentence in _answer_sentences(answer):
        cited = [int(n) for n in _MARKER.findall(sentence)]
        text = _MARKER.sub("", sentence).strip()
        terms = set(content_terms(text))
        if len(terms) < 2:
            continue
        judged += 1
        source = " ".join(passages.get(n, "") for n in cited)
        if not source or not _supported(text, terms, source):
            unsupported.append(text)
    if not judged:
        return None, []
    return round((judged - len(unsupported)) / judged, 4), unsupported


def _as_read(item: ContextItem) -> str:
    """A passage with the title and heading path it is shown under: an extractive answer leads an
    unclear sentence with its heading ("Setup Guide > Wireless control — The default password is …"),
    and a model reads the heading path in its prompt."""
    passage = item.passage
    return " ".join(part for part in (passage.title, passage.heading or "", item.text) if part)


def _answer_sentences(answer: str) -> list[str]:
    from ragcli.retrieval.sentences import split_sentences

    sentences: list[str] = []
    for piece in split_sentences(answer):
        # Markers after the full stop ("… Paris. [1] Its …") belong to the sentence before them, whether
        # the splitter left them alone or at the start of the next sentence.
        lead = _LEADING_MARKERS.match(piece)
        if sentences and lead:
            sentences[-1] += " " + lead.group(1).strip()
            piece = piece[lead.end() :]
        if piece.strip():
            sentences.append(piece)
    return sentences


def _supported(text: str, terms: set[str], source: str) -> bool:
    from ragcli.generation.extractive import content_terms

    if len(terms & set(content_terms(source))) / len(terms) < SUPPORT_THRESHOLD:
        return False
    source_numbers = {n.replace(",", "") for n in _NUMBER.findall(source)}
    return all(n.replace(",", "") in source_numbers for n in _NUMBER.findall(text))
