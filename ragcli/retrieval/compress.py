"""Context compression: the ranked passages, cut down to what the generator needs and to a token budget.

Steps, in order:
1. Near-duplicates go: the same chunk id twice, or a Jaccard similarity of word-trigram sets
   ≥ `dedupe_threshold` with a better-ranked passage that is kept. Neighbouring chunks of one section
   are exempt: they overlap by design and are merged instead, which loses nothing. Passages without
   text go too (not counted as duplicates).
2. Neighbouring chunks merge: same document, same section (heading and page), consecutive
   chunk_index. The overlap the chunker repeated is found (longest suffix of one that is a prefix of
   the next) and kept once. The merged item ranks where its best part ranked. Its `passage` (the
   citation) is the part that comes first in the document, because that is where its text starts;
   `CompressedContext.parts[n]` lists every passage an item holds. Chunks of different sections are
   never merged, so a citation's heading and page stay true for all of its text.
3. When everything fits the budget, nothing more is done. Otherwise, with `select_sentences`, items are
   split into sentences (ragcli.retrieval.sentences), each sentence is scored against the question
   (cosine with the embedder, in one batch, or else lexical overlap weighted by rarity), and the best
   sentences are kept while they fit, in their original order within each item. The best sentence of
   the best item is always kept (cut to the budget by tokens if it alone exceeds it); items left empty
   go. Without `select_sentences`, whole items are kept in rank order while they fit, and the best item,
   if it does not fit, keeps its leading sentences.
4. The budget holds for the sum of every item's text counted with tiktoken: estimates from per-sentence
   counts (each sentence is tokenised once) choose, and an exact count of the assembled items checks.

Kept sentences are verbatim slices of their item's text; two kept sentences are joined by the
whitespace that followed the first one in the original, so neighbours read exactly as they did.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ragcli.models import ContextItem, Passage
from ragcli.retrieval.sentences import sentence_spans
from ragcli.retrieval.stemming import stem
from ragcli.tokens import count_tokens, get_encoding

if TYPE_CHECKING:
    from ragcli.config import CompressionConfig
    from ragcli.embedding import Embedder

logger = logging.getLogger(__name__)

# A shorter suffix/prefix match between neighbouring chunks is as likely a coincidence ("… A" / "A …")
# as a real overlap; keeping a short repeat twice is the cheaper mistake than cutting words out.
MIN_OVERLAP_CHARS = 8
# Neighbouring chunks that do not overlap met at whitespace the chunker stripped; a line break keeps
# a list item or heading at the seam from running into the next sentence.
SEAM = "\n"

# Near-duplicates are compared as sets of word runs, not of words: two chunks of one document share
# most of their vocabulary without saying the same thing, but rarely many three-word runs.
SHINGLE_WORDS = 3

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves also may might must shall us s t d ll m re ve
    """.split()  # noqa: SIM905 - a word list reads best as words
)


@dataclass
class CompressedContext:
    items: list[ContextItem]
    tokens_before: int
    tokens_after: int
    dropped_duplicates: int = 0
    merged: int = 0
    sentences_dropped: int = 0
    dropped_items: int = 0
    """Items (after merging) that lost every sentence to the budget."""
    parts: dict[int, tuple[Passage, ...]] = field(default_factory=dict)
    """Citation number → the passages its text comes from, in document order (one unless merged)."""


@dataclass
class _Group:
    """Passages that became one item: their joined text, and the rank of the best of them (0 = best)."""

    parts: tuple[Passage, ...]
    rank: int
    text: str
    tokens: int


@dataclass
class _Selection:
    """Per group, in group order: the text kept ("" for none) and its exact token count."""

    texts: list[str]
    tokens: list[int]
    sentences_dropped: int


@dataclass(slots=True)
class _Unit:
    """A sentence (or structural line) of a group's text."""

    group: int
    position: int
    start: int
    end: int
    tokens: int
    separator: str  # the whitespace after it in the original, used when something follows it
    score: float = 0.0


def compress(
    question: str,
    passages: Sequence[Passage],
    config: CompressionConfig,
    embedder: Embedder | None = None,
) -> CompressedContext:
    started = time.perf_counter()
    counts = [p.token_count if p.token_count is not None else count_tokens(p.text) for p in passages]
    tokens_before = sum(counts)
    if not config.enabled:
        unchanged = [ContextItem(n, p.text, p) for n, p in enumerate(passages, 1)]
        alone: dict[int, tuple[Passage, ...]] = {item.n: (item.passage,) for item in unchanged}
        return CompressedContext(unchanged, tokens_before, tokens_before, parts=alone)

    kept, duplicates = drop_duplicates(passages, config.dedupe_threshold)
    groups = merge_neighbours(kept, dict(zip(passages, counts, strict=True)))
    merged = sum(len(g.parts) - 1 for g in groups)
    if sum(g.tokens for g in groups) <= config.budget_tokens:
        selection = _Selection([g.text for g in groups], [g.tokens for g in groups], 0)
    elif config.select_sentences:
        selection = _select_sentences(question, groups, config.budget_tokens, embedder)
    else:
        selection = _whole_items(groups, config.budget_tokens)

    items: list[ContextItem] = []
    parts: dict[int, tuple[Passage, ...]] = {}
    tokens_after = 0
    for group, text, tokens in zip(groups, selection.texts, selection.tokens, strict=True):
        if text.strip():
            n = len(items) + 1
            items.append(ContextItem(n, text, group.parts[0]))
            parts[n] = group.parts
            tokens_after += tokens
    dropped_sentences = selection.sentences_dropped
    dropped_items = len(groups) - len(items)
    logger.debug(
        "compressed %d passages (%d tokens) to %d items (%d tokens) in %.1f ms: "
        "%d duplicates, %d merged, %d sentences dropped",
        len(passages),
        tokens_before,
        len(items),
        tokens_after,
        (time.perf_counter() - started) * 1000,
        duplicates,
        merged,
        dropped_sentences,
    )
    return CompressedContext(
        items, tokens_before, tokens_after, duplicates, merged, dropped_sentences, dropped_items, parts
    )


# ----- 1. duplicates --------------------------------------------------------------------------------
def drop_duplicates(passages: Sequence[Passage], threshold: float) -> tuple[list[Passage], int]:
    """The passages that are not near-duplicates of a better-ranked kept one, and how many went.

    Passages without text are left out first (and not counted): they are nothing to duplicate.
    """
    passages = [p for p in passages if p.text.strip()]
    kept: list[Passage] = []
    kept_shingles: list[frozenset[int]] = []
    seen_ids: set[str] = set()
    for passage in passages:
        if passage.chunk_id in seen_ids:
            continue
        shingles = word_shingles(passage.text)
        if any(
            _similar(shingles, other_shingles, threshold) and not _neighbours(passage, other)
            for other, other_shingles in zip(kept, kept_shingles, strict=True)
        ):
            continue
        seen_ids.add(passage.chunk_id)
        kept.append(passage)
        kept_shingles.append(shingles)
    return kept, len(passages) - len(kept)


def word_shingles(text: str) -> frozenset[int]:
    """Hashes of the runs of three consecutive words, lowercased (of all the words, for a short text)."""
    # Words as split at whitespace, punctuation attached: cheap, and near-duplicates share it anyway.
    words = text.lower().split()
    if len(words) < SHINGLE_WORDS:
        return frozenset([hash(tuple(words))]) if words else frozenset()
    return frozenset(map(hash, zip(words, words[1:], words[2:], strict=False)))


def _similar(a: frozenset[int], b: frozenset[int], threshold: float) -> bool:
    small, large = sorted((len(a), len(b)))
    if large and small / large < threshold:  # Jaccard is at most small/large: no need to intersect
        return False
    return jaccard(a, b) >= threshold


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def _section(passage: Passage) -> tuple[str, str | None, int | None]:
    return passage.doc_id, passage.heading, passage.page


def _neighbours(a: Passage, b: Passage) -> bool:
    return _section(a) == _section(b) and abs(a.chunk_index - b.chunk_index) == 1


# ----- 2. merging -----------------------------------------------------------------------------------
def merge_neighbours(
    passages: Sequence[Passage], token_counts: dict[Passage, int] | None = None
) -> list[_Group]:
    """Runs of consecutive chunks of one section become one group; groups come best rank first."""
    by_position: dict[tuple[tuple[str, str | None, int | None], int], int] = {}
    for rank, passage in enumerate(passages):
        by_position.setdefault((_section(passage), passage.chunk_index), rank)
    taken: set[int] = set()
    groups: list[_Group] = []
    for rank, passage in enumerate(passages):
        if rank in taken:
            continue
        members = _run_around(passage, rank, by_position, taken)
        taken.update(members)
        parts = tuple(passages[r] for r in sorted(members, key=lambda r: passages[r].chunk_index))
        if len(parts) == 1:
            count = (token_counts or {}).get(passage)
            text = passage.text
            tokens = count if count is not None else count_tokens(text)
        else:
            text = parts[0].text
            for part in parts[1:]:
                text = join_overlapping(text, part.text)
            tokens = count_tokens(text)
        groups.append(_Group(parts, rank, text, tokens))
    return groups


def _run_around(
    passage: Passage,
    rank: int,
    by_position: dict[tuple[tuple[str, str | None, int | None], int], int],
    taken: set[int],
) -> set[int]:
    members = {rank}
    section = _section(passage)
    for step in (-1, 1):
        index = passage.chunk_index + step
        while (other := by_position.get((section, index))) is not None and other not in taken:
            members.add(other)
            index += step
    return members


def join_overlapping(first: str, second: str) -> str:
    """`first` then `second`, with the longest suffix of `first` that begins `second` written once."""
    overlap = overlap_length(first, second)
    if overlap:
        return first + second[overlap:]
    if not first or not second:
        return first or second
    return first + SEAM + second


def overlap_length(first: str, second: str) -> int:
    """Length of the longest suffix of `first` that is a prefix of `second` (0 below MIN_OVERLAP_CHARS)."""
    if not first or not second:
        return 0
    position = first.find(second[0], max(0, len(first) - len(second)))
    # Positions ascend, so the first match is the longest; every later one is shorter still. Each try
    # compares in C, which is fast for prose; repetitive text ("=====") would make many tries, each long.
    for _ in range(_DIRECT_TRIES):
        if position == -1 or len(first) - position < MIN_OVERLAP_CHARS:
            return 0
        if second.startswith(first[position:]):
            return len(first) - position
        position = first.find(second[0], position + 1)
    longest = _border_length(second, first[-len(second) :])
    return longest if longest >= MIN_OVERLAP_CHARS else 0


_DIRECT_TRIES = 64


def _border_length(prefix_source: str, suffix_source: str) -> int:
    """Longest suffix of `suffix_source` that is a prefix of `prefix_source`, in linear time (KMP)."""
    pattern = prefix_source[: len(suffix_source)]
    failure = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = failure[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        failure[i] = k
    k = 0
    for char in suffix_source:
        while k and (k == len(pattern) or char != pattern[k]):
            k = failure[k - 1]
        if k < len(pattern) and char == pattern[k]:
            k += 1
    return k


# ----- 3 and 4. selection within the budget ---------------------------------------------------------
def _select_sentences(
    question: str, groups: list[_Group], budget: int, embedder: Embedder | None
) -> _Selection:
    units = _units(groups)
    if not units:
        return _Selection(["" for _ in groups], [0 for _ in groups], 0)
    _score(question, groups, units, embedder)
    anchor = min((u for u in units if u.group == units[0].group), key=_preference)
    if anchor.tokens > budget:
        selection = _Selection(["" for _ in groups], [0 for _ in groups], len(units) - 1)
        text = truncate_to_tokens(_unit_text(groups, anchor), budget)
        selection.texts[anchor.group], selection.tokens[anchor.group] = text, count_tokens(text)
        return selection
    chosen = _greedy(units, anchor, budget)
    texts, counts = _fit_exactly(groups, chosen, anchor, budget)
    return _Selection(texts, counts, len(units) - sum(len(c) for c in chosen.values()))


def _units(groups: list[_Group]) -> list[_Unit]:
    units: list[_Unit] = []
    for g, group in enumerate(groups):
        spans = sentence_spans(group.text)
        for position, (start, end) in enumerate(spans):
            following = spans[position + 1][0] if position + 1 < len(spans) else end
            units.append(
                _Unit(g, position, start, end, count_tokens(group.text[start:end]), group.text[end:following])
            )
    return units


def _unit_text(groups: list[_Group], unit: _Unit) -> str:
    return groups[unit.group].text[unit.start : unit.end]


def _preference(unit: _Unit) -> tuple[float, int, int]:
    """Sort key: higher score first, then the better-ranked item, then earlier in the item."""
    return (-unit.score, unit.group, unit.position)


def _score(question: str, groups: list[_Group], units: list[_Unit], embedder: Embedder | None) -> None:
    texts = [_unit_text(groups, u) for u in units]
    if embedder is not None:
        try:
            vectors = embedder.embed_documents(texts)
            scores = vectors @ embedder.embed_query(question)
        except Exception as exc:  # scoring only chooses sentences; words can choose them as well
            logger.warning("Sentence embedding failed (%s); scoring sentences by shared words", exc)
        else:
            for unit, score in zip(units, scores.tolist(), strict=True):
                unit.score = float(score)
            return
    for unit, score in zip(units, lexical_scores(question, texts), strict=True):
        unit.score = score


def lexical_scores(question: str, texts: Sequence[str]) -> list[float]:
    """Sum, over the question's content words a text contains, of log(1 + N / texts containing it)."""
    wanted = content_terms(question)
    if not wanted:
        return [0.0 for _ in texts]
    found = [{stem(w) for w in set(_WORD.findall(text.lower()))} & wanted for text in texts]
    frequency = Counter(term for terms in found for term in terms)
    weight = {term: math.log(1 + len(texts) / count) for term, count in frequency.items()}
    # fsum rounds exactly, so the set's (hash-seeded) order cannot change a score or break a tie.
    return [math.fsum(weight[t] for t in terms) for terms in found]


def content_terms(text: str) -> set[str]:
    return {stem(w) for w in set(_WORD.findall(text.lower())) - _STOPWORDS}


def _separator_tokens(separator: str) -> int:
    # A single space fuses with the next word (" word" is one token, like "word"); other whitespace
    # usually becomes a token of its own. The exact count afterwards corrects any miss.
    return 0 if separator in ("", " ") else 1


def _greedy(units: list[_Unit], anchor: _Unit, budget: int) -> dict[int, list[_Unit]]:
    """Units chosen best first while the estimate fits, the anchor first of all; per group."""
    chosen: dict[int, list[_Unit]] = {anchor.group: [anchor]}
    used = anchor.tokens
    for unit in sorted(units, key=_preference):
        if unit is anchor:
            continue
        cost = unit.tokens + (_separator_tokens(unit.separator) if unit.group in chosen else 0)
        if used + cost <= budget:
            chosen.setdefault(unit.group, []).append(unit)
            used += cost
    return chosen


def _fit_exactly(
    groups: list[_Group], chosen: dict[int, list[_Unit]], anchor: _Unit, budget: int
) -> tuple[list[str], list[int]]:
    """Assemble each group's text; while the exact total is over budget, drop the weakest chosen unit."""
    texts = ["" for _ in groups]
    counts = [0 for _ in groups]
    for g, members in chosen.items():
        members.sort(key=lambda u: u.position)
        texts[g] = _assemble(groups[g].text, members)
        counts[g] = count_tokens(texts[g])
    while sum(counts) > budget:
        candidates = [u for members in chosen.values() for u in members if u is not anchor]
        if not candidates:  # the anchor alone fits (checked before), so this cannot happen
            break
        weakest = max(candidates, key=_preference)
        members = chosen[weakest.group]
        members.remove(weakest)
        texts[weakest.group] = _assemble(groups[weakest.group].text, members)
        counts[weakest.group] = count_tokens(texts[weakest.group])
    return texts, counts


def _assemble(text: str, members: list[_Unit]) -> str:
    pieces: list[str] = []
    for i, unit in enumerate(members):
        if i:
            pieces.append(members[i - 1].separator)
        pieces.append(text[unit.start : unit.end])
    return "".join(pieces)


def _whole_items(groups: list[_Group], budget: int) -> _Selection:
    """Whole items in rank order while they fit; the best item, if too big, keeps its leading sentences."""
    selection = _Selection(["" for _ in groups], [0 for _ in groups], 0)
    used = 0
    for g, group in enumerate(groups):
        if not group.text.strip():
            continue
        if used + group.tokens <= budget:
            selection.texts[g], selection.tokens[g] = group.text, group.tokens
        elif not used:  # the best item with any text
            text, selection.sentences_dropped = _leading_sentences(group.text, budget)
            selection.texts[g], selection.tokens[g] = text, count_tokens(text)
        used += selection.tokens[g]
    return selection


def _leading_sentences(text: str, budget: int) -> tuple[str, int]:
    """The longest run of leading sentences of `text` within budget (at least the first, cut if need be)."""
    spans = sentence_spans(text)
    if not spans:
        return "", 0
    start = spans[0][0]
    # Tokens grow with the prefix, so the longest prefix that fits is found by bisection.
    low, high = 0, len(spans)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[start : spans[middle - 1][1]]) <= budget:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return truncate_to_tokens(text[start : spans[0][1]], budget), len(spans) - 1
    return text[start : spans[low - 1][1]], len(spans) - low


def truncate_to_tokens(text: str, budget: int) -> str:
    """The longest prefix of `text` (ending on a character boundary) that is at most `budget` tokens."""
    encoding = get_encoding()
    tokens = encoding.encode(text, disallowed_special=())
    for keep in range(min(budget, len(tokens)), 0, -1):
        # A prefix of the tokens is a prefix of the UTF-8 bytes; a character cut in half is left out.
        prefix_chars = len(encoding.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore"))
        candidate = text[:prefix_chars].rstrip()
        if count_tokens(candidate) <= budget:
            return candidate
    return ""
