"""Question answering evaluation on SQuAD 2.0 files: reader, official answer scoring, refusal scoring.

Exact match and token F1 follow the official SQuAD v2 evaluation script: answers are normalised
(lowercase, punctuation removed, articles a/an/the removed, whitespace collapsed) and a prediction
scores its best match over the gold answers. SQuAD 2.0 also has unanswerable questions; there the right
behaviour for a RAG system is to refuse, so refusals are scored separately (see `score_qa`).

Each paragraph of the file becomes one corpus document with the stable id f"{title}-{index}" (index of
the paragraph within its article), so retrieval can be checked against the paragraph a question was
written from.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli.errors import UsageError
from ragcli.evaluation.beir import CorpusDoc

logger = logging.getLogger(__name__)

SQUAD_LAYOUT_HINT = (
    'A SQuAD 2.0 file is JSON: {"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}.'
)


@dataclass(frozen=True)
class SquadExample:
    question_id: str
    question: str
    answers: tuple[str, ...]
    """Gold answer texts; empty for an unanswerable question."""
    is_impossible: bool
    title: str
    context_id: str
    """Id of the paragraph document the question was written from."""
    context: str


# ----- reading ------------------------------------------------------------------------------------
def load_squad(path: str | Path) -> list[SquadExample]:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{file} does not exist.", hint="Give the path of a SQuAD 2.0 JSON file.")
    try:
        dataset = json.loads(file.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file} is not valid JSON ({exc}).", hint=SQUAD_LAYOUT_HINT) from None
    articles = dataset.get("data") if isinstance(dataset, dict) else None
    if not isinstance(articles, list):
        raise UsageError(f'{file} has no "data" list.', hint=SQUAD_LAYOUT_HINT)
    examples = [
        example
        for article_no, article in enumerate(articles)
        for example in _article_examples(article, article_no, file)
    ]
    if not examples:
        raise UsageError(f"{file} holds no questions.", hint=SQUAD_LAYOUT_HINT)
    return examples


def paragraph_id(title: str, index: int) -> str:
    return f"{title}-{index}"


def paragraph_documents(examples: Sequence[SquadExample]) -> list[CorpusDoc]:
    """The distinct paragraphs behind `examples`, as documents to index (see beir.write_corpus_files)."""
    documents: dict[str, CorpusDoc] = {}
    for example in examples:
        if example.context_id not in documents:
            documents[example.context_id] = CorpusDoc(example.context_id, example.title, example.context)
    return list(documents.values())


def _article_examples(article: Any, article_no: int, file: Path) -> list[SquadExample]:
    where = f"{file}: data[{article_no}]"
    if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
        raise UsageError(f'{where} has no "paragraphs" list.', hint=SQUAD_LAYOUT_HINT)
    title = str(article.get("title") or f"article{article_no}")
    examples = []
    for index, paragraph in enumerate(article["paragraphs"]):
        context = paragraph.get("context") if isinstance(paragraph, dict) else None
        if not isinstance(context, str) or not isinstance(paragraph.get("qas", []), list):
            raise UsageError(f'{where}.paragraphs[{index}] needs a "context" text and a "qas" list.')
        for qa_no, qa in enumerate(paragraph.get("qas", [])):
            examples.append(
                _example(
                    qa,
                    title,
                    paragraph_id(title, index),
                    context,
                    f"{where}.paragraphs[{index}].qas[{qa_no}]",
                )
            )
    return examples


def _example(qa: Any, title: str, context_id: str, context: str, where: str) -> SquadExample:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or "id" not in qa:
        raise UsageError(f'{where} needs an "id" and a "question".', hint=SQUAD_LAYOUT_HINT)
    answers = tuple(
        answer["text"]
        for answer in qa.get("answers") or []
        if isinstance(answer, dict) and isinstance(answer.get("text"), str)
    )
    return SquadExample(
        question_id=str(qa["id"]),
        question=qa["question"],
        answers=answers,
        is_impossible=bool(qa.get("is_impossible", False)) or not answers,
        title=title,
        context_id=context_id,
        context=context,
    )


# ----- the official answer scoring ------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace (official SQuAD)."""
    lowered = text.lower()
    without_punctuation = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    without_articles = _ARTICLES.sub(" ", without_punctuation)
    return " ".join(without_articles.split())


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    golds = _scorable_golds(gold_answers)
    return max(float(normalize_answer(prediction) == normalize_answer(gold)) for gold in golds)


def f1_score(prediction: str, gold_answers: Sequence[str]) -> float:
    """Best token-overlap F1 over the gold answers."""
    return max(_token_f1(prediction, gold) for gold in _scorable_golds(gold_answers))


def gold_in_answer(answer: str, gold_answers: Sequence[str]) -> bool:
    """True when a normalised gold answer occurs in the normalised answer, on word boundaries.

    Extractive answers are whole sentences, so exact match says little about them; containment says
    whether the user was shown the answer at all. Golds that normalise to nothing never count. Punctuation
    beyond ASCII separates words: the official normalisation keeps "(1249–1314)" and "Dyrrachium—one"
    as single words, and the answer that shows "1249" or "Dyrrachium" would not count.
    """
    text = f" {normalize_answer(_unicode_punctuation_apart(answer))} "
    golds = (normalize_answer(_unicode_punctuation_apart(g)) for g in gold_answers)
    return any(f" {gold} " in text for gold in golds if gold)


def _unicode_punctuation_apart(text: str) -> str:
    return "".join(" " if ord(ch) > 127 and unicodedata.category(ch).startswith("P") else ch for ch in text)


def _scorable_golds(gold_answers: Sequence[str]) -> list[str]:
    # As the official script does: answers that normalise to nothing do not count; none left means "".
    golds = [gold for gold in gold_answers if normalize_answer(gold)]
    return golds or [""]


def _token_f1(prediction: str, gold: str) -> float:
    predicted_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not predicted_tokens or not gold_tokens:
        return float(predicted_tokens == gold_tokens)
    common = sum((Counter(predicted_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


# ----- refusals -----------------------------------------------------------------------------------
_SOURCES = (
    r"(?:provided |given |supplied |available |retrieved )?"
    r"(?:documents?|context|sources?|texts?|passages?|excerpts?|information)"
)
# Narrow on purpose: a real answer may well say something "cannot be determined" or "was not found";
# only statements about the sources themselves, or the answerer's own ignorance, count as refusals.
_REFUSAL_PATTERNS = [
    # "The documents do not contain the answer." and its relatives
    rf"\b{_SOURCES} (?:do|does|did) not (?:contain|include|provide|mention|say|state|specify|answer)\b",
    rf"\bnot (?:contained|found|mentioned|present|provided|stated|given|included|specified|available|covered"
    rf"|answered|addressed) (?:in|by) the {_SOURCES}",
    rf"\bnot in the {_SOURCES}",
    rf"\bno (?:relevant )?(?:information|mention|answer|details?)\b.*\b(?:in|from) the {_SOURCES}",
    rf"\bthe {_SOURCES} (?:has|have|had|contains?|provides?) no\b",
    rf"\b(?:cannot|can not|could not) be (?:answered|determined|found|inferred) "
    rf"(?:from|in|by|based on|using|with) the {_SOURCES}",
    r"\b(?:question|this|it) (?:cannot|can not|could not) be answered\b",
    r"\bi (?:cannot|can not|could not|am unable to|was unable to) (?:answer|determine|tell|say)\b",
    r"\b(?:i|we) (?:cannot|can not|could not|am unable to|was unable to|are unable to|were unable to) "
    r"find (?:the|an|any|this|that|relevant) (?:answer|information|mention)",
    r"\bi (?:do not|did not) know\b",
    rf"\b(?:insufficient|not enough) (?:information|context) (?:to answer|in the {_SOURCES})",
]
_REFUSAL = re.compile("|".join(f"(?:{pattern})" for pattern in _REFUSAL_PATTERNS))
_CONTRACTIONS = {
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "can't": "cannot",
    "couldn't": "could not",
}


def is_refusal(answer: str) -> bool:
    """True when the answer declines: says the documents lack the answer, or "I don't know".

    An empty answer is an abstention too, as in SQuAD 2.0's own scoring.
    """
    text = answer.lower().replace("\u2019", "'").replace("\u2018", "'")
    for contraction, expansion in _CONTRACTIONS.items():
        text = text.replace(contraction, expansion)
    text = " ".join(text.split())
    return not text.strip(string.punctuation + " ") or _REFUSAL.search(text) is not None


# ----- scoring a run ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What `ask` returned for one question, as far as scoring needs it."""

    answer: str
    refused: bool = False
    """The pipeline's own refusal flag; an answer whose words refuse counts as refused too."""
    refused_reason: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    top_source: str | None = None

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> Outcome:
        """From an ask result (`AskResult.to_json()`); fields a pipeline does not report stay None."""
        citations = result.get("citations") or []
        confidence = result.get("confidence")
        return cls(
            answer=str(result.get("answer") or ""),
            refused=bool(result.get("refused")),
            refused_reason=result.get("refused_reason"),
            confidence=None if confidence is None else float(confidence),
            latency_ms=(result.get("timings_ms") or {}).get("total"),
            top_source=citations[0].get("source") if citations else None,
        )


def score_qa(
    predictions: Mapping[str, str | Outcome],
    examples: Sequence[SquadExample],
    retrieved: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Scores of `predictions` ({question id: answer text or Outcome}) on `examples`.

    em, f1            means over the answerable questions; a refused answer scores 0 on both
    gold_in_answer_rate share of the answerable questions whose answer contains a normalised gold
                      answer (`gold_in_answer`); a refusal contains none. Extractive answers are whole
                      sentences, so this says more about them than EM does
    refusal_rate      share of the unanswerable questions refused (the good kind of refusal)
    false_refusal_rate share of the answerable questions refused
    refusal_by_reason {refused_reason: count} over every refused question; "unknown" when the answer
                      gave no reason (a plain answer text, or a pipeline without reasons)
    overall_em/_f1    the official SQuAD 2.0 figure: over all questions, a refusal scoring 1 on an
                      unanswerable question and 0 on an answerable one
    hit_rate          with `retrieved` ({question id: paragraph ids retrieved}): share of the questions
                      whose own paragraph was among them (None without `retrieved`)
    A metric with no question to average over is None. A question without a prediction counts as an
    empty answer (a refusal) and is counted in missing_predictions.
    """
    if not examples:
        raise UsageError("There are no questions to score.")
    rows = [_score_one(example, predictions, retrieved) for example in examples]
    answerable = [row for row in rows if row["answerable"]]
    unanswerable = [row for row in rows if not row["answerable"]]
    hits = [row["hit"] for row in rows if row["hit"] is not None]
    missing = sum(example.question_id not in predictions for example in examples)
    if missing:
        logger.warning("%d of %d questions have no prediction; scored as refusals", missing, len(examples))
    return {
        "em": _mean(row["em"] for row in answerable),
        "f1": _mean(row["f1"] for row in answerable),
        "gold_in_answer_rate": _mean(float(row["gold_in_answer"]) for row in answerable),
        "refusal_rate": _mean(float(row["refused"]) for row in unanswerable),
        "false_refusal_rate": _mean(float(row["refused"]) for row in answerable),
        "refusal_by_reason": dict(Counter(row["refused_reason"] for row in rows if row["refused"])),
        "overall_em": _mean(row["em"] for row in rows),
        "overall_f1": _mean(row["f1"] for row in rows),
        "hit_rate": _mean(float(hit) for hit in hits),
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "missing_predictions": missing,
        "per_question": rows,
    }


def _score_one(
    example: SquadExample,
    predictions: Mapping[str, str | Outcome],
    retrieved: Mapping[str, Sequence[str]] | None,
) -> dict[str, Any]:
    given = predictions.get(example.question_id, "")
    outcome = given if isinstance(given, Outcome) else Outcome(answer=given)
    prediction = outcome.answer
    refused = outcome.refused or is_refusal(prediction)
    # A refusal is an abstention: scored as the empty answer, never by its words' overlap with the gold.
    scored = "" if refused else prediction
    answerable = not example.is_impossible
    hit = None
    if retrieved is not None and example.question_id in retrieved:
        hit = example.context_id in retrieved[example.question_id]
    return {
        "id": example.question_id,
        "question": example.question,
        "answerable": answerable,
        "gold_answers": list(example.answers),
        "answer": prediction,
        "refused": refused,
        "refused_reason": (outcome.refused_reason or "unknown") if refused else None,
        "confidence": outcome.confidence,
        "gold_in_answer": answerable and not refused and gold_in_answer(prediction, example.answers),
        # On an unanswerable question the official score is 1 for abstaining, else 0.
        "em": exact_match(scored, example.answers) if answerable else float(refused),
        "f1": f1_score(scored, example.answers) if answerable else float(refused),
        "latency_ms": outcome.latency_ms,
        "top_source": outcome.top_source,
        "hit": hit,
    }


def write_details(rows: Sequence[Mapping[str, Any]], path: str | Path) -> int:
    """One JSON line per question (score_qa's per_question rows) for `ragcli eval qa --details`."""
    file = Path(path)
    if file.parent and not file.parent.is_dir():
        raise UsageError(f"Cannot write {file}: {file.parent} is not a folder.", hint="Give a path in an existing folder.")
    with file.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def _mean(values: Any) -> float | None:
    collected = list(values)
    return statistics.fmean(collected) if collected else None
