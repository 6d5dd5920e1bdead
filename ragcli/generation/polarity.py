"""Polarity checks for the answerability gate: does the evidence say the opposite of what is asked?

SQuAD 2.0's unanswerable questions are written by editing an answerable one so that the paragraph no
longer answers it, and two of the commonest edits keep every other word: a negation inserted ("Who
*never* issued the Royal Proclamation?") and a word swapped for its opposite ("What kind of marriage
became *uncommon*?" over "… became common"). Relevance and word coverage cannot see either; these checks
can, at the cost of a word list. Measured on development questions (docs/benchmarks.md, "Answerability
gate", third pass; both halves): a negation or denial missing from the best sentence marks 12.0% of 400
SQuAD unanswerable questions and 0.2% of 400 answerable ones; an opposite 4.8% and 0.8%; neither marks
any of 100 Rust in-corpus or 298 RGB answerable questions.
"""

from __future__ import annotations

import re

from ragcli.retrieval.stemming import stem

# "no longer", "n't", "cannot" …; "without" is left out: "How do I run it without cargo?" asks for a way,
# and the sentence that gives it need not say "without".
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|neither|cannot|nothing|nobody)\b|n['’]t\b", re.IGNORECASE)

# Opposites as the adversarial edits use them: direction, order, size, time, approval, polarity. Converse
# pairs are left out: "Who bought the rights?" is answered by "X sold the rights to Y", "Who won?" by
# "X lost to Y".
_OPPOSITE_TEXT = """
first last|major minor|increase decrease|rise fall|rose fell|more less|most least|higher lower|
highest lowest|larger smaller|largest smallest|early late|earlier later|earliest latest|begin end|
began ended|north south|east west|northern southern|eastern western|ancient modern|older newer|
oldest newest|older younger|oldest youngest|maximum minimum|positive negative|strong weak|
stronger weaker|strongest weakest|accept reject|allow forbid|support oppose|like dislike|
include exclude|success failure|rich poor|wealthy poor|longer shorter|longest shortest|upper lower|
inner outer|internal external|domestic foreign|legal illegal|true false|agree disagree|
create destroy|built destroyed|faster slower|always never|majority minority|superior inferior|
natural artificial|male female|men women|birth death|born died|alive dead|cheap expensive|
encourage discourage|appear disappear|approve disapprove|advantage disadvantage|rural urban|
permanent temporary|formal informal|common rare|best worst|better worse|victory defeat|friend enemy|
ally enemy|import export|gain loss|increase reduce|rise decline|succeed fail|
succeeded failed|strengthen weaken|expand shrink|wide narrow|hot cold|wet dry
"""
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)?")
# A negating prefix on a word whose base the other text holds ("uncommon" / "common").
_PREFIXED = re.compile(r"^(un|non|dis)-?([a-z]{4,})$")
# Words that only look prefixed.
_NOT_PREFIXED_TEXT = (
    "unless under until union unit unite united universe university unique discuss distance distinct "
    "district disease display discover dispute"
)
_NOT_PREFIXED = frozenset(_NOT_PREFIXED_TEXT.split())


def _opposites() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for pair in " ".join(_OPPOSITE_TEXT.split("\n")).split("|"):
        if pair.strip():
            a, b = (stem(w) for w in pair.split())
            table.setdefault(a, set()).add(b)
            table.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in table.items()}


_OPPOSITES = _opposites()


# A sentence can deny without a negation word: "… which prevents us from using s again", "the crown's
# refusal to allow non-Catholics", "complete, excluding only Iberia".
_IMPLICIT_NEGATION = re.compile(
    r"\b(?:without|prevents?|prevented|unable|fails?|failed|lacks?|lacked|impossible|"
    r"refus(?:al|e|es|ed)|forb(?:id|ids|ade|idden)|prohibit(?:s|ed)?|bann?(?:ed|s)?|barred|den(?:y|ies|ied)|"
    r"except|excluding|excluded|exclusion)\b",
    re.IGNORECASE,
)
# Questions whose negation is the user's situation, not a fact to match: "Why can't I …?", "What happens
# if I don't …?", "Can a field not be public?". Their answer need not repeat the negation.
_NOT_FACTOID = re.compile(
    r"^\s*(?:why|what happens|what would happen|what if|can|could|is|are|does|do|did|should|will|would|"
    r"was|were|has|have|must|may)\b|\b(?:i|my|me)\b",
    re.IGNORECASE,
)


# A question can deny without a negation word too: "When did Kublai fail to move the capital?" is an
# edit of "When did Kublai move the capital?" that "Kublai readied the move …" does not answer.
_DENYING_HEADING = re.compile(
    r"\b(?:exclusions?|excluded|exceptions?|limitations?|restrictions?|unsupported|not\s+covered)\b", re.IGNORECASE
)
_QUESTION_DENIAL = re.compile(r"\b(?:fail|fails|failed|unable|impossible)\b", re.IGNORECASE)


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def negation_mismatch(question: str, sentence: str, heading: str | None = None) -> float:
    """1 when a factoid question is negated and the sentence is not: "Who never issued X?" over "Y issued
    X", "When did X fail to …?" over "X did …". Adversarial edits negate factoid questions; a user's
    "Why can't I …?" is answered by a sentence that says why, with or without "not". A sentence under a
    heading that denies ("Exclusions", "What is not covered") denies with it: "What does the warranty not
    cover?" is answered by the list under "Exclusions"."""
    if _NOT_FACTOID.search(question) or not (negated(question) or _QUESTION_DENIAL.search(question)):
        return 0.0
    # "fail", "unable" and "impossible" are among the sentence's own denials: it may repeat the word.
    if negated(sentence) or _IMPLICIT_NEGATION.search(sentence):
        return 0.0
    section = (heading or "").rsplit(" > ", 1)[-1]
    return 0.0 if negated(section) or _DENYING_HEADING.search(section) else 1.0


# A question that offers a choice ("Which is more costly, formal or informal imperialism?") is answered by
# either side of its comparison: "Informal rule is generally less costly than …".
_CHOICE = re.compile(r"\b(?:which|whether)\b.*,.*\bor\b", re.IGNORECASE)


def opposite_clash(question: str, sentence: str) -> float:
    """1 when the sentence holds the opposite of a question word and not the word itself ("uncommon" asked,
    "common" said; "decreased" asked, "increased" said), unless the question holds both. A sentence's
    prefixed word ("unqualified") does not clash with a negated question's word ("don't qualify")."""
    q_words = _words(question)
    s_words = _words(sentence)
    q_keys, s_keys = set(q_words.values()), set(s_words.values())
    choice = bool(_CHOICE.search(question))
    for raw, key in q_words.items():
        if key in s_keys:
            continue
        if not choice and (_OPPOSITES.get(key, frozenset()) & s_keys) - q_keys:
            return 1.0
        base = _base(raw)
        if base and base in s_keys:
            return 1.0
    if negated(question):
        # "if I don't qualify the name" is what "unqualified names" says: a negated question agrees with a
        # sentence's negating prefix.
        return 0.0
    for raw, key in s_words.items():
        base = _base(raw)
        if base and base in q_keys and key not in q_keys:
            return 1.0
    return 0.0


# "Western" is the West's, not an opposite of it: a question about the West and the East is answered by a
# sentence about "Western imperialism".
_DIRECTIONS = {"northern": "north", "southern": "south", "eastern": "east", "western": "west"}


def _words(text: str) -> dict[str, str]:
    """Each lowercased word with its stem."""
    return {w: stem(_DIRECTIONS.get(w, w).replace("-", "")) for w in (m.lower() for m in _WORD.findall(text))}


def _base(word: str) -> str | None:
    """The stem of what a negating prefix negates ("uncommon" → "common"), or None."""
    match = _PREFIXED.match(word)
    if not match or word in _NOT_PREFIXED:
        return None
    return stem(match.group(2))
