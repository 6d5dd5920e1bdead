"""The chunkers' contract, as properties over messy text, and the behaviour each one promises.

Contract: spans in increasing start order, non-empty, not starting or ending in whitespace, covering
every non-whitespace character, token_count exact and within chunk_size, and the same spans every time.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli.chunking import Chunker, get_chunker
from ragcli.chunking.fixed import FixedTokenChunker, character_windows
from ragcli.chunking.recursive import RecursiveChunker
from ragcli.chunking.semantic import EMBED_BATCH, SemanticChunker, split_sentences
from ragcli.config import ChunkingConfig
from ragcli.models import Span
from ragcli.tokens import count_tokens, encode


class HashingEmbedder:
    """A real, tiny embedder: hashed bag of lower-cased words, L2-normalised. Deterministic (crc32)."""

    name = "hashing-bow"
    dimension = 256

    def __init__(self) -> None:
        self.batches: list[int] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower()) or [text.strip()]
            for word in words:
                out[row, zlib.crc32(word.encode("utf-8", "surrogatepass")) % self.dimension] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def assert_contract(text: str, spans: list[Span], chunk_size: int) -> None:
    covered = bytearray(len(text))
    previous_start = -1
    for span in spans:
        assert previous_start < span.start < span.end <= len(text), spans
        previous_start = span.start
        chunk = text[span.start : span.end]
        assert not chunk[0].isspace() and not chunk[-1].isspace(), span
        assert span.token_count == count_tokens(chunk), span
        assert span.token_count <= chunk_size, span
        covered[span.start : span.end] = b"\x01" * len(chunk)
    uncovered = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert not uncovered, f"characters left out at {uncovered[:10]}"


def assert_disjoint(spans: list[Span]) -> None:
    for left, right in itertools.pairwise(spans):
        assert left.end <= right.start, (left, right)


# Text built from the things that trip chunkers up: multi-byte characters split across tokens, combining
# marks, flags, special-token text, Markdown structure, CRLF, exotic whitespace and long "words".
_FRAGMENTS = st.sampled_from(
    [
        "the", "Rust", "ownership", "naïve", "日本語の文", "Ελληνικά", "👍🏽", "e\u0301", "🇺🇸", "<|endoftext|>",
        "3.14159", "don't", "a.b.c", "x", "Ünïcödé", "ﬁ", "\u200b", "—",
        " ", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2029", "\x1c",
        ". ", "! ", "? ", '." ', "。", "\n# Heading\n", "\n## Sub heading\n\n", "# not at line start ",
        "\n```sh\n# a comment, no heading\nmake\n```\n", "\nTitle\n=====\n", "\n> quote\n>\n> more\n",
        "\n- item one\n- item two\n",
    ]
)  # fmt: skip
_LONG_WORD = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=40, max_size=300
)
TEXTS = st.one_of(
    st.lists(
        st.one_of(_FRAGMENTS, _FRAGMENTS, _FRAGMENTS, _LONG_WORD, st.text(max_size=12)), max_size=120
    ).map("".join),
    st.text(max_size=400),
)
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sizes(draw: st.DrawFn) -> tuple[int, int]:
    chunk_size = draw(st.integers(min_value=4, max_value=64))
    overlap = draw(st.integers(min_value=0, max_value=chunk_size - 1))
    return chunk_size, overlap


@PROPERTY
@given(text=TEXTS, size_overlap=sizes())
def test_recursive_keeps_the_contract(text: str, size_overlap: tuple[int, int]) -> None:
    size, overlap = size_overlap
    chunker = RecursiveChunker(size, overlap)
    spans = chunker.split(text)
    assert_contract(text, spans, size)
    assert chunker.split(text) == spans
    if overlap == 0:
        assert_disjoint(spans)


@PROPERTY
@given(text=TEXTS, size_overlap=sizes())
def test_fixed_keeps_the_contract(text: str, size_overlap: tuple[int, int]) -> None:
    size, overlap = size_overlap
    chunker = FixedTokenChunker(size, overlap)
    spans = chunker.split(text)
    assert_contract(text, spans, size)
    assert chunker.split(text) == spans
    if overlap == 0:
        assert_disjoint(spans)


@PROPERTY
@given(text=TEXTS, size=st.integers(min_value=4, max_value=64), threshold=st.floats(0.0, 1.0))
def test_semantic_keeps_the_contract(text: str, size: int, threshold: float) -> None:
    chunker = SemanticChunker(HashingEmbedder(), size, threshold)
    spans = chunker.split(text)
    assert_contract(text, spans, size)
    assert_disjoint(spans)
    assert chunker.split(text) == spans


@pytest.mark.parametrize("text", ["", " ", "\n\n\t \u3000\r\n"])
def test_blank_text_gives_no_chunks(text: str) -> None:
    embedder = HashingEmbedder()
    chunkers: list[Chunker] = [
        RecursiveChunker(16, 4),
        FixedTokenChunker(16, 4),
        SemanticChunker(embedder, 16, 0.2),
    ]
    assert [chunker.split(text) for chunker in chunkers] == [[], [], []]
    assert embedder.batches == []


# --- fixed ---------------------------------------------------------------------------------------


def test_fixed_windows_have_exact_sizes_and_stride() -> None:
    text = " ".join(["hello"] * 1000)  # "hello" and " hello" are one token each
    assert len(encode(text)) == 1000
    spans = FixedTokenChunker(100, 20).split(text)
    starts_in_tokens = [text[: span.start].count("hello") for span in spans]
    assert starts_in_tokens == list(range(0, 961, 80))
    assert [span.token_count for span in spans] == [100] * 12 + [40]
    assert spans[0] == Span(0, len(" ".join(["hello"] * 100)), 100)
    assert spans[-1].end == len(text)


def test_fixed_offsets_land_on_characters_split_across_tokens() -> None:
    # Emoji, flags and CJK are several bytes; cl100k cuts many of them between tokens.
    text = "😀🇺🇸é日本語👍🏽Ω" * 60
    spans = FixedTokenChunker(16, 0).split(text)
    assert_contract(text, spans, 16)
    # Without whitespace and overlap the windows tile the text exactly.
    assert spans[0].start == 0 and spans[-1].end == len(text)
    assert all(left.end == right.start for left, right in itertools.pairwise(spans))
    # Snapping to characters costs at most the split characters' tokens, not whole windows.
    assert sum(span.token_count for span in spans) / len(spans) > 12


def test_character_windows_fit_the_smallest_chunk_size() -> None:
    # The last resort for a token whose characters re-encode too large: whole characters, greedily.
    text = "👍🏽🇺🇸 日本語 e\u0301 \ud800x" * 5
    spans = character_windows(text, 0, len(text), 4)
    assert_contract(text, spans, 4)
    assert_disjoint(spans)


def test_fixed_handles_a_lone_surrogate() -> None:
    text = "before \ud800 after " * 40
    assert_contract(text, FixedTokenChunker(8, 2).split(text), 8)


# --- recursive -----------------------------------------------------------------------------------


def _paragraph(topic: str, tokens: int) -> str:
    words = [topic] + ["word"] * (tokens - 2)
    return " ".join(words) + "."


def test_recursive_cuts_at_headings_before_paragraphs() -> None:
    # Each section is ~55% of a chunk and each paragraph ~25%: filling chunks paragraph by paragraph
    # would pull section B's heading and first paragraph into the first chunk.
    section_a = "# Alpha\n\n" + _paragraph("apple", 25) + "\n\n" + _paragraph("apricot", 25)
    section_b = "# Beta\n\n" + _paragraph("banana", 25) + "\n\n" + _paragraph("blueberry", 25)
    text = section_a + "\n\n" + section_b + "\n"
    spans = RecursiveChunker(100, 0).split(text)
    assert [text[s.start : s.end] for s in spans] == [section_a, section_b]


def test_recursive_splits_an_oversize_section_at_paragraphs() -> None:
    paragraphs = [_paragraph(f"topic{i}", 30) for i in range(8)]
    text = "## Long section\n\n" + "\n\n".join(paragraphs)
    spans = RecursiveChunker(100, 0).split(text)
    assert len(spans) >= 3
    for span in spans:
        chunk = text[span.start : span.end]
        assert chunk.endswith("."), chunk  # every chunk ends where a paragraph ends
        assert chunk.startswith(("## Long", "topic")), chunk
    assert_contract(text, spans, 100)


def test_recursive_prefers_sentence_ends_over_hard_wrapped_lines() -> None:
    # Sentences of varied length, wrapped at 70 columns like most Markdown: lines end mid-sentence.
    sentences = [f"Sentence {i} goes on" + " and on" * (i % 9) for i in range(60)]
    prose = ". ".join(sentences) + "."
    wrapped = re.sub(r"(.{1,70})(?: |$)", "\\1\n", prose).strip()
    assert sum(not line.endswith(".") for line in wrapped.splitlines()) > 10
    spans = RecursiveChunker(64, 0).split(wrapped)
    assert len(spans) > 3
    assert all(wrapped[s.start : s.end].endswith(".") for s in spans)


def test_recursive_ignores_hash_lines_in_fenced_code() -> None:
    # If "# comment" counted as a heading, the first chunk would end at "```sh".
    code = "```sh\n# comment, not a heading\n" + "make install\n" * 12 + "```"
    text = _paragraph("intro", 30) + "\n\n" + code + "\n\n" + _paragraph("outro", 30)
    spans = RecursiveChunker(100, 0).split(text)
    assert text[spans[0].start : spans[0].end].endswith(code)


def test_recursive_overlap_repeats_whole_trailing_sentences() -> None:
    sentences = [f"Fact {i} is short." for i in range(60)]  # 5-6 tokens each
    text = " ".join(sentences)
    spans = RecursiveChunker(40, 15).split(text)
    assert_contract(text, spans, 40)
    for left, right in itertools.pairwise(spans):
        assert right.start < left.end, "neighbours must overlap"
        shared = text[right.start : left.end]
        assert shared.startswith("Fact ") and shared.endswith("."), shared
        assert count_tokens(shared) <= 15
    disjoint = RecursiveChunker(40, 0).split(text)
    assert_disjoint(disjoint)
    assert len(disjoint) < len(spans)


def test_recursive_splits_a_word_longer_than_a_chunk_by_tokens() -> None:
    word = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(600))  # ~1000 tokens, no spaces
    text = f"Before. {word} after."
    spans = RecursiveChunker(32, 0).split(text)
    assert_contract(text, spans, 32)
    inside = [s for s in spans if s.start >= text.index(word) and s.end <= text.index(word) + len(word)]
    assert len(inside) >= 20
    assert all(left.end == right.start for left, right in itertools.pairwise(inside))


def test_recursive_fills_chunks_close_to_the_size() -> None:
    # Pieces are sized from one tokenisation of the whole text; a poor estimate would show as
    # under-filled chunks (or as chunks over the bound, which the contract checks).
    text = " ".join(f"Point {i} is made here." for i in range(400))  # ~6 tokens a sentence
    spans = RecursiveChunker(64, 0).split(text)
    assert_contract(text, spans, 64)
    assert all(span.token_count > 64 - 8 for span in spans[:-1])


def test_recursive_keeps_a_small_text_whole() -> None:
    text = "  # Title\n\nOne short paragraph.\n"
    assert RecursiveChunker(256, 32).split(text) == [Span(2, len(text) - 1, count_tokens(text.strip()))]


# --- semantic ------------------------------------------------------------------------------------

CATS = [
    "The cat purrs and the cat naps on the warm mat.",
    "A cat grooms its fur and the cat licks its paws.",
    "The cat chases a mouse and the cat pounces on the mouse.",
    "Every cat likes fur brushing, and a cat purrs when brushed.",
    "The cat naps again, a lazy cat on a warm mat.",
]
ROCKETS = [
    "Rocket engines burn fuel and rocket boosters lift payloads.",
    "A rocket launch needs fuel, boosters and a launch pad.",
    "Rocket boosters separate after launch and the rocket climbs.",
    "The rocket payload reaches orbit after the boosters burn fuel.",
    "Engineers test rocket engines before every rocket launch.",
]


def test_semantic_breaks_where_the_topic_changes() -> None:
    text = " ".join(CATS) + "\n\n" + " ".join(ROCKETS)
    spans = SemanticChunker(HashingEmbedder(), 512, 0.15).split(text)
    assert [text[s.start : s.end] for s in spans] == [" ".join(CATS), " ".join(ROCKETS)]


def test_semantic_threshold_one_never_breaks_on_topic() -> None:
    text = " ".join(CATS + ROCKETS)
    spans = SemanticChunker(HashingEmbedder(), 512, 1.0).split(text)
    assert spans == [Span(0, len(text), count_tokens(text))]


def test_semantic_lower_threshold_never_gives_fewer_chunks() -> None:
    text = " ".join(CATS + ROCKETS + CATS)
    counts = [len(SemanticChunker(HashingEmbedder(), 512, t).split(text)) for t in (0.6, 0.3, 0.15, 0.0)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_semantic_respects_chunk_size_at_sentence_ends() -> None:
    text = " ".join(CATS * 6)
    spans = SemanticChunker(HashingEmbedder(), 40, 1.0).split(text)
    assert_contract(text, spans, 40)
    assert len(spans) > 5
    assert all(text[s.start : s.end].endswith(".") for s in spans)


def test_semantic_embeds_each_sentence_once_in_batches() -> None:
    embedder = HashingEmbedder()
    text = " ".join(f"Sentence number {i} is here." for i in range(300))
    SemanticChunker(embedder, 256, 0.25).split(text)
    assert sum(embedder.batches) == 300
    assert max(embedder.batches) <= EMBED_BATCH and len(embedder.batches) == 3


def test_sentences_split_at_ends_blank_lines_and_markdown_blocks() -> None:
    text = "# Title\nFirst one. Second one!\n\nThird\nstill third?\n- item\n> quote"
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "# Title",
        "First one.",
        "Second one!",
        "Third\nstill third?",
        "- item",
        "> quote",
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("ragcli.embedding.onnx") is None, reason="ragcli.embedding.onnx not written yet"
)
def test_semantic_with_the_real_onnx_model(request: pytest.FixtureRequest) -> None:
    embedder = request.getfixturevalue("onnx_embedder")
    text = " ".join(CATS) + " " + " ".join(ROCKETS)
    spans = SemanticChunker(embedder, 512, 0.1).split(text)
    assert_contract(text, spans, 512)
    assert_disjoint(spans)
    assert text.index(ROCKETS[0]) in {s.start for s in spans}, "no break where cats turn into rockets"


# --- parameters and factory ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RecursiveChunker, FixedTokenChunker])
@pytest.mark.parametrize(("size", "overlap"), [(16, 16), (16, 20), (16, -1), (3, 0), (0, 0)])
def test_bad_sizes_are_rejected(cls: type, size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match=r"chunk_size|chunk_overlap"):
        cls(size, overlap)


@pytest.mark.parametrize(("size", "threshold"), [(16, -0.1), (16, 1.5), (2, 0.5)])
def test_bad_semantic_parameters_are_rejected(size: int, threshold: float) -> None:
    with pytest.raises(ValueError):
        SemanticChunker(HashingEmbedder(), size, threshold)


def chunking(**values: object) -> ChunkingConfig:
    return ChunkingConfig.model_validate(values)


def test_get_chunker_builds_each_strategy_from_config() -> None:
    recursive = get_chunker(chunking(strategy="recursive", chunk_size=128, chunk_overlap=16))
    assert isinstance(recursive, RecursiveChunker)
    assert (recursive.chunk_size, recursive.chunk_overlap) == (128, 16)
    fixed = get_chunker(chunking(strategy="fixed", chunk_size=64, chunk_overlap=8))
    assert isinstance(fixed, FixedTokenChunker)
    assert (fixed.chunk_size, fixed.chunk_overlap) == (64, 8)
    semantic = get_chunker(chunking(strategy="semantic", semantic_threshold=0.4), HashingEmbedder())
    assert isinstance(semantic, SemanticChunker)
    assert semantic.threshold == 0.4


def test_get_chunker_rejects_unknown_strategy_and_semantic_without_embedder() -> None:
    with pytest.raises(ValueError, match="unknown chunking strategy 'sentences'"):
        get_chunker(ChunkingConfig.model_construct(strategy="sentences", chunk_size=64, chunk_overlap=0))
    with pytest.raises(ValueError, match="needs an embedder"):
        get_chunker(chunking(strategy="semantic"))


# ----- titles and headings never stand alone; contextual text ---------------------------------------
def test_a_title_joins_the_paragraph_after_it_even_when_both_do_not_fit() -> None:
    title = "Microstructural development of human newborn cerebral white matter"
    body = " ".join(f"Finding number {i} was measured with care in this cohort." for i in range(30))
    text = f"{title}\n\n{body}\n"
    for size in (64, 128, 400):
        spans = RecursiveChunker(size, 16).split(text)
        assert_contract(text, spans, size)
        assert all(text[s.start : s.end].strip() != title for s in spans)
        assert text[spans[0].start : spans[0].end].startswith(title + "\n\nFinding number 0")


def test_a_markdown_heading_opens_the_next_chunk_instead_of_closing_one() -> None:
    para = " ".join(f"Sentence {i} of the first part." for i in range(20))
    after = " ".join(f"Detail {i} of the second part." for i in range(20))
    text = f"{para}\n\nSecond part heading\n\n{after}\n"
    spans = RecursiveChunker(count_tokens(para) + 8, 0).split(text)
    assert_contract(text, spans, count_tokens(para) + 8)
    chunks = [text[s.start : s.end] for s in spans]
    assert all(c.strip() != "Second part heading" for c in chunks)
    assert not any(c.rstrip().endswith("Second part heading") for c in chunks)


def test_context_line_leaves_out_what_the_chunk_already_says() -> None:
    from ragcli.chunking.context import context_line

    assert context_line("Guide", "Guide > Install > Linux", "Run the script.") == "Guide > Install > Linux"
    # The first chunk opens with the title; a section's first chunk opens with its heading.
    assert context_line("Guide", None, "Guide\n\nRun the script.") == ""
    assert context_line("Guide", "Guide > Install", "## Install\nRun it.") == "Guide"
    assert context_line("A very long title that was shortened…", None, "A very long title that was shortened to fit") == ""
    assert context_line(None, None, "text") == ""


def test_contextual_text_follows_the_template() -> None:
    from ragcli.chunking.context import DEFAULT_TEMPLATE, contextual_text

    assert contextual_text(DEFAULT_TEMPLATE, "Guide", "Install", "Run it.") == "Guide > Install\n\nRun it."
    assert contextual_text("[{context}] {text}", "Guide", None, "Run it.") == "[Guide] Run it."
    assert contextual_text("{text}", "Guide", "Install", "Run it.") == "Run it."
    assert contextual_text(DEFAULT_TEMPLATE, "", None, "Run it.") == "Run it."


@pytest.mark.parametrize(
    ("template", "message"),
    [("{context}", "must contain {text}"), ("{title} {text}", "unknown field"), ("{text", "not a format")],
)
def test_bad_templates_are_config_errors(template: str, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        ChunkingConfig(context_template=template)
