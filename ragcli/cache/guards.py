"""Guards for the semantic cache: two questions can be 0.98 similar as vectors and still ask opposite
things. A semantic hit is refused when the questions differ in

- negation (not, no, never, without, …),
- numbers and dates (digits, number words, month names),
- named entities (capitalised words that do not start the question, codes such as P-700, acronyms),
- comparison direction (more/less, higher/lower, before/after, …),
- the order of the same words ("men more than women" against "women more than men").

These checks are deliberately strict: a refused hit costs one normal query, a wrong hit costs trust.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*|\d+(?:[.,:/]\d+)*")

NEGATIONS = {
    "not", "no", "never", "without", "none", "nobody", "nothing", "neither", "nor", "nowhere",
    "cannot", "cant", "can't", "won't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't",
    "weren't", "shouldn't", "wouldn't", "couldn't", "hasn't", "haven't", "hadn't", "mustn't", "except",
    "excluding", "lack", "lacks", "absent", "fail", "fails", "unable",
}  # fmt: skip

NUMBER_WORDS = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred",
    "thousand", "million", "billion", "first", "second", "third", "fourth", "fifth", "half", "twice",
    "double", "triple", "dozen",
}  # fmt: skip

MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "yesterday", "today", "tomorrow",
}  # fmt: skip

UP = {
    "more", "most", "greater", "greatest", "higher", "highest", "larger", "largest", "bigger", "biggest",
    "increase", "increases", "increased", "increasing", "above", "after", "later", "latest", "best",
    "better", "maximum", "max", "over", "exceed", "exceeds", "faster", "fastest", "longer", "longest",
    "raise", "raises", "rise", "rises", "up", "upper", "newer", "newest", "older", "oldest", "heavier",
    "promote", "promotes", "enhance", "enhances", "improve", "improves", "positive", "positively",
    "gain", "gains", "activate", "activates", "upregulate", "upregulates", "upregulated",
}  # fmt: skip

DOWN = {
    "less", "least", "fewer", "fewest", "lower", "lowest", "smaller", "smallest", "decrease",
    "decreases", "decreased", "decreasing", "below", "before", "earlier", "earliest", "worst", "worse",
    "minimum", "min", "under", "slower", "slowest", "shorter", "shortest", "reduce", "reduces",
    "reduced", "drop", "drops", "down", "lighter", "inhibit", "inhibits", "suppress", "suppresses",
    "impair", "impairs", "negative", "negatively", "loss", "loses", "prevent", "prevents",
    "deactivate", "deactivates", "downregulate", "downregulates", "downregulated",
}  # fmt: skip


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text)


def negations(text: str) -> list[str]:
    found = [t.lower().replace("’", "'") for t in _tokens(text)]
    return sorted(t for t in found if t in NEGATIONS or t.endswith("n't"))


def numbers(text: str) -> list[str]:
    out = []
    for token in _tokens(text):
        lower = token.lower()
        if token[0].isdigit() or lower in NUMBER_WORDS or lower in MONTHS:
            out.append(lower.replace(",", ""))
    return out  # in order: "3' rather than 5'" and "5' rather than 3'" are different questions


def entities(text: str) -> list[str]:
    """Capitalised words not at the start of a sentence, acronyms, and codes mixing letters and digits."""
    out = []
    sentence_start = True
    for match in re.finditer(r"\S+", text):
        raw = match.group(0)
        word = raw.strip("\"'()[]{}.,;:!?")
        if word:
            has_digit = any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
            is_acronym = len(word) > 1 and word.isupper()
            is_name = word[0].isupper() and not sentence_start
            if has_digit or is_acronym or is_name:
                out.append(word.lower())
        sentence_start = raw.endswith((".", "?", "!"))
    return sorted(out)


def directions(text: str) -> list[str]:
    signs = []
    for token in _tokens(text):
        lower = token.lower()
        if lower in UP:
            signs.append("+")
        elif lower in DOWN:
            signs.append("-")
    return signs


def _words(text: str) -> set[str]:
    return {w.strip("\"'()[]{}.,;:!?").lower() for w in text.split()}


def _entities_agree(a: str, b: str) -> bool:
    """Every entity of each question appears in the other, whatever its case there: 'UK' and 'uk'
    agree (someone typed in lower case), 'France' and 'Spain' do not."""
    return set(entities(a)) <= _words(b) and set(entities(b)) <= _words(a)


def semantic_match_refused(cached: str, asked: str) -> str | None:
    """Why a semantic hit between these two questions must not be served, or None if it may."""
    for name, extract in (("negation", negations), ("numbers", numbers)):
        if extract(cached) != extract(asked):
            return name
    if not _entities_agree(cached, asked):
        return "named entities"
    if directions(cached) != directions(asked):
        return "comparison direction"
    if _swapped(cached, asked):
        return "word order"
    return None


def _swapped(a: str, b: str) -> bool:
    """The same words in another order: "are women paid more than men" is not "are men paid more than
    women", however close their vectors."""
    words_a = [w.lower() for w in _tokens(a)]
    words_b = [w.lower() for w in _tokens(b)]
    return sorted(words_a) == sorted(words_b) and words_a != words_b
