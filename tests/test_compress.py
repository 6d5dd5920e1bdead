"""Context compression: duplicates, merging of neighbouring chunks, sentence selection, the token budget,
and the sentence splitter it stands on. Texts are chunked by the real chunkers and counted with tiktoken."""

from __future__ import annotations

import importlib.util
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli.chunking.fixed import FixedTokenChunker
from ragcli.chunking.recursive import RecursiveChunker
from ragcli.config import CompressionConfig
from ragcli.models import Passage
from ragcli.retrieval.compress import (
    MIN_OVERLAP_CHARS,
    CompressedContext,
    compress,
    join_overlapping,
    truncate_to_tokens,
)
from ragcli.retrieval.sentences import sentence_spans, split_sentences
from ragcli.tokens import count_tokens

if TYPE_CHECKING:
    from tests.conftest import CountingEmbedder

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FILLER = [
    "Invoices are archived for seven years in the finance department.",
    "The cafeteria serves soup on Tuesdays and Thursdays.",
    "Network switches are replaced every five years.",
    "Visitors must sign in at the front desk before entering.",
    "Quarterly reports are published in the second week of the month.",
    "Parking permits are renewed each January.",
    "The library closes at six in the evening on weekdays.",
    "Printers on the third floor need a badge to release jobs.",
    "Holiday requests go to the team lead two weeks in advance.",
    "The elevator in building C is inspected every spring.",
]
NEEDLE = "The launch code for the orbital station is TANGERINE-42."


def config(budget: int = 1500, **overrides: object) -> CompressionConfig:
    return CompressionConfig(budget_tokens=budget, **overrides)  # type: ignore[arg-type]


def passage(
    text: str,
    chunk_id: str,
    doc_id: str = "doc",
    chunk_index: int = 0,
    heading: str | None = None,
    page: int | None = None,
) -> Passage:
    return Passage(chunk_id, doc_id, f"{doc_id}.md", doc_id.title(), heading, page, chunk_index, text, 1.0)


def chunk_passages(doc: str, chunks: Sequence[tuple[int, int]], doc_id: str = "doc") -> list[Passage]:
    return [passage(doc[a:b], f"{doc_id}-{i}", doc_id, i) for i, (a, b) in enumerate(chunks)]


SUBJECTS = [
    "invoice",
    "cafeteria",
    "switch",
    "visitor",
    "report",
    "permit",
    "library",
    "printer",
    "elevator",
    "badge",
    "laptop",
    "desk",
    "window",
    "heater",
    "fridge",
    "locker",
    "mailbox",
    "stapler",
    "plant",
]
VERBS = ["checked", "cleaned", "renewed", "painted", "replaced", "audited", "moved", "counted", "repaired"]
PLACES = ["north wing", "basement", "lobby", "annex", "warehouse", "roof terrace", "garage", "atrium"]


def filler_sentence(rng: random.Random) -> str:
    return (
        f"The {rng.choice(SUBJECTS)} in the {rng.choice(PLACES)} is {rng.choice(VERBS)} "
        f"every {rng.randint(2, 90)} days by team {rng.choice('ABCDEFGHJK')}{rng.randint(1, 99)}."
    )


def filler_document(sentences: int, seed: int) -> str:
    """Paragraphs of four plain sentences; none shares a content word with the questions asked here."""
    rng = random.Random(seed)
    paragraphs = [" ".join(filler_sentence(rng) for _ in range(4)) for _ in range(0, sentences, 4)]
    return "\n\n".join(paragraphs)


def total_tokens(result: CompressedContext) -> int:
    return sum(count_tokens(item.text) for item in result.items)


def assert_numbered(result: CompressedContext) -> None:
    assert [item.n for item in result.items] == list(range(1, len(result.items) + 1))
    assert sorted(result.parts) == [item.n for item in result.items]


# ----- duplicates ---------------------------------------------------------------------------------
def test_the_same_chunk_twice_is_kept_once() -> None:
    a = passage("Pumps move water. " * 5, "a", "pumps")
    b = passage("Valves hold pressure. " * 5, "b", "valves")
    result = compress("pumps", [a, b, a], config())
    assert result.dropped_duplicates == 1
    assert [item.passage.chunk_id for item in result.items] == ["a", "b"]
    assert_numbered(result)


def test_near_identical_text_from_another_document_is_dropped() -> None:
    words = [f"word{i}" for i in range(120)]
    original = " ".join(words) + "."
    edited = " ".join([*words[:60], "CHANGED", *words[61:]]) + "."
    other = " ".join(reversed(words)) + "."  # the same words in another order: not a duplicate
    passages = [passage(original, "a", "one"), passage(edited, "b", "two"), passage(other, "c", "three")]
    result = compress("word1", passages, config(budget=5000))
    assert result.dropped_duplicates == 1
    assert [item.passage.chunk_id for item in result.items] == ["a", "c"]


def test_a_lower_threshold_drops_less_similar_text() -> None:
    base = [f"term{i}" for i in range(100)]
    a = " ".join(base)
    b = " ".join(base[:70] + [f"other{i}" for i in range(30)])
    passages = [passage(a, "a", "x"), passage(b, "b", "y")]
    assert compress("q", passages, config(dedupe_threshold=0.9)).dropped_duplicates == 0
    assert compress("q", passages, config(dedupe_threshold=0.5)).dropped_duplicates == 1


# ----- merging ------------------------------------------------------------------------------------
def test_overlapping_neighbours_merge_into_the_original_text() -> None:
    doc = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(40))
    spans = FixedTokenChunker(60, 15).split(doc)
    assert len(spans) >= 4
    passages = chunk_passages(doc, [(s.start, s.end) for s in spans])
    shuffled = list(reversed(passages))
    result = compress("topic", shuffled, config(budget=5000))
    assert len(result.items) == 1
    assert result.items[0].text == doc  # every overlap written exactly once
    assert result.merged == len(passages) - 1
    assert result.items[0].passage.chunk_id == "doc-0"  # cited where the text starts
    assert [p.chunk_id for p in result.parts[1]] == [p.chunk_id for p in passages]


def test_only_consecutive_chunks_of_one_section_merge() -> None:
    doc = " ".join(f"Line {i} of the manual describes step {i}." for i in range(30))
    spans = [(s.start, s.end) for s in FixedTokenChunker(40, 8).split(doc)]
    c = chunk_passages(doc, spans)
    elsewhere = passage(c[1].text, "other-1", "other", 1)  # same text and index, another document
    moved = passage(c[3].text, "doc-3-moved", "doc", 3, heading="Another section")
    result = compress("step", [c[0], c[2], elsewhere, moved], config(budget=5000, dedupe_threshold=1.0))
    assert result.merged == 0
    assert len(result.items) == 4


def test_merged_item_takes_the_best_rank_of_its_parts() -> None:
    doc = " ".join(f"Paragraph {i} explains the boiler." for i in range(30))
    spans = [(s.start, s.end) for s in FixedTokenChunker(40, 8).split(doc)]
    c = chunk_passages(doc, spans)
    first = passage("Cooling towers release heat to the air.", "x", "towers")
    last = passage("Chimneys carry exhaust gases upwards.", "y", "chimneys")
    result = compress("boiler", [first, c[3], last, c[2]], config(budget=5000))
    assert [item.passage.chunk_id for item in result.items] == ["x", "doc-2", "y"]
    assert [p.chunk_id for p in result.parts[2]] == ["doc-2", "doc-3"]
    assert result.items[1].text == doc[spans[2][0] : spans[3][1]]


def test_nearly_identical_neighbours_are_merged_not_dropped() -> None:
    words = [f"w{i}" for i in range(102)]
    first, second = " ".join(words[:100]), " ".join(words[2:])  # 98 of 100 words shared
    result = compress(
        "w5", [passage(first, "c0", "doc", 0), passage(second, "c1", "doc", 1)], config(budget=5000)
    )
    assert result.dropped_duplicates == 0
    assert result.merged == 1
    assert result.items[0].text == " ".join(words)


def test_join_removes_the_overlap_once() -> None:
    assert (
        join_overlapping("alpha beta gamma delta", "gamma delta epsilon") == "alpha beta gamma delta epsilon"
    )
    assert join_overlapping("one two three four", "five six") == "one two three four\nfive six"
    # A short coincidence is not taken for an overlap: no words are lost.
    short = "see appendix A"
    assert len("A") < MIN_OVERLAP_CHARS
    assert join_overlapping(short, "A new idea") == "see appendix A\nA new idea"


# ----- selection and the budget ---------------------------------------------------------------------
def needle_passages() -> list[Passage]:
    passages = [passage(filler_document(8, seed), f"f{seed}", f"filler{seed}") for seed in range(8)]
    hidden = filler_document(4, 99) + " " + NEEDLE + " " + filler_document(4, 98)
    passages.insert(6, passage(hidden, "needle", "secrets"))
    return passages


def test_most_relevant_sentence_survives_a_tight_budget() -> None:
    passages = needle_passages()
    result = compress("What is the launch code of the orbital station?", passages, config(budget=60))
    assert total_tokens(result) <= 60
    assert any(NEEDLE in item.text for item in result.items)
    needle_item = next(item for item in result.items if NEEDLE in item.text)
    assert needle_item.passage.chunk_id == "needle"  # it keeps its own citation
    assert result.sentences_dropped > 0
    assert result.tokens_before == sum(count_tokens(p.text) for p in passages)
    assert result.tokens_after == total_tokens(result)
    assert_numbered(result)


def test_the_best_sentence_of_the_best_item_is_always_kept() -> None:
    # The best-ranked item shares no word with the question; the others are full of matching sentences
    # that would fill the budget on their own.
    unrelated = (
        "Tigers are the largest living cats, with striped coats that help them hide in tall grass "
        "while they stalk deer and wild boar at dusk."
    )
    matching = [
        " ".join(f"Orbital station {name} keeps launch code number {i}." for i in range(6))
        for name in ("Alpha", "Beta", "Gamma", "Delta")
    ]
    passages = [passage(unrelated, "best", "animals")]
    passages += [passage(text, f"m{i}", f"station{i}") for i, text in enumerate(matching)]
    result = compress("launch code orbital station", passages, config(budget=60))
    assert result.items[0].passage.chunk_id == "best"
    assert result.items[0].text == unrelated
    assert len(result.items) > 1  # the matching sentences take what the budget leaves
    assert total_tokens(result) <= 60


def test_the_budget_holds_when_separators_cost_more_than_estimated() -> None:
    # Whitespace-only lines between list items: each separator is several tokens, not the one estimated,
    # so only the exact count of the assembled text keeps the total within budget.
    separator = "\n \t \n\t \n  \t \n \t\t \n"
    text = separator.join(f"- pump {i} is serviced" for i in range(80))
    result = compress("pump serviced", [passage(text, "list")], config(budget=120))
    assert count_tokens(separator) > 2
    assert 100 < total_tokens(result) <= 120
    assert result.tokens_after == total_tokens(result)


def test_a_sentence_longer_than_the_budget_is_cut_to_it() -> None:
    long_sentence = "The turbine " + " and ".join(f"blade {i}" for i in range(200)) + " spin."
    result = compress("turbine", [passage(long_sentence, "long")], config(budget=50))
    assert len(result.items) == 1
    assert count_tokens(result.items[0].text) <= 50
    assert long_sentence.startswith(result.items[0].text)
    assert result.tokens_after <= 50


def test_truncation_keeps_whole_characters() -> None:
    text = "Grüße aus Tromsø, 東京 und Zürich! " * 30
    cut = truncate_to_tokens(text, 17)
    assert count_tokens(cut) <= 17
    assert text.startswith(cut)
    assert "\ufffd" not in cut


def test_without_sentence_selection_whole_items_are_kept_in_order() -> None:
    passages = [passage(filler_document(8, seed), f"p{seed}", f"d{seed}") for seed in range(6)]
    budget = sum(count_tokens(p.text) for p in passages[:2]) + 5
    result = compress("q", passages, config(budget=budget, select_sentences=False))
    assert [item.text for item in result.items] == [p.text for p in passages[:2]]
    assert result.sentences_dropped == 0
    too_small = compress("q", passages, config(budget=50, select_sentences=False))
    assert len(too_small.items) == 1
    assert passages[0].text.startswith(too_small.items[0].text)
    assert total_tokens(too_small) <= 50


def test_everything_within_budget_is_left_whole() -> None:
    passages = [passage(FILLER[i], f"p{i}", f"d{i}") for i in range(4)]
    result = compress("parking", passages, config(budget=1500))
    assert [item.text for item in result.items] == FILLER[:4]
    assert result.sentences_dropped == 0


def test_disabled_compression_passes_everything_through() -> None:
    a = passage("Pumps move water.", "a", "x")
    passages = [a, passage("Valves hold pressure.", "b", "y"), a]
    result = compress("pumps", passages, config(budget=50, enabled=False))
    assert [(item.n, item.passage, item.text) for item in result.items] == [
        (n, p, p.text) for n, p in enumerate(passages, 1)
    ]
    assert result.tokens_before == result.tokens_after == sum(count_tokens(p.text) for p in passages)
    assert result.dropped_duplicates == result.merged == result.sentences_dropped == 0


def test_no_passages_give_no_items() -> None:
    result = compress("anything", [], config())
    assert result.items == []
    assert result.tokens_before == result.tokens_after == 0


def test_kept_sentences_are_verbatim_sentences_of_their_sources() -> None:
    doc = filler_document(40, 1) + "\n\n" + NEEDLE + "\n\n" + filler_document(40, 2)
    spans = [(s.start, s.end) for s in RecursiveChunker(48, 12).split(doc)]
    passages = chunk_passages(doc, spans)
    random.Random(7).shuffle(passages)
    result = compress("launch code of the station", passages[:12], config(budget=120))
    assert result.items
    document_sentences = set(split_sentences(doc))
    for item in result.items:
        sources = [p.text for p in result.parts[item.n]]
        for sentence in split_sentences(item.text):
            assert sentence in document_sentences
            assert any(sentence in source for source in sources)


WORDS = st.sampled_from(
    [
        "pump",
        "valve",
        "seal",
        "e.g.",
        "Dr.",
        "3.5",
        "naïve",
        "東京",
        "🙂",
        "-",
        "```",
        "#",
        "\n",
        "\n\n",
        "x" * 40,
    ]
)


@st.composite
def passage_lists(draw: st.DrawFn) -> list[Passage]:
    count = draw(st.integers(min_value=0, max_value=12))
    passages = []
    for i in range(count):
        words = draw(st.lists(WORDS, min_size=0, max_size=120))
        text = " ".join(words)
        if draw(st.booleans()):
            text = text.replace(" ", ". ", draw(st.integers(0, 30)))
        doc = draw(st.sampled_from(["a", "b", "c"]))
        index = draw(st.integers(min_value=0, max_value=6))
        chunk_id = draw(st.sampled_from([f"{doc}{index}", f"id{i}"]))
        passages.append(passage(text, chunk_id, doc, index))
    return passages


@PROPERTY
@given(
    passages=passage_lists(),
    budget=st.integers(min_value=50, max_value=1200),
    question=st.sampled_from(["pump seal", "what about Dr. valve?", "", "東京"]),
    select=st.booleans(),
    threshold=st.floats(min_value=0.0, max_value=1.0),
)
def test_the_budget_is_never_exceeded(
    passages: list[Passage], budget: int, question: str, select: bool, threshold: float
) -> None:
    result = compress(
        question, passages, config(budget=budget, select_sentences=select, dedupe_threshold=threshold)
    )
    assert total_tokens(result) == result.tokens_after <= budget
    assert result.tokens_before == sum(count_tokens(p.text) for p in passages)
    assert_numbered(result)
    assert all(item.text.strip() for item in result.items)
    has_text = any(p.text.strip() for p in passages)
    assert bool(result.items) == has_text  # something is always kept, unless there was nothing
    for item in result.items:
        assert item.passage in result.parts[item.n]


def test_twenty_full_chunks_compress_in_milliseconds() -> None:
    doc = filler_document(400, 3)
    spans = [(s.start, s.end) for s in FixedTokenChunker(256, 32).split(doc)][:20]
    passages = [passage(doc[a:b], f"p{i}", f"d{i}") for i, (a, b) in enumerate(spans)]
    assert len(passages) == 20
    compress("launch code", passages, config(budget=1500))  # warm the tokeniser
    started = time.process_time()
    for _ in range(5):
        result = compress("when are parking permits renewed", passages, config(budget=1500))
    per_call = (time.process_time() - started) / 5
    assert total_tokens(result) <= 1500
    assert per_call < 0.25, f"{per_call * 1000:.0f} ms per call"


# ----- with the real embedder ------------------------------------------------------------------------
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("ragcli.embedding.onnx") is None, reason="ragcli.embedding.onnx is not there yet"
)


@needs_onnx
def test_embedder_finds_the_sentence_that_shares_no_words_with_the_question(
    embedder: CountingEmbedder,
) -> None:
    # As long as a filler sentence, so it cannot slip into what the budget leaves over.
    fact = "Once they are fully ripe, bananas develop a bright yellow peel dotted with small brown speckles."
    passages = [passage(filler_document(8, seed), f"f{seed}", f"filler{seed}") for seed in range(6)]
    passages.insert(
        4, passage(filler_document(4, 50) + " " + fact + " " + filler_document(4, 51), "fact", "fruit")
    )
    question = "What colour is mature fruit?"
    lexical = compress(question, passages, config(budget=60))
    assert not any(fact in item.text for item in lexical.items)  # no shared words: lexical misses it
    embedder.reset()
    semantic = compress(question, passages, config(budget=60), embedder)
    assert any(fact in item.text for item in semantic.items)
    assert embedder.calls == 1  # every sentence in one batch
    assert total_tokens(semantic) <= 60


# ----- the sentence splitter -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith arrived at 3.5 p.m. on Monday. Then he left!",
            ["Dr. Smith arrived at 3.5 p.m. on Monday.", "Then he left!"],
        ),
        (
            "Use a tool, e.g. Python. It costs $3.50 per unit. Version 2.0.1 is out. See example.com now.",
            [
                "Use a tool, e.g. Python.",
                "It costs $3.50 per unit.",
                "Version 2.0.1 is out.",
                "See example.com now.",
            ],
        ),
        (
            "Compare A vs. B first. Prof. Jones, i.e. the chair, agreed. See Fig. 3 and No. 5 here.",
            ["Compare A vs. B first.", "Prof. Jones, i.e. the chair, agreed.", "See Fig. 3 and No. 5 here."],
        ),
        (
            "J. R. R. Tolkien wrote books. The answer is no. Why?",
            ["J. R. R. Tolkien wrote books.", "The answer is no.", "Why?"],
        ),
        (
            'He said "Stop!" Then he left. (See above.) Wait... What?',
            ['He said "Stop!"', "Then he left.", "(See above.)", "Wait...", "What?"],
        ),
        ("It weighs approx. three kilos. Good.", ["It weighs approx. three kilos.", "Good."]),
        (
            "They fled to the Netherlands.[citation needed] A group left in 1555.[12][13] It ended.:116 See v[0]. ok",
            ["They fled to the Netherlands.[citation needed]", "A group left in 1555.[12][13]", "It ended.:116",
             "See v[0]. ok"],
        ),
        ("中文句子。第二句！第三句？", ["中文句子。", "第二句！", "第三句？"]),
        ("", []),
        ("  \n\n \t ", []),
    ],
)
def test_prose_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_newlines_wrap_prose_and_blank_lines_end_paragraphs() -> None:
    text = "This line is wrapped\nonto the next line. A second sentence\n\nA paragraph without a stop\n\nLast one."
    assert split_sentences(text) == [
        "This line is wrapped\nonto the next line.",
        "A second sentence",
        "A paragraph without a stop",
        "Last one.",
    ]
    assert split_sentences("First line.\r\nSecond line.\r\n") == ["First line.", "Second line."]


def test_list_items_are_units_with_their_continuations() -> None:
    text = (
        "Steps:\n- Open the valve. Wait.\n- Start the pump\n  and watch the gauge.\n"
        "1. numbered item\n2) another item\n(a) lettered item\n\nAfter the list."
    )
    assert split_sentences(text) == [
        "Steps:",
        "- Open the valve. Wait.",
        "- Start the pump\n  and watch the gauge.",
        "1. numbered item",
        "2) another item",
        "(a) lettered item",
        "After the list.",
    ]


def test_code_headings_and_tables_are_line_units() -> None:
    text = (
        "# Setup\nInstall it. Run it.\n```python\nx = obj.method()\nprint(x). y\n```\n"
        "| a | b |\n|---|---|\n\n    indented.code()\n    more.code()\n\nDone."
    )
    assert split_sentences(text) == [
        "# Setup",
        "Install it.",
        "Run it.",
        "```python",
        "x = obj.method()",
        "print(x). y",
        "```",
        "| a | b |",
        "|---|---|",
        "indented.code()",
        "more.code()",
        "Done.",
    ]


@PROPERTY
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\t-#|`1(")) | st.characters(), max_size=300))
def test_spans_are_ordered_stripped_and_lose_no_text(text: str) -> None:
    spans = sentence_spans(text)
    position = 0
    for start, end in spans:
        assert position <= start < end <= len(text)
        assert not text[position:start].strip()  # only whitespace between sentences
        piece = text[start:end]
        assert piece == piece.strip()
        position = end
    assert not text[position:].strip()


def test_splitting_stays_linear_on_hostile_text() -> None:
    hostile = "a. " * 20000 + "x" * 50000 + ". " + "- item\n" * 5000 + "```\n" + "code.\n" * 5000
    started = time.process_time()
    spans = sentence_spans(hostile)
    assert time.process_time() - started < 5
    assert len(spans) >= 10000


def test_counts_the_index_stored_are_used_and_no_tokenizer_is_needed_under_budget() -> None:
    import subprocess
    import sys

    # In a fresh interpreter: a context that fits its budget is counted from the chunks' stored counts,
    # so a cold `ragcli ask` never loads tiktoken's 100K-entry vocabulary.
    code = (
        "import sys\n"
        "from ragcli.config import CompressionConfig\n"
        "from ragcli.models import Passage\n"
        "from ragcli.retrieval.compress import compress\n"
        "ps = [Passage(f'c{i}', f'd{i}', f's{i}', 't', None, None, 0, f'Sentence number {i} is here.', 1.0,"
        " token_count=7) for i in range(3)]\n"
        "out = compress('question?', ps, CompressionConfig(budget_tokens=1500))\n"
        "print(out.tokens_before, out.tokens_after, 'tiktoken' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["21", "21", "False"]
