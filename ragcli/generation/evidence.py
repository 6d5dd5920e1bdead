"""Evidence for an answer: which context sentences answer the question, and how sure we are that any does.

Every provider asks this module first (the answerability gate), so a question the documents do not
answer is refused before any generation call, and the extractive provider answers with the sentences
it ranks best.

How a sentence is judged, cheapest first:
1. Lexical coverage: the share of the question's content words it holds, weighted by rarity
   (`ragcli.generation.extractive`). Every distinct sentence of the context gets it; the best
   `shortlist` go on.
2. Relevance: the bundled cross-encoder (ms-marco MiniLM) reads question and sentence together. It is
   trained for query–passage relevance, so it tells an off-topic question from an on-topic one.
3. Constraints: relevance cannot tell "the 2018 winner" from "the 2019 winner". The numbers and years of
   the question must appear in the sentence (a century or decade as any year within it), and its names in
   the sentence's passage (or title).
4. Answer type: a "when" question wants a date, "how many" a number, "who" a name — one that is not
   already in the question. A sentence that only restates the question has none.
5. Polarity (`ragcli.generation.polarity`): a negated question ("Who never issued …?", "When did X fail
   to …?") is not answered by a sentence without a negation, nor "uncommon" by "common".

Vetoes: when the best sentence holds none of the question's numbers, or fails the polarity check, the
question is refused as `constraint_mismatch`, whatever its confidence.

`confidence` is a logistic model over these signals of the best sentence (weights and the procedure that
fitted them: docs/benchmarks.md, "Answerability gate"); a question is refused when it is below
`[answer] min_confidence`. Its meaning: on the development questions, the share of answers at that
confidence that contained the gold answer or were answerable at all rose monotonically with it; it is a
ranking score first, a calibrated probability only roughly.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ragcli.models import ContextItem

# Refusal reasons, as `refused_reason` in the ask result and the event log.
NO_RELEVANT_PASSAGE = "no_relevant_passage"
LOW_CONFIDENCE = "low_confidence"
CONSTRAINT_MISMATCH = "constraint_mismatch"
FILTERED_OUT = "filtered_out"
EMPTY_INDEX = "empty_index"
NO_PASSAGE = "no_passage"

# Sentences the cross-encoder reads per question: enough to hold the answer when it is in the context
# (see the study), few enough to stay far below the latency budget.
SHORTLIST = 8
# The cross-encoder reads the question with one sentence; a longer "sentence" is a table or code block.
MAX_SENTENCE_CHARS = 600


class Relevance(Protocol):
    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


# ----- the question -------------------------------------------------------------------------------
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(?:st|nd|rd|th|s)?(?![\w])")
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")
_CAPITALISED = re.compile(r"\b([A-Z][\w'’-]*(?:\s+(?:of|de|the|and|von|van|du|la)?\s*[A-Z][\w'’-]*)*)")
_MONTH_TEXT = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
_MONTHS = _MONTH_TEXT.split()
# Days and times of day answer "when" too: "When can I reach support?" — "Monday to Friday, 09:00-17:00".
_DAY_TEXT = (
    "monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays thursdays fridays "
    "saturdays sundays weekday weekdays weekend weekends daily nightly weekly monthly yearly annually "
    "morning mornings afternoon afternoons evening evenings night nights noon midnight dawn dusk"
)
_DATE_WORDS = re.compile(
    r"\b(?:" + "|".join(_MONTHS + _DAY_TEXT.split()) + r"|century|centuries|decade|decades|year|years|ago|"
    r"bc|bce|ad|ce|\d{1,2}(?:st|nd|rd|th)|(?:1[0-9]|20)\d0s|\d{1,2}:\d{2}|\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.))"
    r"(?!\w)",
    re.IGNORECASE,
)
_CARDINAL_TEXT = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
)
_TENS_TEXT = "thirty forty fifty sixty seventy eighty ninety"
_NUMBER_TEXT = (
    f"{_CARDINAL_TEXT} {_TENS_TEXT} hundred hundreds thousand thousands million millions billion billions half "
    "dozen dozens percent several"
)
_NUMBER_WORDS = frozenset(_NUMBER_TEXT.split())
# Words that start a question or sentence with a capital but name nothing.
_NOT_NAMES_TEXT = (
    "what which who whom whose when where why how is are was were do does did can could should would will "
    "the a an in on at of for to from by with and or but if it its this that these those there their "
    "i you he she we they my your his her our name give list according during after before since"
)
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())
# A number that names which one of a thing ("PostgreSQL 15", "Python 3.12", "Stage 3", "Apollo 11"): the
# evidence rarely repeats it ("PostgreSQL currently implements only stored generated columns" answers a
# question about PostgreSQL 15), but must not name another one ("PostgreSQL 14 added …").
_VERSIONED = re.compile(
    r"(?<![\w.])([A-Z][A-Za-z][\w+#-]*)\s+(?:v?(\d+(?:\.\d+)*)(?![\w.]*\d)|([IVXL]{1,6})\b)"
)
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50}
_POSSESSIVE = re.compile(r"['’]s$")


@dataclass(frozen=True)
class QuestionProfile:
    question: str
    terms: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]
    answer_type: str | None
    """"year", "date", "number", "name" or None (anything)."""
    versions: frozenset[tuple[str, str]] = frozenset()
    """(name, number) pairs such as ("postgresql", "15"): numbers that say which one of a named thing.
    Not in `numbers`: the evidence agrees unless it names the same thing with another number."""


def profile_question(question: str) -> QuestionProfile:
    from ragcli.generation.extractive import content_terms

    lowered = question.lower().strip()
    versions = frozenset(_versions(question))
    return QuestionProfile(
        question=question,
        terms=frozenset(content_terms(question)),
        numbers=frozenset(constraint_values(question) - {number for _, number in versions}),
        names=frozenset(_names(question)),
        answer_type=_answer_type(lowered),
        versions=versions,
    )


def _versions(text: str) -> list[tuple[str, str]]:
    """("postgresql", "15") for "PostgreSQL 15"; a year is never a version ("Olympics 2016" must match
    its year), nor a day of a month ("October 7")."""
    found = []
    for match in _VERSIONED.finditer(text):
        name, number = match.group(1).lower(), match.group(2) or _from_roman(match.group(3))
        if not number or name in _NOT_NAMES or name in _MONTHS or _YEAR.fullmatch(number):
            continue
        found.append((name, number))
    return found


def _from_roman(numeral: str) -> str | None:
    """"II" → "2", "XIV" → "14" ("World War II" is "World War 2"); None for what is not a numeral."""
    values = [_ROMAN[c] for c in numeral]
    total = sum(-v if v < after else v for v, after in zip(values, [*values[1:], 0], strict=True))
    if total <= 0 or _to_roman(total) != numeral:
        return None
    return str(total)


def _to_roman(number: int) -> str:
    out = ""
    for value, letters in ((50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        count, number = divmod(number, value)
        out += letters * count
    return out


def _names_another_version(profile: QuestionProfile, text: str) -> bool:
    """Whether `text` names a versioned thing of the question with another number ("PostgreSQL 14")."""
    return any(
        name == other_name and number != other_number
        for name, number in profile.versions
        for other_name, other_number in _versions(text)
    )


def _answer_type(q: str) -> str | None:
    if re.search(r"\b(what|which|in what|in which)\s+(year|century|decade)\b", q):
        return "year"
    if re.match(r"^(when|in what (month|period|era|time))\b", q) or re.search(
        r"\b(what|which) (date|day|month|time|period|era)\b", q
    ):
        return "date"
    if re.search(r"\bhow (many|much|long|old|far|big|large|tall|high|often|fast)\b", q) or re.search(
        r"\bwhat (percentage|percent|number|amount|proportion|fraction|size|population)\b", q
    ):
        return "number"
    if re.match(r"^(who|whom|whose)\b", q) or re.search(r"\b(who|whom|whose)\b", q):
        return "name"
    return None


_ORDINAL_TEXT = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
)
_SPELLED = {
    **{w: str(i) for i, w in enumerate(_CARDINAL_TEXT.split(), 1)},
    **{w: str(i) for i, w in enumerate(_ORDINAL_TEXT.split(), 1)},
    **{w: str(10 * i) for i, w in enumerate(_TENS_TEXT.split(), 3)},
    **{"hundred": "100", "thousand": "1000", "twice": "2", "double": "2", "both": "2", "dozen": "12"},
}
_WORDS = re.compile(r"[a-z]+")
_ORDINALS = {"first": "1", "second": "2", "third": "3", "fourth": "4", "1st": "1", "2nd": "2", "3rd": "3", "4th": "4"}
_QUARTER = re.compile(r"\bQ([1-4])\b|\b(first|second|third|fourth|1st|2nd|3rd|4th)[ -]quarter\b", re.IGNORECASE)
# A century or decade ("the 17th century", "17th- and 18th-century", "the 1700s", "the 1960s") is one
# value, answered by any year within it ("in 1685") or by the same period written another way ("the early
# 18th century" for "the 1700s"). A century is an ordinal: "three centuries" is a length of time.
_ORDINAL_CENTURY = r"(?:\d{1,2}(?:st|nd|rd|th)|" + "|".join(_ORDINAL_TEXT.split()) + ")"
_CENTURY = re.compile(
    rf"\b({_ORDINAL_CENTURY})(?:(?:\s*(?:,|and|or|to|-|–)\s*)+({_ORDINAL_CENTURY}))?[\s-]+centur(?:y|ies)\b",
    re.IGNORECASE,
)
_HUNDREDS = re.compile(r"(?<![\w.])(1\d|20)00['’]?s\b")
_DECADE = re.compile(r"(?<![\w.])(1\d\d|20\d)0['’]?s\b")


def _numbers(text: str) -> list[str]:
    return [m.group(1).replace(",", "") for m in _NUMBER.finditer(text)]


def _names(text: str) -> list[str]:
    names: list[str] = []
    for match in _CAPITALISED.finditer(text):
        words = [w for w in match.group(1).split() if w.lower() not in _NOT_NAMES]
        if words:
            # "Norman's" is found as "Norman": the possessive is the question's grammar, not the name.
            names.extend(_POSSESSIVE.sub("", w.lower()).strip("'’") for w in words)
    return names


def _name_found(name: str, haystack: str) -> bool:
    """A name in lowercased text whose accents are folded; a plural ("Europeans") also counts when the
    text has the singular. Accents do not count: questions are typed without them ("Temur" for "Temür",
    "Herve" for "Hervé")."""
    name = fold_accents(name)
    return name in haystack or (len(name) > 4 and name.endswith("s") and name[:-1] in haystack)


def fold_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# ----- the sentences ------------------------------------------------------------------------------
@dataclass
class SentenceEvidence:
    n: int
    """The citation number of the context item the sentence comes from."""
    item_rank: int
    text: str
    lexical: float
    relevance: float | None = None
    numbers: float = 1.0
    """Share of the question's numbers that the sentence holds (1 when the question has none)."""
    names: float = 1.0
    """Share of the question's names found in the sentence's passage or its title."""
    answer_type: float = 0.5
    """1 when the sentence holds an answer of the type asked for that the question does not, 0 when not,
    0.5 when the question asks for no particular type."""
    score: float = 0.0
    previous: str | None = None
    """The sentence before it in its passage, if any."""
    example: str | None = None
    """The command or code line a sentence ending in ":" introduces ("… use the following command:"
    "$ createdb mydb"): shown with it, since without it the sentence says nothing."""
    heading: str | None = None
    heading_needed: bool = False
    """The heading holds a word of the question that the sentence does not: show it with the sentence."""
    heading_lead: str | None = None
    """The parts of the heading that hold those words: what the cross-encoder reads before the sentence."""
    leans_on_previous: bool = False
    """The question's year or number is in the sentence before, not in this one: show both."""
    negation: float = 0.0
    """1 when the question is negated and the sentence is not (`ragcli.generation.polarity`)."""
    opposite: float = 0.0
    """1 when the sentence says the opposite of a question word ("common" for "uncommon")."""


@dataclass
class Assessment:
    confidence: float
    sentences: list[SentenceEvidence]
    """Shortlisted sentences, best first."""
    refused_reason: str | None = None
    signals: dict[str, float] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.refused_reason is not None


# Fitted by benchmarks/answer_gate_study.py on development questions (docs/benchmarks.md); the
# selection weights order the sentences, the gate weights turn the best one's signals into confidence.
# The gate weights are fitted on the questions that no veto (`vetoed`) decides.
SELECTION_WEIGHTS = {"relevance": 1.0, "lexical": 2.0, "numbers": 3.0, "answer_type": 1.5, "names": 1.0}
GATE_WEIGHTS = {
    "bias": -13.02,
    "relevance": 0.265,
    "lexical": 1.571,
    "numbers": 9.988,
    "names": 1.141,
    "answer_type": 0.622,
}
# Chosen on the development half A: the highest threshold keeping false refusals of SQuAD answerable
# questions ≤ 10% (the study's two set-ups and `ragcli eval qa` pooled) and of every other answerable
# kind ≤ 5% (curves in docs/benchmarks.md).
DEFAULT_MIN_CONFIDENCE = 0.25


class EvidenceScorer:
    def __init__(
        self,
        relevance: Relevance | None,
        *,
        shortlist: int = SHORTLIST,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        selection_weights: dict[str, float] | None = None,
        gate_weights: dict[str, float] | None = None,
    ) -> None:
        self.relevance = relevance
        self.shortlist = shortlist
        self.min_confidence = min_confidence
        self.selection_weights = selection_weights or SELECTION_WEIGHTS
        self.gate_weights = gate_weights or GATE_WEIGHTS

    def assess(self, question: str, context: Sequence[ContextItem]) -> Assessment:
        sentences = self.evidence(question, context)
        if not sentences:
            return Assessment(0.0, [], NO_RELEVANT_PASSAGE)
        best = sentences[0]
        signals = sentence_signals(best)
        confidence = logistic(self.gate_weights, signals)
        reason = None
        if vetoed(best):
            # The evidence contradicts a constraint of the question: none of its years or numbers is
            # there ("2019" is never answered by a sentence about 2018), or the question is negated and
            # the sentence is not, or the sentence holds the opposite of a question word. However
            # relevant it reads (docs/benchmarks.md: the vetoes).
            reason = CONSTRAINT_MISMATCH
            confidence = min(confidence, self.min_confidence / 2)
        elif confidence < self.min_confidence:
            reason = CONSTRAINT_MISMATCH if best.numbers < 1.0 or best.names < 0.5 else NO_RELEVANT_PASSAGE
        return Assessment(round(confidence, 4), sentences, reason, signals)

    def evidence(self, question: str, context: Sequence[ContextItem]) -> list[SentenceEvidence]:
        """The shortlisted sentences with every signal, best first."""
        from ragcli.generation.extractive import lexical_sentences

        profile = profile_question(question)
        lexical = lexical_sentences(question, context)
        shortlisted = sorted(lexical, key=lambda s: (-s.score, s.item_rank))[: self.shortlist]
        if not shortlisted:
            return []
        passages = {item.n: item for item in context}
        from ragcli.generation.extractive import (
            heading_words_of_question,
            introduced_example,
            previous_sentence,
        )

        out = []
        for s in shortlisted:
            if not s.text.strip():
                continue
            lead = heading_words_of_question(profile.terms, s.heading, s.text)
            out.append(
                SentenceEvidence(
                    s.n,
                    s.item_rank,
                    s.text,
                    s.score,
                    previous=previous_sentence(passages[s.n].text, s.text),
                    example=introduced_example(passages[s.n].text, s.text),
                    heading=s.heading,
                    heading_needed=lead is not None,
                    heading_lead=lead,
                )
            )
        if self.relevance is not None:
            scores = self.relevance.score(question, [relevance_text(s)[:MAX_SENTENCE_CHARS] for s in out])
            for sentence, value in zip(out, scores, strict=True):
                sentence.relevance = float(value)
        for sentence in out:
            item = passages[sentence.n]
            add_constraint_signals(sentence, profile, f"{item.passage.title}\n{item.text}")
            sentence.score = linear(self.selection_weights, sentence_signals(sentence))
        out.sort(key=lambda s: (-s.score, s.item_rank))
        return out


def vetoed(sentence: SentenceEvidence) -> bool:
    return sentence.numbers == 0.0 or sentence.negation >= 1.0 or sentence.opposite >= 1.0


def relevance_text(sentence: SentenceEvidence) -> str:
    """What the cross-encoder reads: a sentence that points back ("This takes two forms …") is read
    with the sentence before it, which says what "this" is."""
    from ragcli.generation.extractive import led_by_heading

    lead = sentence.heading_lead or sentence.heading
    return _after_previous(sentence, led_by_heading(lead, sentence.text) if sentence.heading_needed else sentence.text)


def add_constraint_signals(sentence: SentenceEvidence, profile: QuestionProfile, passage_text: str) -> None:
    numbers, leans, framed = number_agreement(profile, sentence.text, sentence.previous, sentence.heading)
    # The sentence before counts when it is shown too ("Stage 3 is the final stage. This stage …").
    shown = _after_previous(sentence, sentence.text)
    sentence.numbers = 0.0 if _names_another_version(profile, shown) else numbers
    sentence.leans_on_previous = leans
    if framed:  # "Version 3.1.4 > Fixed": the reader needs the heading to see that it answers
        sentence.heading_needed = True
    if profile.names:
        haystack = fold_accents(passage_text.lower())
        sentence.names = sum(1 for name in profile.names if _name_found(name, haystack)) / len(profile.names)
    sentence.answer_type = _type_present(profile, sentence.text)
    add_polarity_signals(sentence, profile.question)


def add_polarity_signals(sentence: SentenceEvidence, question: str) -> None:
    from ragcli.generation.polarity import negation_mismatch, opposite_clash

    sentence.negation = negation_mismatch(question, sentence.text, sentence.heading)
    sentence.opposite = opposite_clash(question, sentence.text)


def _after_previous(sentence: SentenceEvidence, text: str) -> str:
    """`text` after the sentence before when the sentence points back ("This stage …"): what "this" is."""
    from ragcli.generation.extractive import points_back

    return f"{sentence.previous} {text}" if sentence.previous and points_back(sentence.text) else text


def number_agreement(
    profile: QuestionProfile, text: str, previous: str | None, heading: str | None = None
) -> tuple[float, bool, bool]:
    """(share of the question's numbers the sentence agrees with, whether the sentence before it had to
    supply some, whether its heading did). A sentence without a year of its own may take the year from
    its heading ("Version 3.1.4 (2024-05-02) > Fixed") or the sentence before it ("In 2019 … . Ken Adams
    scored the decisive goal."); one that names another year may not."""
    if not profile.numbers:
        return 1.0, False, False
    figures = _evidence_values(text)
    own = figures | _spelled_values(text)
    framing = _evidence_values(heading, spelled=True) if heading else set()
    before = _evidence_values(previous, spelled=True) if previous else set()
    # Only figures overrule: "the first emperor" does not say that a "4" the sentence before holds is not its.
    rivals = {_kind(v) for v in figures - profile.numbers}
    agreed = 0
    leans = framed = False
    for value in profile.numbers:
        if value in own:
            agreed += 1
        elif value in framing and (_kind(value) == "number" or _kind(value) not in rivals):
            # A heading's version or number frames every sentence under it ("4 clients" takes nothing
            # from "Version 3.1.4"); its year does not overrule a year the sentence names.
            agreed += 1
            framed = True
        elif value in before and _kind(value) not in rivals:
            agreed += 1
            leans = True
    return agreed / len(profile.numbers), leans, framed


def constraint_values(text: str, *, spelled: bool = False) -> set[str]:
    """Numbers and years as written, and quarters in one form ("Q3", "third quarter" → "q3").

    With `spelled`, numbers written as words count too ("three layers" holds 3, "third son" 3). Only the
    evidence is read that way: a question's "first" or "one" is rarely a constraint ("the first German
    settlement" is answered by a sentence that never says "first"), its "3" always is."""
    return _values_and_period_figures(text, spelled)[0]


def _values_and_period_figures(text: str, spelled: bool) -> tuple[set[str], set[str]]:
    """(`constraint_values`, the figures its centuries and decades are written with: "1700" of "1700s"),
    so that the evidence reads a passage's periods once."""
    periods, written = _periods(text)
    years, shortened = _shortened_years(text)
    values = (set(_numbers(text)) - written - shortened) | periods | years
    if spelled:
        values |= _spelled_values(text)
    for match in _QUARTER.finditer(text):
        word = (match.group(1) or match.group(2) or "").lower()
        values.add(f"q{_ORDINALS.get(word, word)}")
    return values, written


# A year followed by later years written with two digits: a range ("the 2019–20 season", "1914-18") or a
# list of two or more ("in 1755, 56, 57"). One two-digit number after a comma is a number of its own
# ("in 1990, 95 people died").
_YEAR_THEN = re.compile(r"(?<![\w.])((?:1[0-9]|20)[0-9]{2})((?:\s*(?:[-–/]|to\s|,\s*(?:and\s+)?|and\s)\s*[0-9]{2}(?![\w.,]?\d))+)")
_SHORT_YEAR = re.compile(r"([-–/]|to\s|,|and\s)\s*([0-9]{2})")
_RANGE_SEPARATORS = frozenset({"-", "–", "/", "to "})


def _shortened_years(text: str) -> tuple[set[str], set[str]]:
    """(the years written with two digits after a full one, in full: "2020" of "2019–20"; the two-digit
    figures they are written with)."""
    years: set[str] = set()
    shortened: set[str] = set()
    for match in _YEAR_THEN.finditer(text):
        century, last = match.group(1)[:2], int(match.group(1)[2:])
        parts = _SHORT_YEAR.findall(match.group(2))
        if len(parts) == 1 and parts[0][0] not in _RANGE_SEPARATORS:
            continue  # "in 1990, 95 people": one number after a comma is not a year
        for _, short in parts:
            if int(short) <= last:
                break  # "1998–12" is no range of years
            years.add(century + short)
            shortened.add(short)
            last = int(short)
    return years, shortened


def _periods(text: str) -> tuple[set[str], set[str]]:
    """(centuries and decades of `text` as "c18" and "d196", the figures they are written with: "17" of
    "17th century", "1700" of "1700s")."""
    periods: set[str] = set()
    written: set[str] = set()
    for match in _CENTURY.finditer(text):
        for ordinal in filter(None, match.groups()):
            digits = re.match(r"\d+", ordinal)
            number = digits.group() if digits else _SPELLED[ordinal.lower()]
            periods.add(f"c{int(number)}")
            written.add(number)
    for match in _HUNDREDS.finditer(text):
        periods.add(f"c{int(match.group(1)) + 1}")
        written.add(f"{match.group(1)}00")
    for match in _DECADE.finditer(text):
        if not match.group(1).endswith("0"):  # "1700s" is the century above
            periods.add(f"d{match.group(1)}")
            written.add(f"{match.group(1)}0")
    return periods, written


def _periods_of_years(values: set[str]) -> set[str]:
    """The century and decade of each year among `values` ("1685" is in "c17" and "d168")."""
    years = [int(v) for v in values if _YEAR.fullmatch(v)]
    return {f"c{year // 100 + 1}" for year in years} | {f"d{year // 10}" for year in years}


def _spelled_values(text: str) -> set[str]:
    return {_SPELLED[w] for w in _WORDS.findall(text.lower()) if w in _SPELLED}


def _evidence_values(text: str, *, spelled: bool = False) -> set[str]:
    """`constraint_values` as the evidence is read: a period also by the figures it is written with (a
    question's "in 1880" still agrees with "in the 1880s", as before periods were read), and each year
    also as its century and decade."""
    values, written = _values_and_period_figures(text, spelled)
    values |= written
    return values | _periods_of_years(values)


def _kind(value: str) -> str:
    if value.startswith("q"):
        return "quarter"
    return "year" if _YEAR.fullmatch(value) or value[:1] in {"c", "d"} else "number"


def _type_present(profile: QuestionProfile, text: str) -> float:
    kind = profile.answer_type
    if kind is None:
        return 0.5
    if kind == "year":
        found = set(_YEAR.findall(text)) - profile.numbers
        if not found and re.search(r"\b\d{1,2}(?:st|nd|rd|th)\s+century\b", text, re.IGNORECASE):
            return 1.0
        return 1.0 if found else 0.0
    if kind == "date":
        if set(_YEAR.findall(text)) - profile.numbers:
            return 1.0
        return 1.0 if _DATE_WORDS.search(text) else 0.0
    if kind == "number":
        if set(_numbers(text)) - profile.numbers:
            return 1.0
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        return 1.0 if words & _NUMBER_WORDS else 0.0
    # "name": a capitalised word that the question does not already hold.
    names = set(_names(_drop_first_word(text))) - profile.names
    return 1.0 if names else 0.0


def _drop_first_word(text: str) -> str:
    # A sentence's first word is capitalised whatever it is.
    parts = text.split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def sentence_signals(sentence: SentenceEvidence) -> dict[str, float]:
    relevance = 0.0 if sentence.relevance is None else max(-12.0, min(12.0, sentence.relevance))
    return {
        "relevance": relevance,
        "lexical": sentence.lexical,
        "numbers": sentence.numbers,
        "names": sentence.names,
        "answer_type": sentence.answer_type,
        "negation": sentence.negation,
        "opposite": sentence.opposite,
    }


def linear(weights: dict[str, float], signals: dict[str, float]) -> float:
    return weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * v for k, v in signals.items())


def logistic(weights: dict[str, float], signals: dict[str, float]) -> float:
    z = linear(weights, signals)
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def signals_json(assessment: Assessment) -> dict[str, Any]:
    return {k: round(v, 4) for k, v in assessment.signals.items()}
