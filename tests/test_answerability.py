"""The answerability gate, evidence selection, citation checks and the never-stale cache rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.generation.evidence import (
    CONSTRAINT_MISMATCH,
    EvidenceScorer,
    SentenceEvidence,
    add_constraint_signals,
    profile_question,
)
from ragcli.generation.extractive import ExtractiveGenerator, clean_sentence, led_by_heading
from ragcli.generation.verify import verify_citations
from ragcli.models import ContextItem, Passage
from ragcli.store.journal import CorpusJournal, term_hash


def _item(n: int, text: str, title: str = "Doc") -> ContextItem:
    passage = Passage(f"c{n}", f"d{n}", f"/docs/{n}.md", title, None, None, 0, text, 1.0)
    return ContextItem(n, text, passage)


# ----- the question's constraints ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did the Normans conquer England?", "date"),
        ("In what year was the prize first awarded?", "year"),
        ("How many people live in Warsaw?", "number"),
        ("What percentage of revenue came from ads?", "number"),
        ("Who won the 2019 Aurora prize?", "name"),
        ("What is the difference between String and &str?", None),
    ],
)
def test_answer_type_of_a_question(question: str, kind: str | None) -> None:
    assert profile_question(question).answer_type == kind


def test_numbers_and_names_of_a_question() -> None:
    profile = profile_question("Who won the Aurora prize in 2019 for Q1 revenue?")
    assert "2019" in profile.numbers
    assert {"aurora", "q1"} <= profile.names


def test_a_sentence_about_another_year_does_not_agree_with_the_question() -> None:
    profile = profile_question("Who won the Aurora prize in 2019?")
    wrong = SentenceEvidence(1, 0, "In 2018 the Aurora prize was won by Maria Lopez.", 0.8)
    right = SentenceEvidence(1, 0, "In 2019 the Aurora prize was won by Ken Adams.", 0.8)
    passage = "Aurora prize winners. In 2018 the Aurora prize was won by Maria Lopez. In 2019 … Ken Adams."
    add_constraint_signals(wrong, profile, passage)
    add_constraint_signals(right, profile, passage)
    assert wrong.numbers == 0.0 and right.numbers == 1.0
    assert right.answer_type == 1.0  # "Ken Adams" is a name the question does not hold


def test_a_version_number_need_not_be_repeated_but_must_not_be_another() -> None:
    profile = profile_question("Does PostgreSQL 15 support virtual generated columns?")
    assert profile.versions == {("postgresql", "15")} and not profile.numbers
    said = {
        "PostgreSQL currently implements only stored generated columns.": 1.0,
        "PostgreSQL 15 implements only stored generated columns.": 1.0,
        "PostgreSQL 14 added stored generated columns.": 0.0,
    }
    for text, numbers in said.items():
        sentence = SentenceEvidence(1, 0, text, 0.8)
        add_constraint_signals(sentence, profile, text)
        assert sentence.numbers == numbers, text
    # Roman numerals are numbers; the sentence before counts when it is shown with a sentence that points back.
    war = profile_question("Where did the Free French run operations during World War 2?")
    stage = profile_question("Stage 4 is the final stage of what?")
    for profile, text, previous, numbers in (
        (war, "In World War II, the Free French used the colonies as bases.", None, 1.0),
        (war, "In World War I, the French used the colonies as bases.", None, 0.0),
        (stage, "This stage comprises two parts.", "Stage 3 is the final stage of the bill.", 0.0),
        (stage, "The bill then receives royal assent.", "Stage 3 is the final stage of the bill.", 1.0),
    ):
        sentence = SentenceEvidence(1, 0, text, 0.8, previous=previous)
        add_constraint_signals(sentence, profile, text)
        assert sentence.numbers == numbers, text
    # A year or a day of a month is no version: it must agree as before.
    assert profile_question("Who won the Olympics 2016?").numbers == {"2016"}
    assert profile_question("What happened on October 7?").numbers == {"7"}


def test_quarters_agree_however_they_are_written() -> None:
    from ragcli.generation.evidence import number_agreement

    profile = profile_question("What was Corvid's revenue in Q3 2022?")
    assert number_agreement(profile, "Corvid reported $295 million for the third quarter of 2022.", None)[0] == 1.0
    assert number_agreement(profile, "Corvid reported $389 million for the second quarter of 2022.", None)[0] == 0.5


@pytest.mark.parametrize(
    ("question", "sentence", "agreement"),
    [
        # A century or decade is answered by a year within it, or by the same period written another way.
        ("Who ruled France in the 17th century?", "Louis XIV reigned from 1643 to 1715.", 1.0),
        ("How many fled France by the 1700s?", "Some 500,000 had fled by the early 18th century.", 1.0),
        ("Which cities had mayors in the 1600s and 1700s?", "Mayors served in the 17th and 18th centuries.", 1.0),
        ("What did Baran develop in the late 1950's?", "In the late 1950s, Baran developed a network.", 1.0),
        ("What did Baran develop in the 1950s?", "In 1959 Baran developed a network.", 1.0),
        # … and not by a year outside it.
        ("Who ruled France in the 16th century?", "Louis XIV reigned from 1643 to 1715.", 0.0),
        ("What did Baran develop in the 1950s?", "In 1962 Baran developed a network.", 0.0),
        # A year stays a year: "the 1880s" does not say it was 1885.
        ("What was invented in 1885?", "The machine gun was invented in the 1880s.", 0.0),
        ("What was invented in 1885?", "The machine gun was invented in 1884.", 0.0),
    ],
)
def test_a_century_or_decade_agrees_with_the_years_within_it(question: str, sentence: str, agreement: float) -> None:
    from ragcli.generation.evidence import number_agreement

    assert number_agreement(profile_question(question), sentence, None)[0] == agreement


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Why did the operations fail in 1755, 56, 57?", {"1755", "1756", "1757"}),
        ("Who won the 2019–20 season?", {"2019", "2020"}),
        ("What happened in 1914-18?", {"1914", "1918"}),
        # One number after a comma is a number; a smaller one is no later year.
        ("In 1990, 95 people died.", {"1990", "95"}),
        ("Between 1998–12 and now.", {"1998", "12"}),
    ],
)
def test_years_written_with_two_digits_after_a_full_one_are_years(text: str, values: set[str]) -> None:
    from ragcli.generation.evidence import constraint_values, number_agreement

    assert constraint_values(text) == values
    season = profile_question("Who won the 2019–20 season?")
    assert number_agreement(season, "Yarrow won the 2019–2020 season.", None)[0] == 1.0


def test_a_number_of_centuries_is_a_length_not_a_century() -> None:
    assert profile_question("Who ruled for three centuries?").numbers == set()
    assert profile_question("What lasted 2 centuries?").numbers == {"2"}
    assert profile_question("Who ruled in the seventeenth century?").numbers == {"c17"}


def test_the_year_may_come_from_the_sentence_before_unless_the_sentence_names_another() -> None:
    from ragcli.generation.evidence import number_agreement

    profile = profile_question("Who scored the decisive goal in the 2015 cup final?")
    before = "Yarrow won the 2015 cup final in Valemont."
    assert number_agreement(profile, "Maya Brennan scored the decisive goal.", before) == (1.0, True, False)
    assert number_agreement(profile, "In 2016 Ken Adams scored the decisive goal.", before) == (0.0, False, False)


def test_a_number_the_evidence_spells_out_agrees_with_its_figure() -> None:
    from ragcli.generation.evidence import number_agreement

    son = profile_question("Who was Genghis's 3rd son?")
    assert number_agreement(son, "Under the reign of Genghis' third son, Ögedei Khan, the Jin fell.", None)[0] == 1.0
    assert number_agreement(son, "Under the reign of Genghis' fourth son, Tolui, the Jin fell.", None)[0] == 0.0
    layers = profile_question("DEC originally had 3 layers but evolved into how many layers?")
    assert number_agreement(layers, "Initially built with three layers, it later evolved into seven.", None)[0] == 1.0
    parties = profile_question("What had the 2 parties agreed on before 1973?")
    assert number_agreement(parties, "Both parties had agreed on equality before 1973.", None)[0] == 1.0
    # Only the evidence is read that way: a question's "first" is no constraint, and a spelled-out word
    # does not stop a figure of the sentence before from counting.
    assert not profile_question("What was the first German settlement?").numbers
    cup = profile_question("Who scored the decisive goal in the 2015 cup final?")
    before = "Yarrow won the 2015 cup final in Valemont."
    assert number_agreement(cup, "Maya Brennan scored the first goal.", before) == (1.0, True, False)


def test_the_version_may_come_from_the_heading_the_sentence_stands_under() -> None:
    from ragcli.generation.evidence import number_agreement

    profile = profile_question("What changed in version 3.1.4?")
    heading = "Aurora Firmware Release Notes > Version 3.1.4 (2024-05-02) > Fixed"
    sentence = "Wi-Fi no longer drops connections when more than 4 clients are connected."
    assert number_agreement(profile, sentence, None, heading) == (1.0, False, True)
    assert number_agreement(profile, sentence, None, heading.replace("3.1.4", "3.2.0"))[0] == 0.0
    found = SentenceEvidence(1, 0, sentence, 0.5, heading=heading)
    add_constraint_signals(found, profile, sentence)
    assert found.numbers == 1.0 and found.heading_needed  # shown as "… Version 3.1.4 … > Fixed — Wi-Fi …"
    # A year the sentence names itself is not overruled by its heading's.
    dated = profile_question("What was fixed in 2024?")
    assert number_agreement(dated, "In 2023 the drift was fixed.", None, heading)[0] == 0.0


def test_the_cross_encoder_reads_only_the_heading_parts_that_hold_the_question_words() -> None:
    from ragcli.generation.evidence import relevance_text
    from ragcli.generation.extractive import content_terms, heading_words_of_question

    question = "How do I reset the controller?"
    text = "To restore the factory settings, hold the SET and MENU keys together for 8 seconds."
    heading = "Troubleshooting the Aurora AM-5 > Factory reset"
    lead = heading_words_of_question(set(content_terms(question)), heading, text)
    assert lead == "Factory reset"
    found = SentenceEvidence(1, 0, text, 0.5, heading=heading, heading_needed=True, heading_lead=lead)
    assert relevance_text(found) == f"Factory reset — {text}"
    assert heading_words_of_question(set(content_terms("How long do the keys stay down?")), heading, text) is None


def test_a_sentence_that_only_restates_the_question_has_no_answer_of_the_type_asked() -> None:
    profile = profile_question("When was the Aurora prize founded?")
    restated = SentenceEvidence(1, 0, "The Aurora prize was founded by the city council.", 0.9)
    add_constraint_signals(restated, profile, restated.text)
    assert restated.answer_type == 0.0


# ----- polarity: a negation or an opposite the evidence does not share --------------------------
@pytest.mark.parametrize(
    ("question", "sentence", "mismatch"),
    [
        ("Who never issued the Royal Proclamation of 1763?", "King George III issued the Royal Proclamation of 1763.", 1.0),
        ("Which country did Japan not force into an alliance?", "Japan pressured Thailand into an alliance.", 1.0),
        ("Why can't a value have two owners?", "A value cannot have two owners at the same time.", 0.0),
        # A user's situation, not an adversarial edit: the answer need not repeat the negation.
        ("Why can't I use a value after it has been moved?", "The move prevents us from using s again.", 0.0),
        ("What happens if I don't call join?", "The main thread may end before the spawned one.", 0.0),
        ("Can a struct field not be public?", "The struct's fields are still private.", 0.0),
        # A denial without a negation word agrees with a negated question.
        ("What did the treaty not allow?", "The treaty prevented settlement west of the mountains.", 0.0),
        ("Who issued the Royal Proclamation of 1763?", "King George III issued the Royal Proclamation of 1763.", 0.0),
        # A negated sentence may answer a plain question ("What does Rust not have?" is not asked).
        ("Does Rust have a garbage collector?", "Rust has no garbage collector.", 0.0),
        # "fail to", "unable", "impossible" deny as "not" does.
        ("When did Kublai fail to move the Mongol capital?", "Kublai moved the Mongol capital to Khanbaliq in 1264.", 1.0),
        ("Who was unable to cross the river?", "The army crossed the river at dawn.", 1.0),
        # A refusal, a ban or an exception denies too: it answers "not allowed", "not conquered".
        (
            "What persons were not allowed to settle in New France?",
            "The French crown's refusal to allow non-Catholics to settle in New France slowed its growth.",
            0.0,
        ),
        ("What region was not conquered by the tribes?", "The conquest was complete, excluding only Iberia.", 0.0),
        ("Which books were not allowed in schools?", "Schools banned three novels in 1950.", 0.0),
        ("Who failed to reach the summit in 1924?", "Mallory and Irvine failed to return from the summit in 1924.", 0.0),
        ("When did Kublai fail to move the Mongol capital?", "Kublai's first move of the capital did not succeed in 1260.", 0.0),
    ],
)
def test_a_negation_the_sentence_lacks_is_a_mismatch(question: str, sentence: str, mismatch: float) -> None:
    from ragcli.generation.polarity import negation_mismatch

    assert negation_mismatch(question, sentence) == mismatch


def test_a_heading_that_denies_answers_a_negated_question() -> None:
    from ragcli.generation.polarity import negation_mismatch

    question, listed = "What does the warranty not cover?", "damage from salt water or sand"
    assert negation_mismatch(question, listed, "Warranty for the Aurora AM-5 > Exclusions") == 0.0
    assert negation_mismatch(question, listed, "Warranty for the Aurora AM-5 > Coverage") == 1.0
    # Only the sentence's own section counts, not a denying word higher up the path.
    assert negation_mismatch(question, listed, "Limitations > Coverage") == 1.0


@pytest.mark.parametrize(
    ("question", "sentence", "clash"),
    [
        ("What kind of marriage became uncommon in the Jin dynasty?", "Interethnic marriage became common at this time.", 1.0),
        ("Who decreased British military resources?", "William Pitt significantly increased British military resources.", 1.0),
        ("The parties that hold the minority of seats form what?", "The parties that hold the majority of seats form the government.", 1.0),
        ("When was the company unestablished?", "In 1599 the company was established.", 1.0),
        ("What discouraged trade under the Yuan?", "The Ilkhanate encouraged trade and commerce across Asia.", 1.0),
        ("The referendum succeeded in what year?", "The 1979 referendum on a devolved assembly failed.", 1.0),
        # Size words are left out: "Where did France send a large number of settlers?" is answered by "France
        # sent small numbers of settlers, except to Algeria".
        ("Where did France send a large number of settlers?", "France sent small numbers of settlers.", 0.0),
        # The word itself is there: the opposite elsewhere in the sentence is not a clash.
        ("Who won the first election?", "Lopez won the first election and lost the last one.", 0.0),
        # The question names both sides: a sentence about one of them answers it.
        ("What is the difference between the stack and the heap?", "The heap is less organized.", 0.0),
        ("When did the Normans first arrive in Italy?", "The Normans first arrived in Italy in 999.", 0.0),
        # "Western" is the West's: no opposite of the question's "eastern" when the question names the West.
        ("What did the West use to justify control over eastern lands?", "Orientalism justified Western rule.", 0.0),
        ("What did the West use to justify control over eastern lands?", "It justified rule in the west.", 0.0),
        ("Which lands in the eastern part became poorer?", "The western part grew poorer.", 1.0),
        # A question that offers a choice is answered by either side of its comparison.
        ("Which is more costly, formal or informal rule?", "Informal rule is less costly than formal rule.", 0.0),
        ("Which rule is more costly?", "Informal rule is less costly than formal rule.", 1.0),
        # Words that only look prefixed ("unless", "under") are not negations of "less" or "der".
        ("What happens unless the value is moved?", "Less memory is used when the value is moved.", 0.0),
        # A negated question's word agrees with the sentence's prefixed one: "don't qualify" is "unqualified".
        ("Which schema do my tables go to if I don't qualify the name?", "Unqualified names go to public.", 0.0),
        ("Which schema do my tables go to if I qualify the name?", "Unqualified names go to public.", 1.0),
    ],
)
def test_a_sentence_that_says_the_opposite_clashes(question: str, sentence: str, clash: float) -> None:
    from ragcli.generation.polarity import opposite_clash

    assert opposite_clash(question, sentence) == clash


def test_polarity_signals_are_part_of_a_sentences_evidence() -> None:
    from ragcli.generation.evidence import sentence_signals

    question = "Who never issued the Royal Proclamation of 1763?"
    sentence = SentenceEvidence(1, 0, "King George III issued the Royal Proclamation of 1763.", 0.9)
    add_constraint_signals(sentence, profile_question(question), sentence.text)
    assert sentence_signals(sentence)["negation"] == 1.0
    assert sentence_signals(sentence)["opposite"] == 0.0


# ----- the gate with the real cross-encoder ------------------------------------------------------
@pytest.fixture(scope="module")
def cross_encoder():  # type: ignore[no-untyped-def]
    from ragcli.config import RerankConfig
    from ragcli.rerank.onnx import OnnxCrossEncoder

    return OnnxCrossEncoder.from_config(RerankConfig())  # type: ignore[call-arg]


PRIZES = [
    _item(1, "The Aurora prize is awarded every year to a young composer. In 2018 the Aurora prize was "
             "won by Maria Lopez for her string quartet. In 2019 the Aurora prize was won by Ken Adams "
             "for his first symphony.", "Aurora prize"),
    _item(2, "The prize money is 20,000 euros. The jury has five members, chosen by the city council.",
          "Aurora prize"),
]


@pytest.mark.slow
def test_the_gate_picks_the_sentence_that_respects_the_year(cross_encoder) -> None:  # type: ignore[no-untyped-def]
    scorer = EvidenceScorer(cross_encoder)
    assessment = scorer.assess("Who won the Aurora prize in 2019?", PRIZES)
    assert not assessment.refused
    assert "Ken Adams" in assessment.sentences[0].text
    answer = ExtractiveGenerator().compose(assessment.sentences).answer
    assert "Ken Adams" in answer


@pytest.mark.slow
def test_the_gate_refuses_an_off_topic_question(cross_encoder) -> None:  # type: ignore[no-untyped-def]
    assessment = EvidenceScorer(cross_encoder).assess("What is the capital of France?", PRIZES)
    assert assessment.refused
    assert assessment.confidence < 0.5


@pytest.mark.slow
def test_a_year_the_documents_do_not_cover_is_a_constraint_mismatch(cross_encoder) -> None:  # type: ignore[no-untyped-def]
    assessment = EvidenceScorer(cross_encoder).assess("Who won the Aurora prize in 2023?", PRIZES)
    assert assessment.refused
    assert assessment.refused_reason == CONSTRAINT_MISMATCH


PROCLAMATION = [
    _item(1, "Following the treaty, King George III issued the Royal Proclamation of 1763, which outlined "
             "the division of the territory gained from France. Interethnic marriage between settlers and "
             "the local population became common at this time.", "Seven Years' War"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "Who never issued the Royal Proclamation of 1763?",
        "What kind of marriage became uncommon at this time?",
        "Who failed to issue the Royal Proclamation of 1763?",
        "What kind of marriage became rare at this time?",
    ],
)
def test_a_question_the_evidence_contradicts_is_refused(cross_encoder, question: str) -> None:  # type: ignore[no-untyped-def]
    assessment = EvidenceScorer(cross_encoder).assess(question, PROCLAMATION)
    assert assessment.refused
    assert assessment.refused_reason == CONSTRAINT_MISMATCH


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    ["Who issued the Royal Proclamation of 1763?", "What kind of marriage became common at this time?"],
)
def test_the_same_questions_without_the_edit_are_answered(cross_encoder, question: str) -> None:  # type: ignore[no-untyped-def]
    assessment = EvidenceScorer(cross_encoder).assess(question, PROCLAMATION)
    assert not assessment.refused, assessment


@pytest.mark.slow
def test_a_denied_or_reversed_question_is_refused_through_the_pipeline(tmp_path: Path) -> None:
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.query import QueryEngine
    from tests.conftest import make_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "yuan.md").write_text(
        "# Yuan dynasty\n\nKublai moved the Mongol capital from Karakorum to Khanbaliq in 1264. The "
        "communications with the Ilkhanate encouraged trade and commerce across Asia.\n"
    )
    settings = make_settings(tmp_path / "state", RAGCLI_CACHE__ENABLED="false")
    Ingestor(settings).run([docs])
    engine = QueryEngine(settings)
    for edited in ("When did Kublai fail to move the Mongol capital?", "What discouraged trade across Asia?"):
        refused = engine.ask(edited)
        assert refused.refused and refused.refused_reason == CONSTRAINT_MISMATCH, refused.answer
    answered = engine.ask("When did Kublai move the Mongol capital?")
    assert not answered.refused and "1264" in answered.answer
    assert not engine.ask("What encouraged trade across Asia?").refused


def test_names_match_without_accents() -> None:
    profile = profile_question("When did Tugh Temur die, and who followed Ogedei?")
    sentence = SentenceEvidence(1, 0, "Tugh Temür died in 1332.", 0.5)
    add_constraint_signals(sentence, profile, "Yuan dynasty. Tugh Temür died in 1332. Ögedei Khan ruled before.")
    assert sentence.names == 1.0


def test_a_possessive_name_is_found_in_the_passage() -> None:
    profile = profile_question("What was one of the Norman's major exports?")
    assert "norman" in profile.names
    sentence = SentenceEvidence(1, 0, "Normandy exported wool and wine.", 0.5)
    add_constraint_signals(sentence, profile, "Normans. Normandy exported wool and wine.")
    assert sentence.names == 1.0


# ----- what an answer may show -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("> Note: The borrow checker runs at compile time.", "The borrow checker runs at compile time."),
        ('<Listing number="15-7" file-name="src/main.rs"> Box<T> points to the heap.', "Box<T> points to the heap."),
        ("- **Warning:** never unwrap in a library.", "never unwrap in a library."),
        ("1. Install the toolchain first.", "Install the toolchain first."),
    ],
)
def test_markup_is_never_part_of_an_answer_sentence(raw: str, clean: str) -> None:
    assert clean_sentence(raw) == clean


def test_headings_and_code_are_never_answer_sentences() -> None:
    from ragcli.generation.extractive import lexical_sentences

    text = "## Ownership rules\n\n```rust\nlet s = String::from(\"hello\");\n```\n\nEach value in Rust has an owner."
    sentences = [s.text for s in lexical_sentences("What are the ownership rules in Rust?", [_item(1, text)])]
    assert sentences == ["Each value in Rust has an owner."]


def test_a_question_in_the_documents_is_never_an_answer_sentence() -> None:
    from ragcli.generation.extractive import lexical_sentences

    faq = (
        "Which operating systems does the ASCOM driver support?\n\n"
        "The Lumenvale ASCOM driver runs on Windows 10 and 11. Linux users can use the INDI driver."
    )
    sentences = [s.text for s in lexical_sentences("Does the ASCOM driver work on Linux?", [_item(1, faq)])]
    assert sentences == [
        "The Lumenvale ASCOM driver runs on Windows 10 and 11.",
        "Linux users can use the INDI driver.",
    ]


def test_headings_the_loader_rendered_as_plain_lines_are_headings_not_answers() -> None:
    # Rendered Markdown/HTML keeps a heading as a line of its own, without its "#".
    from ragcli.generation.extractive import lexical_sentences

    text = (
        "Error codes\n\nE17: RA motor stall\n\nThe right ascension motor could not turn.\n\n"
        "E23: GPS fix timeout\n\nThe built-in GPS receiver found no fix within 180 seconds."
    )
    passage = Passage("c1", "d1", "/docs/t.md", "Troubleshooting", "Troubleshooting > Error codes > E17: RA motor stall",
                      None, 0, text, 1.0)
    found = {s.text: s.heading for s in lexical_sentences("What does E23 mean?", [ContextItem(1, text, passage)])}
    assert found == {
        "The right ascension motor could not turn.": "Troubleshooting > Error codes > E17: RA motor stall",
        # the next section of the same level, which the chunk ran on into
        "The built-in GPS receiver found no fix within 180 seconds.": "Troubleshooting > Error codes > E23: GPS fix timeout",
    }


def _headings_of_sentences(question: str, text: str) -> dict[str, str | None]:
    """Each answer candidate of `text` with the heading it stands under."""
    from ragcli.generation.extractive import lexical_sentences

    return {s.text: s.heading for s in lexical_sentences(question, [_item(1, text)])}


def test_heading_lines_glued_to_their_paragraph_are_headings_not_part_of_the_answer() -> None:
    # PDF and plain text: a heading is a short line right above its text, with no blank line between.
    text = (
        "Aurora AM-5 Field Manual\nQuick start in the field\nLevel the tripod to within 0.5 degrees.\n\n"
        "Cold weather operation\nThe AM-5 is rated for operation down to -20 degrees Celsius.\n\n"
        "In 2018 the company moved to\nKongsberg and hired its 50th employee."
    )
    found = _headings_of_sentences("How cold can the AM-5 operate?", text)
    assert found["The AM-5 is rated for operation down to -20 degrees Celsius."] == "Cold weather operation"
    assert found["Level the tripod to within 0.5 degrees."] == "Quick start in the field"
    # A line that ends on a word needing the next one is a wrapped sentence, not a heading.
    assert "In 2018 the company moved to Kongsberg and hired its 50th employee." in found


def test_a_command_line_is_neither_a_heading_nor_an_answer() -> None:
    # HTML <pre> and Markdown code render as plain lines: "pg_dump -Fc dbname > filename" alone.
    from ragcli.generation.extractive import lexical_sentences, previous_sentence

    text = (
        "The following command dumps a database using the custom dump format:\n\n"
        "pg_dump -Fc dbname > filename\n\n"
        "A custom-format dump is not a script for psql.\n\nTip\n\nThere is no performance difference."
    )
    found = _headings_of_sentences("How do I dump a database with pg_dump?", text)
    assert "pg_dump -Fc dbname > filename" not in found and "Tip" not in found
    assert found["A custom-format dump is not a script for psql."] is None  # not led by the command
    assert found["There is no performance difference."] is None  # "Tip" is a label, not a heading
    table = "Levels are in the table.\n\nLevel | Dirty Read\nRead committed | Not possible\n\nThis is why."
    assert previous_sentence(table, "This is why.") is None  # a table is not "the sentence before"
    # A listing: most of its lines read as code.
    listing = "Example:\n\nCREATE TABLE t (b varchar(5));\nINSERT INTO t VALUES ('ok');\nERROR: value too long"
    assert [s.text for s in lexical_sentences("What is a varchar?", [_item(1, listing)])] == []
    # A compressed passage can join prose to a table's last row; the row and the prose part again.
    joined = "Level | Phantom Read\nRepeatable read | Not possible\nIn PostgreSQL, you can request any of four levels."
    found = {s.text for s in lexical_sentences("Which isolation levels does PostgreSQL offer?", [_item(1, joined)])}
    assert {"Repeatable read: Not possible", "In PostgreSQL, you can request any of four levels."} <= found


def test_list_items_are_answer_candidates_of_their_own_without_their_markers() -> None:
    from ragcli.generation.extractive import lexical_sentences

    # As the HTML and Markdown loaders now write them: without the marker, the items were one "sentence".
    listed = (
        "Exclusions\n\n• damage from salt water or sand\n• repairs by anyone other than a service centre\n"
        "2. damage from power supplies above 15 V"
    )
    found = [s.text for s in lexical_sentences("What damage does the warranty exclude?", [_item(1, listed)])]
    assert sorted(found) == [
        "damage from power supplies above 15 V",
        "damage from salt water or sand",
        "repairs by anyone other than a service centre",
    ]


def test_a_sentence_ending_in_a_colon_brings_the_command_it_introduces() -> None:
    from ragcli.generation.extractive import introduced_example

    intro = "To create a new database, in this example named mydb, you use the following command:"
    text = f"{intro}\n\n$ createdb mydb\n\nIf this produces no response then this step was successful."
    assert introduced_example(text, intro) == "$ createdb mydb"
    fenced = "Run it using cargo run:\n\n```console\n$ cargo run\n```\n\nDone."
    assert introduced_example(fenced, "Run it using cargo run:") == "$ cargo run"
    # Not a listing, not prose, not without the colon.
    listing = "Run these:\n\n```console\n$ cargo build\n$ cargo test\n```"
    assert introduced_example(listing, "Run these:") is None
    assert introduced_example("The rules are:\n\nEach value has an owner.", "The rules are:") is None
    assert introduced_example(text, "If this produces no response then this step was successful.") is None
    best = SentenceEvidence(1, 0, intro, 1.0, score=3.0, example="$ createdb mydb")
    assert ExtractiveGenerator().compose([best]).answer == f"{intro} `$ createdb mydb` [1]"


def test_a_sentence_that_points_back_does_not_bring_a_heading_with_it() -> None:
    from ragcli.generation.extractive import previous_sentence

    text = "Vectors hold values.\n\nReading Elements of Vectors\n\nThere are two ways to reference a value."
    assert previous_sentence(text, "There are two ways to reference a value.") is None
    assert previous_sentence("Vectors hold values. There are two ways.", "There are two ways.") == "Vectors hold values."


def test_a_table_row_is_a_fact_of_its_own() -> None:
    from ragcli.generation.extractive import lexical_sentences

    html_table = (
        "Property | Value\nPayload capacity without counterweight | 15 kg\nMount head weight | 4.2 kg\n\n"
        "Pipe the list through `sort | uniq` to count the mount types."
    )
    markdown_table = "| Code | Meaning | Fix |\n|---|---|---|\n| E23 | GPS fix timeout | move the mount |"
    sentences = {s.text for s in lexical_sentences("What payload can it carry?", [_item(1, html_table)])}
    assert {"Payload capacity without counterweight: 15 kg", "Mount head weight: 4.2 kg"} <= sentences
    assert "Pipe the list through `sort | uniq` to count the mount types." in sentences  # prose with a pipe
    rows = [s.text for s in lexical_sentences("What does E23 mean?", [_item(1, markdown_table)])]
    assert rows == ["Code: E23; Meaning: GPS fix timeout; Fix: move the mount"]  # the header names each cell
    # The same table as the Markdown loader renders it, under a paragraph it must not run on from.
    from ragcli.loaders.markdown import MarkdownLoader

    source = f"# Errors\n\nSome codes the mount shows.\n\n{markdown_table}\n| E17 | RA motor stall | balance it |\n"
    rendered = MarkdownLoader().load(Path("errors.md"), source.encode()).text
    rows = [s.text for s in lexical_sentences("What does E17 mean?", [_item(1, rendered)])]
    assert rows == [
        "Some codes the mount shows.",
        "Code: E23; Meaning: GPS fix timeout; Fix: move the mount",
        "Code: E17; Meaning: RA motor stall; Fix: balance it",
    ]


def test_two_sentences_under_one_heading_show_it_once() -> None:
    heading = "Troubleshooting > Error codes > E23: GPS fix timeout"
    first = SentenceEvidence(1, 0, "The GPS receiver found no fix within 180 seconds.", 1.0, score=3.0,
                             heading=heading, heading_needed=True)
    second = SentenceEvidence(1, 0, "Move the mount away from walls.", 1.0, score=2.5, heading=heading,
                              heading_needed=True)
    answer = ExtractiveGenerator().compose([first, second]).answer
    assert answer.count("E23: GPS fix timeout") == 1
    assert answer.endswith("[1] Move the mount away from walls. [1]")


def test_a_sentence_that_points_back_brings_the_one_before_it() -> None:
    best = SentenceEvidence(
        1, 0, "It is a crab with a friendly smile.", 1.0, score=3.0, previous="Ferris is the unofficial mascot of Rust."
    )
    answer = ExtractiveGenerator().compose([best]).answer
    assert answer == "Ferris is the unofficial mascot of Rust. [1] It is a crab with a friendly smile. [1]"


def test_a_sentence_already_shown_with_its_heading_is_not_repeated_before_the_next_one() -> None:
    first = SentenceEvidence(
        1, 0, "Informal rule is less costly.", 1.0, score=3.0, heading="Imperialism", heading_needed=True
    )
    second = SentenceEvidence(
        1, 0, "This is because control is spread subtly.", 1.0, score=2.5, previous="Informal rule is less costly."
    )
    answer = ExtractiveGenerator().compose([first, second]).answer
    assert answer == "Imperialism — Informal rule is less costly. [1] This is because control is spread subtly. [1]"


# ----- citations checked after generation ---------------------------------------------------------
def test_citations_are_verified_against_the_cited_passage() -> None:
    context = [_item(1, "Warsaw is the capital of Poland and has 1.8 million inhabitants."),
               _item(2, "Krakow was the royal capital until 1596.")]
    share, unsupported = verify_citations(
        "Warsaw is the capital of Poland [1]. It has 1.8 million inhabitants [1]. "
        "Krakow has 4 million inhabitants [2].",
        context,
    )
    assert unsupported == ["Krakow has 4 million inhabitants ."] or len(unsupported) == 1
    assert share == pytest.approx(2 / 3, abs=1e-3)


def test_a_sentence_citing_the_wrong_passage_is_unsupported() -> None:
    context = [_item(1, "Warsaw is the capital of Poland."), _item(2, "Rust has no garbage collector.")]
    share, unsupported = verify_citations("Warsaw is the capital of Poland [2].", context)
    assert share == 0.0 and len(unsupported) == 1


def test_a_sentence_led_by_its_heading_is_checked_against_the_heading_too() -> None:
    text = "The default Wi-Fi password is northstar-58."
    heading = "Aurora AM-5 Setup Guide > Wireless control > Joining the mount's network"
    passage = Passage("c1", "d1", "/docs/setup.md", "Aurora AM-5 Setup Guide", heading, None, 0, text, 1.0)
    shown = f"{led_by_heading(heading, text)} [1]"  # as the extractive answer shows it
    assert verify_citations(shown, [ContextItem(1, text, passage)]) == (1.0, [])
    assert verify_citations(f"{heading} — The password is 12345. [1]", [ContextItem(1, text, passage)])[0] == 0.0


def test_each_extractive_sentence_keeps_the_marker_after_its_full_stop() -> None:
    """The README's own question: the splitter put the first sentence's "[1]" at the start of the second,
    and the first was reported as citing nothing ("Not supported by its source")."""
    text = (
        "The built-in GPS receiver found no fix within 180 seconds. Move the mount away from walls and "
        "metal roofs, or enter the site coordinates by hand under Menu > Site."
    )
    heading = "Troubleshooting the Aurora AM-5 > Error codes > E23: GPS fix timeout"
    passage = Passage("c1", "d1", "/docs/t.md", "Troubleshooting the Aurora AM-5", heading, None, 0, text, 1.0)
    answer = (
        f"{heading} — The built-in GPS receiver found no fix within 180 seconds. [1] {heading} — Move the "
        "mount away from walls and metal roofs, or enter the site coordinates by hand under Menu > Site. [1]"
    )
    assert verify_citations(answer, [ContextItem(1, text, passage)]) == (1.0, [])
    share, unsupported = verify_citations(answer.replace("180", "90", 1), [ContextItem(1, text, passage)])
    assert share == 0.5 and unsupported[0].endswith("within 90 seconds.")


# ----- the corpus journal -------------------------------------------------------------------------
def test_an_open_generation_is_not_settled(tmp_path: Path) -> None:
    journal = CorpusJournal(tmp_path / "corpus.sqlite3")
    assert journal.settled() == 0
    journal.record(["doc-a"], {"aurora", "prize"})
    assert journal.current() == 1
    assert journal.settled() == 0  # an ingest is writing generation 1
    journal.finish()
    assert journal.settled() == 1


def test_new_documents_are_found_by_the_words_they_hold(tmp_path: Path) -> None:
    journal = CorpusJournal(tmp_path / "corpus.sqlite3")
    journal.record(["doc-a"], {"aurora", "prize"})
    journal.finish()
    later = CorpusJournal(tmp_path / "corpus.sqlite3")
    later.record(["doc-b"], {"symphony", "quartet"})
    later.finish()
    assert later.terms_changed_since(1, [term_hash("quartet")])
    assert not later.terms_changed_since(1, [term_hash("aurora")])
    assert not later.terms_changed_since(2, [term_hash("quartet")])


def test_a_killed_runs_generation_is_closed_by_the_next_run(tmp_path: Path) -> None:
    killed = CorpusJournal(tmp_path / "corpus.sqlite3")
    killed.record(["doc-a"], {"aurora"})  # never finished
    nxt = CorpusJournal(tmp_path / "corpus.sqlite3")
    assert nxt.settled() == 0
    nxt.finish()
    assert nxt.settled() == 1


# ----- end to end: the never-stale rule through the CLI, in real processes -----------------------------
def _cli(home: Path, *args: str) -> dict:  # type: ignore[type-arg]
    import json
    import os
    import subprocess
    import sys

    env = os.environ | {"RAGCLI_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "ragcli", *args], env=env, capture_output=True, text=True, timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else {}


AURORA_2019 = "In 2019 the Aurora composition prize was won by Ken Adams for his first symphony."


@pytest.mark.slow
def test_a_refusal_is_not_served_after_the_answer_arrives(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text("# Garden\n\nTomatoes need six hours of sun a day and regular water.\n")
    home = tmp_path / "state"
    _cli(home, "ingest", str(docs), "--json")
    question = "Who won the Aurora composition prize in 2019?"
    first = _cli(home, "ask", question, "--json")
    assert first["refused"] and first["refused_reason"]
    again = _cli(home, "ask", question, "--json")
    assert again["cache"] == "exact" and again["refused"]  # unchanged corpus: the refusal may be served

    (docs / "prize.md").write_text(f"# Aurora composition prize\n\n{AURORA_2019}\n")
    _cli(home, "ingest", str(docs), "--json")
    answered = _cli(home, "ask", question, "--json")
    assert answered["cache"] is None
    assert not answered["refused"] and "Ken Adams" in answered["answer"]
    # The event log keeps why each answer was refused or trusted, for `history` and `stats`.
    logged = {row["request_id"]: row for row in _cli(home, "history", "--json")}
    assert logged[first["request_id"]]["refused_reason"] == first["refused_reason"]
    assert logged[answered["request_id"]]["confidence"] == pytest.approx(answered["confidence"])


@pytest.mark.slow
def test_a_new_document_that_could_join_the_candidates_invalidates_a_cached_answer(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "prize.md").write_text(f"# Aurora composition prize\n\n{AURORA_2019}\n")
    home = tmp_path / "state"
    _cli(home, "ingest", str(docs), "--json")
    question = "Who won the Aurora composition prize in 2019?"
    assert not _cli(home, "ask", question, "--json")["refused"]
    assert _cli(home, "ask", question, "--json")["cache"] == "exact"

    # A document sharing no word with the question cannot enter its candidates: still served.
    (docs / "garden.md").write_text("# Garden\n\nTomatoes need six hours of sun a day and regular water.\n")
    _cli(home, "ingest", str(docs), "--json")
    assert _cli(home, "ask", question, "--json")["cache"] == "exact"

    # One about the prize could: the next ask searches again and sees the correction.
    (docs / "correction.md").write_text(
        "# Correction\n\nThe 2019 Aurora composition prize was withdrawn from Ken Adams and given to Lena Fox.\n"
    )
    _cli(home, "ingest", str(docs), "--json")
    fresh = _cli(home, "ask", question, "--json")
    assert fresh["cache"] is None


# ----- the gate in front of an LLM provider ------------------------------------------------------------
@pytest.mark.slow
def test_a_refused_question_costs_no_generation_call(llm, docs_tree: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.query import QueryEngine
    from tests.conftest import LLM_KEY_ENV, make_settings

    settings = make_settings(
        tmp_path / "state",
        RAGCLI_GENERATION__PROVIDER="openai",
        RAGCLI_GENERATION__BASE_URL=llm.base_url,
        RAGCLI_GENERATION__API_KEY_ENV=LLM_KEY_ENV,
        RAGCLI_GENERATION__MODEL="smollm2",
        RAGCLI_GENERATION__MAX_TOKENS="24",
    )
    Ingestor(settings).run([docs_tree])
    engine = QueryEngine(settings)
    before = llm.requests
    refused = engine.ask("What is the capital of France?")
    assert refused.refused and refused.refused_reason
    assert llm.requests == before
    answered = engine.ask("What does error code E23 mean?")
    assert not answered.refused
    assert llm.requests == before + 1
    assert answered.citations_verified is None or 0.0 <= answered.citations_verified <= 1.0


def test_an_answer_that_cites_nothing_is_flagged_where_a_reader_sees_it(capsys: pytest.CaptureFixture[str]) -> None:
    from ragcli.app.ask import _print_trust

    uncited = {"refused": False, "citations": [{"n": 1, "cited": False}, {"n": 2, "cited": False}]}
    _print_trust(uncited)
    assert "Cites none of its sources" in capsys.readouterr().err
    for quiet in ({**uncited, "citations": [{"n": 1, "cited": True}]}, {**uncited, "refused": True}):
        _print_trust(quiet)
        assert "Cites none" not in capsys.readouterr().err
