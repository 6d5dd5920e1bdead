"""SQuAD 2.0: reading, the official answer normalisation and scores, refusal detection, score_qa."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.errors import UsageError
from ragcli.evaluation.beir import CorpusDoc
from ragcli.evaluation.squad import (
    Outcome,
    exact_match,
    f1_score,
    gold_in_answer,
    is_refusal,
    load_squad,
    normalize_answer,
    paragraph_documents,
    score_qa,
)
from ragcli.models import REFUSAL

MINI = {
    "version": "v2.0",
    "data": [
        {
            "title": "Cats",
            "paragraphs": [
                {
                    "context": "The cat sat on the mat. Nobody knows whose mat it was.",
                    "qas": [
                        {
                            "id": "c1",
                            "question": "Where did the cat sit?",
                            "answers": [
                                {"text": "on the mat", "answer_start": 12},
                                {"text": "the mat", "answer_start": 15},
                            ],
                            "is_impossible": False,
                        },
                        {
                            "id": "c2",
                            "question": "Who owned the mat?",
                            "answers": [],
                            "plausible_answers": [{"text": "Nobody", "answer_start": 24}],
                            "is_impossible": True,
                        },
                    ],
                },
                {
                    "context": "The cat is black.",
                    "qas": [
                        {
                            "id": "c3",
                            "question": "What colour is the cat?",
                            "answers": [{"text": "black", "answer_start": 11}],
                            "is_impossible": False,
                        }
                    ],
                },
            ],
        },
        {
            "title": "Dogs",
            "paragraphs": [
                {
                    "context": "Dogs chase cats.",
                    "qas": [
                        {
                            "id": "d1",
                            "question": "What do dogs chase?",
                            "answers": [{"text": "cats", "answer_start": 11}],
                            "is_impossible": False,
                        },
                        {
                            "id": "d2",
                            "question": "Why do dogs bark at night?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                }
            ],
        },
    ],
}


@pytest.fixture
def mini_file(tmp_path: Path) -> Path:
    path = tmp_path / "mini-v2.0.json"
    path.write_text(json.dumps(MINI), encoding="utf-8")
    return path


# ----- normalisation, EM, F1 (the official evaluation script's semantics) ----------------------------
def test_normalisation_follows_the_official_script() -> None:
    assert normalize_answer("The Cat!") == "cat"
    assert normalize_answer("  an   Apple, a PEAR.") == "apple pear"
    assert normalize_answer("U.S. Army's") == "us armys"
    assert normalize_answer("Theatre anthem") == "theatre anthem"  # articles only as whole words


def test_exact_match() -> None:
    assert exact_match("The Cat!", ["cat"]) == 1.0
    assert exact_match("a cat", ["dog", "the cat"]) == 1.0  # the best over the gold answers
    assert exact_match("cats", ["cat"]) == 0.0
    # No gold answer (unanswerable): only the empty prediction matches, as in the official script.
    assert exact_match("", []) == 1.0
    assert exact_match("Paris", []) == 0.0


def test_token_f1_by_hand() -> None:
    # "the big black cat" -> [big, black, cat]; "black cat sat" -> [black, cat, sat]
    # common = 2, precision = 2/3, recall = 2/3, F1 = 2 * (2/3 * 2/3) / (2/3 + 2/3) = 2/3
    assert f1_score("the big black cat", ["black cat sat"]) == pytest.approx(2 / 3, abs=1e-6)
    # "black and white" vs "black": common 1, P = 1/3, R = 1/1, F1 = 2 * (1/3) / (4/3) = 1/2
    assert f1_score("black and white", ["black"]) == pytest.approx(0.5, abs=1e-6)
    # Repeated tokens count only as often as both sides have them: "cat cat" vs "cat":
    # common = 1, P = 1/2, R = 1, F1 = 2/3. The max over golds takes the exact one (1.0).
    assert f1_score("cat cat", ["cat"]) == pytest.approx(2 / 3, abs=1e-6)
    assert f1_score("cat cat", ["cat", "the cat cat"]) == 1.0
    assert f1_score("dog", ["cat"]) == 0.0
    assert f1_score("", ["cat"]) == 0.0


# ----- refusals -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer",
    [
        REFUSAL,
        "The documents do not contain the answer",
        "The answer is not in the documents.",
        "I don't know.",
        "I do not know who that was.",
        "This question cannot be answered from the provided context.",
        "The provided documents don’t mention who founded the company.",
        "Sorry, I couldn't find any information about that in the sources.",
        "There is no information about his birth in the given documents.",
        "That is not mentioned in the context [1].",
        "",
        "   ",
    ],
)
def test_refusals_are_recognised(answer: str) -> None:
    assert is_refusal(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "France",
        "on the mat",
        "The documents say the Normans came from Normandy [1].",
        "The exact position cannot be determined by standard structural methods.",
        "We could not find the lost manuscript until 1902.",
        "Nobody knows.",
        "The knowledge was not documented until later.",
    ],
)
def test_answers_are_not_refusals(answer: str) -> None:
    assert not is_refusal(answer)


# ----- reading and scoring a run ------------------------------------------------------------------
def test_load_squad_and_paragraph_documents(mini_file: Path) -> None:
    examples = load_squad(mini_file)

    assert [example.question_id for example in examples] == ["c1", "c2", "c3", "d1", "d2"]
    assert examples[0].answers == ("on the mat", "the mat")
    assert [example.is_impossible for example in examples] == [False, True, False, False, True]
    assert examples[1].answers == ()  # plausible_answers are not answers
    assert [example.context_id for example in examples] == ["Cats-0", "Cats-0", "Cats-1", "Dogs-0", "Dogs-0"]
    assert paragraph_documents(examples) == [
        CorpusDoc("Cats-0", "Cats", "The cat sat on the mat. Nobody knows whose mat it was."),
        CorpusDoc("Cats-1", "Cats", "The cat is black."),
        CorpusDoc("Dogs-0", "Dogs", "Dogs chase cats."),
    ]


def test_score_qa_by_hand(mini_file: Path) -> None:
    examples = load_squad(mini_file)
    predictions = {
        "c1": "the mat.",  # answerable: EM 1, F1 1
        "c2": REFUSAL,  # unanswerable, refused: right
        "c3": "black and white",  # answerable: EM 0, F1 1/2 (see test_token_f1_by_hand)
        "d1": "I don't know.",  # answerable but refused: EM 0, F1 0, a false refusal
        "d2": "Because of the moon.",  # unanswerable, answered anyway
    }
    retrieved = {"c1": ["Cats-0"], "c2": ["Dogs-0"], "c3": ["Cats-0", "Cats-1"], "d1": []}  # d2: not given

    result = score_qa(predictions, examples, retrieved)

    assert result["em"] == pytest.approx(1 / 3, abs=1e-6)  # (1 + 0 + 0) / 3 answerable
    assert result["f1"] == pytest.approx(0.5, abs=1e-6)  # (1 + 0.5 + 0) / 3
    assert result["refusal_rate"] == pytest.approx(0.5, abs=1e-6)  # c2 of c2, d2
    assert result["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-6)  # d1 of c1, c3, d1
    # Official SQuAD 2.0 over all five: EM (1 + 1 + 0 + 0 + 0) / 5, F1 (1 + 1 + 0.5 + 0 + 0) / 5
    assert result["overall_em"] == pytest.approx(0.4, abs=1e-6)
    assert result["overall_f1"] == pytest.approx(0.5, abs=1e-6)
    assert result["hit_rate"] == pytest.approx(0.5, abs=1e-6)  # c1 and c3 hit; c2 and d1 miss
    assert (result["questions"], result["answerable"], result["unanswerable"]) == (5, 3, 2)
    assert result["missing_predictions"] == 0
    assert [row["refused"] for row in result["per_question"]] == [False, True, False, True, False]


def test_score_qa_missing_predictions_and_no_retrieval(mini_file: Path) -> None:
    examples = load_squad(mini_file)

    result = score_qa({"c1": "on the mat", "c3": "black", "d1": "cats"}, examples)

    assert result["em"] == 1.0
    assert result["refusal_rate"] == 1.0  # c2 and d2 have no prediction: empty answers, i.e. refusals
    assert result["missing_predictions"] == 2
    assert result["hit_rate"] is None

    only_answerable = score_qa({"c1": "on the mat"}, [examples[0]])
    assert only_answerable["refusal_rate"] is None


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_squad(tmp_path / "absent.json")

    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [')
    with pytest.raises(UsageError, match="not valid JSON"):
        load_squad(broken)

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}))
    with pytest.raises(UsageError, match=r"data\[0\]\.paragraphs\[0\] needs a \"context\""):
        load_squad(wrong)

    with pytest.raises(UsageError, match="There are no questions"):
        score_qa({}, [])


# ----- what `eval qa` measures beyond EM/F1 (issue 10, item 7) --------------------------------------
def test_gold_in_answer_is_normalised_containment_on_word_boundaries() -> None:
    assert gold_in_answer("The cat sat on the mat, in 1987.", ["on the mat"])
    assert gold_in_answer("It opened in Tromsø in 1987.", ["1987"])
    assert gold_in_answer("Revenue was $412 million.", ["$412 million"])
    # Dashes and quotes beyond ASCII separate words, as a reader sees them.
    assert gold_in_answer("Zhu Shijie (1249–1314) solved equations.", ["1249"])
    assert gold_in_answer("Dyrrachium—one of the bases—fell.", ["Dyrrachium"])
    assert gold_in_answer("He wrote “Hamlet”.", ["Hamlet"])
    assert not gold_in_answer("It was 12491314.", ["1249"])
    assert gold_in_answer("Population: 12,400 people", ["12,400"])
    assert not gold_in_answer("Dogs chase cats.", ["cat"])  # a word, not a substring
    assert not gold_in_answer("In 19870 nothing happened.", ["1987"])
    assert not gold_in_answer("anything at all", ["the", ""])  # golds that normalise to nothing never count


def test_score_qa_reads_refusals_and_their_reasons_from_outcomes(mini_file: Path) -> None:
    examples = load_squad(mini_file)
    predictions: dict[str, str | Outcome] = {
        # answerable, answered with a sentence holding the gold: EM 0, gold in answer
        "c1": Outcome("The cat sat on the mat.", confidence=0.9, latency_ms=12.0, top_source="/x/Cats-0.txt"),
        # unanswerable, refused by the pipeline with a reason, although the words do not say so
        "c2": Outcome("Nothing answers this.", refused=True, refused_reason="no_relevant_passage", confidence=0.1),
        # answerable, answered without the gold
        "c3": Outcome("The cat sleeps all day."),
        # answerable, refused in words only (a plain answer text): a false refusal of unknown reason
        "d1": "I don't know.",
        # unanswerable, refused because of the filters
        "d2": Outcome(REFUSAL, refused=True, refused_reason="filtered_out"),
    }
    result = score_qa(predictions, examples)
    assert result["gold_in_answer_rate"] == pytest.approx(1 / 3, abs=1e-6)  # c1 of c1, c3, d1
    assert result["refusal_rate"] == 1.0
    assert result["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert result["refusal_by_reason"] == {"no_relevant_passage": 1, "unknown": 1, "filtered_out": 1}
    rows = {row["id"]: row for row in result["per_question"]}
    assert rows["c1"]["gold_in_answer"] and rows["c1"]["em"] == 0.0 and rows["c1"]["confidence"] == 0.9
    assert rows["c1"]["gold_answers"] == ["on the mat", "the mat"] and rows["c1"]["top_source"] == "/x/Cats-0.txt"
    assert rows["c2"]["refused"] and rows["c2"]["em"] == 1.0  # abstaining on an unanswerable one is right
    assert rows["d1"]["refused_reason"] == "unknown" and rows["d1"]["confidence"] is None
    assert rows["c3"]["refused_reason"] is None and not rows["c3"]["gold_in_answer"]


def test_outcome_from_an_ask_result() -> None:
    result = {
        "answer": "The mat.",
        "refused": False,
        "citations": [{"source": "/a/Cats-0.txt"}, {"source": "/a/Dogs-0.txt"}],
        "timings_ms": {"total": 31.5},
    }
    outcome = Outcome.from_result(result)
    assert outcome == Outcome("The mat.", False, None, None, 31.5, "/a/Cats-0.txt")
    refused = Outcome.from_result({"answer": "x", "refused": True, "refused_reason": "empty_index", "confidence": 0})
    assert refused.refused_reason == "empty_index" and refused.confidence == 0.0 and refused.top_source is None


def test_cli_eval_qa_reports_the_new_rates_and_writes_details(
    mini_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "home"))
    details = tmp_path / "details.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "qa", str(mini_file), "--json", "--details", str(details)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("em", "f1", "gold_in_answer_rate", "refusal_rate", "false_refusal_rate", "refusal_by_reason",
                "p50_ms", "p95_ms"):
        assert key in data, key
    assert 0.0 <= data["gold_in_answer_rate"] <= 1.0 and data["details"] == str(details)
    rows = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    answerable = [row for row in rows if row["answerable"]]
    assert data["gold_in_answer_rate"] == pytest.approx(sum(r["gold_in_answer"] for r in answerable) / 3)
    for row in answerable:
        assert row["gold_in_answer"] == (not row["refused"] and gold_in_answer(row["answer"], row["gold_answers"]))
    assert [row["id"] for row in rows] == ["c1", "c2", "c3", "d1", "d2"]
    expected = {"id", "question", "answerable", "gold_answers", "answer", "refused", "refused_reason",
                "confidence", "gold_in_answer", "f1", "em", "latency_ms", "top_source"}
    assert all(expected <= set(row) for row in rows)
    assert rows[0]["question"] == "Where did the cat sit?" and rows[0]["latency_ms"] > 0
    assert rows[0]["top_source"].endswith(".txt") or rows[0]["top_source"].endswith(".md")
    table = runner.invoke(app, ["eval", "qa", str(mini_file)])
    assert table.exit_code == 0 and "gold_in_answer_rate" in table.stdout and "refusal_by_reason" in table.stdout
    bad = runner.invoke(app, ["eval", "qa", str(mini_file), "--details", str(tmp_path / "no" / "such" / "d.jsonl")])
    assert bad.exit_code == 2 and "not a folder" in bad.stderr
