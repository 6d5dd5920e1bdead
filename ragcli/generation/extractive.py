"""The extractive generator: no LLM, so it cannot invent anything.

It answers with the one to three context sentences that best match the question, each verbatim (up to
whitespace) and followed by its citation. A sentence's score is the share of the question's content
words it contains, each word weighted by how rare it is among the context's sentences (so "Normandy"
counts for more than "people"); with an embedder, the cosine similarity of question and sentence is
mixed in. When no sentence reaches the threshold the answer is `REFUSAL`.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcli.loaders.text import ADMONITION_TITLE, ADMONITION_WORDS
from ragcli.models import REFUSAL, ContextItem, Generation
from ragcli.retrieval.sentences import item_sentence_spans, sentence_spans
from ragcli.retrieval.stemming import stem

if TYPE_CHECKING:
    from ragcli.config import GenerationConfig

logger = logging.getLogger(__name__)

# The thresholds, measured on SQuAD 2.0 dev (2,828 questions of 8 articles; context = the gold paragraph
# and two other paragraphs of the article), and on "off-topic" questions (answerable questions asked of
# three paragraphs of another article):
#                        false refusals   refusals of SQuAD's     refusals of      answer contains
#                        (answerable)     unanswerable questions  off-topic ones   the gold answer
#   lexical, 0.2              7.5 %             9.4 %                95.2 %            80.1 %
#   lexical+bge-small, 0.4    4.5 %             8.3 %                97.5 %            84.0 %
# SQuAD's unanswerable questions are written to look answerable from the paragraph (same words, an
# entity swapped), so no threshold on overlap separates them; an off-topic question it does.
DEFAULT_THRESHOLD = 0.2
DEFAULT_EMBEDDING_THRESHOLD = 0.4
MAX_SENTENCES = 3
# A further sentence joins the answer only if it scores nearly as well as the best one.
FOLLOWER_RATIO = 0.9
# A second evidence sentence joins the answer when its selection score is this close to the best one's.
SECOND_SENTENCE_MARGIN = 2.0
# Weight of the embedding similarity when an embedder is given; lexical overlap keeps the rest.
EMBEDDING_WEIGHT = 0.5
# Codes and model numbers ("E23", "AM5", "v3") pin a question down more than any word: weigh them more.
IDENTIFIER_WEIGHT = 2.0

# Words that say nothing about what is asked; the last line holds question-shaped words ("what does X mean").
_STOPWORD_TEXT = """
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can cannot could couldn't did didn't do does doesn't doing don't down during
each etc few for from further get gets got had hadn't has hasn't have haven't having he her here hers
herself him himself his how i if in into is isn't it it's its itself just let me more most much must my
myself no nor not of off on once one only or other ought our ours ourselves out over own same shall she
should shouldn't so some such than that that's the their theirs them themselves then there there's these
they this those through to too under until up upon us use used using very via was wasn't we were weren't
what what's when where which while who whom whose why will with within without won't would wouldn't you
your yours yourself yourselves s t
kind type name named called many often usually mean means
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"\w+(?:'\w+)?")
# A heading's "###" or a list item's bullet is layout, not part of the sentence.
_MARKUP_PREFIX = re.compile(r"^(?:#{1,6}\s+|[-*+•]\s+|\d{1,3}[.)]\s+)")
# Lines that are layout, not statements: headings, fenced or indented code, table rows, rules.
_NOT_PROSE = re.compile(r"^(?:[ ]{0,3}#{1,6}(?:\s|$)|```|~~~|[ ]{4}|\t|\||[-=_*~]{3,}\s*$)")
_HEADING_LINE = re.compile(r"^[ ]{0,3}#{1,6}\s+\S")
# A line this short, alone between blank lines and without a full stop, is a heading, not a statement.
MAX_HEADING_WORDS = 12
# An HTML/XML tag, not a generic type: `Box<T>` has a word right before its "<".
_TAG = re.compile(r"(?<!\w)</?[A-Za-z][\w:-]*(?:\s+[^<>]*)?/?>")
_FENCED_CODE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,}).*?(?:^[ ]{0,3}\1[ \t]*$|\Z)", re.M | re.S)
# Reference and editor's marks as Wikipedia and wikis print them into the text: a number or letter after
# punctuation ("in 1530.[12]", "sand,[a]"), a note anywhere ("the Netherlands.[citation needed]",
# "Normans[who?]"), a page after a reference ("colonialism.:116"). Shown in an answer they would read as
# citations of ours; `v[0]` or `[u8]` are left alone (a bare number only goes after punctuation).
_REFERENCE_MARK = re.compile(
    r"(?<=[.,;:!?\"'”’)])(?:\[(?:\d{1,3}|[a-z]|note \d{1,3})\])+"
    r"|(?<=\S)\[[a-z][a-z ]{0,40}?(?: needed|\?)\]"
    r"|(?<=[a-z]\.):\d{1,4}(?:[–-]\d{1,4})?(?=\s|$)"
)
_QUOTE_PREFIX = re.compile(r"^(?:>\s*)+")
_ADMONITION = re.compile(rf"^(?:\*\*|__)?(?:{ADMONITION_WORDS})(?::(?:\*\*|__)?|(?:\*\*|__)?:)\s*", re.I)
# A sentence that opens with one of these leans on the sentence before it.
_POINTING_WORDS = frozenset(["it", "this", "that", "these", "those", "they", "he", "she", "its", "their", "his", "her", "such", "there"])
MIN_ANSWER_WORDS = 3
_IDENTIFIER = re.compile(r"(?=\w*\d)(?=\w*[^\W\d])\w+$")


@dataclass(frozen=True)
class ScoredSentence:
    score: float
    item_rank: int
    n: int
    text: str
    heading: str | None = None
    """The heading this sentence stands under within its passage ("E23: GPS fix timeout")."""


class ExtractiveGenerator:
    name = "extractive"

    def __init__(
        self,
        embedder: Any | None = None,
        *,
        threshold: float | None = None,
        max_sentences: int = MAX_SENTENCES,
    ) -> None:
        self.embedder = embedder
        if threshold is None:
            threshold = DEFAULT_THRESHOLD if embedder is None else DEFAULT_EMBEDDING_THRESHOLD
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.model = "lexical" if embedder is None else f"lexical+{getattr(embedder, 'name', 'embedding')}"

    @classmethod
    def from_config(cls, config: GenerationConfig, embedder: Any | None = None) -> ExtractiveGenerator:
        return cls(embedder=embedder)

    def generate(
        self,
        question: str,
        context: Sequence[ContextItem],
        on_token: Callable[[str], None] | None = None,
    ) -> Generation:
        chosen = self.best_sentences(question, context)
        if chosen:
            answer = " ".join(f"{_with_heading(question, s)} [{s.n}]" for s in chosen)
            cited = list(dict.fromkeys(s.n for s in chosen))
            result = Generation(answer, cited, False, 0, 0, self.model)
        else:
            result = Generation(REFUSAL, [], True, 0, 0, self.model)
        if on_token is not None:
            on_token(result.answer)
        return result

    def compose(self, evidence: Sequence[Any]) -> Generation:
        """The answer from the answerability gate's ranked evidence (`ragcli.generation.evidence`).

        The best sentence, and a second one when it scores nearly as well; each comes with the sentence
        before it when it cannot stand alone: it opens with a word that points back ("It", "This" …)
        or the question's year or number is only in that sentence. Each keeps its citation."""
        if not evidence:
            return Generation(REFUSAL, [], True, 0, 0, self.model)
        best = evidence[0]
        chosen = [best] + [s for s in evidence[1:2] if s.score >= best.score - SECOND_SENTENCE_MARGIN]
        parts: list[tuple[str, int]] = []
        shown: str | None = None  # a heading already shown leads the sentences after it too
        # A second sentence's predecessor may be the first one, shown already (perhaps led by its heading).
        said: set[str] = set()
        for sentence in chosen:
            leans = sentence.previous and (points_back(sentence.text) or sentence.leans_on_previous)
            if leans and sentence.previous not in said:
                parts.append((sentence.previous, sentence.n))
                said.add(sentence.previous)
            if sentence.text in said:
                continue
            said.add(sentence.text)
            text = sentence.text
            if sentence.heading_needed and sentence.heading != shown:
                text, shown = led_by_heading(sentence.heading, sentence.text), sentence.heading
            parts.append((f"{text} `{sentence.example}`" if sentence.example else text, sentence.n))
        answer = " ".join(f"{text} [{n}]" for text, n in parts)
        return Generation(answer, list(dict.fromkeys(n for _, n in parts)), False, 0, 0, self.model)

    def best_sentences(self, question: str, context: Sequence[ContextItem]) -> list[ScoredSentence]:
        """The sentences that answer, best first; empty when none passes the threshold."""
        scored = sorted(
            self.score_sentences(question, context), key=lambda s: (-s.score, s.item_rank)
        )
        if not scored or scored[0].score < self.threshold:
            return []
        floor = max(self.threshold, scored[0].score * FOLLOWER_RATIO)
        return [s for s in scored if s.score >= floor][: self.max_sentences]

    def score_sentences(self, question: str, context: Sequence[ContextItem]) -> list[ScoredSentence]:
        scored = lexical_sentences(question, context)
        if self.embedder is None or not scored:
            return scored
        mixed = self._mix_in_embeddings(question, [s.text for s in scored], [s.score for s in scored])
        return [ScoredSentence(m, s.item_rank, s.n, s.text, s.heading) for s, m in zip(scored, mixed, strict=True)]

    def _mix_in_embeddings(self, question: str, texts: list[str], lexical: list[float]) -> list[float]:
        if self.embedder is None:
            return lexical
        query = self.embedder.embed_query(question)
        vectors = self.embedder.embed_documents(texts)
        similarities = [float(v) for v in vectors @ query]
        return [
            (1 - EMBEDDING_WEIGHT) * lex + EMBEDDING_WEIGHT * max(0.0, sim)
            for lex, sim in zip(lexical, similarities, strict=True)
        ]


def lexical_sentences(question: str, context: Sequence[ContextItem]) -> list[ScoredSentence]:
    """Every distinct context sentence scored by its rarity-weighted coverage of the question's words."""
    candidates = _candidate_sentences(context)
    question_terms = set(content_terms(question))
    if not candidates or not question_terms:
        return []
    # A sentence is read with the heading it stands under: "E23: GPS fix timeout" names what its
    # sentences are about, though none of them repeats "E23".
    sentence_terms = [set(content_terms(f"{heading or ''} {text}")) for _, _, text, heading in candidates]
    idf = _inverse_frequencies(sentence_terms)
    return [
        ScoredSentence(_coverage(question_terms, terms, idf), rank, n, text, heading)
        for (rank, n, text, heading), terms in zip(candidates, sentence_terms, strict=True)
        # A sentence made only of the question's own words cannot tell anything new (its heading's
        # words do not count: they are not what the sentence says).
        if len(set(content_terms(text)) - question_terms) >= 2
    ]


def content_terms(text: str) -> list[str]:
    """Lowercased, stemmed words of `text` that carry meaning (stopwords removed)."""
    terms = []
    for word in _WORD.findall(text.lower().replace("’", "'")):
        if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
            continue
        terms.append(stem(word))
    return terms


def _candidate_sentences(context: Sequence[ContextItem]) -> list[tuple[int, int, str, str | None]]:
    """(rank of its item, citation number, sentence) for every distinct sentence of the context that can
    be an answer: headings, code, table rows and bare markup are not."""
    seen: set[str] = set()
    candidates = []
    for rank, item in enumerate(context):
        code = [m.span() for m in _FENCED_CODE.finditer(item.text)]
        heading = item.passage.heading
        for start, body, end, cleaned in _sentence_bodies(item.text):
            raw = item.text[start:end]
            if any(a <= start < b for a, b in code):
                continue
            rows = _table_rows(item.text, start, end)
            if rows is not None:  # a table: each row is a fact of its own ("Payload capacity: 15 kg")
                for text in rows:
                    if len(_WORD.findall(text)) >= MIN_ANSWER_WORDS and text.lower() not in seen:
                        seen.add(text.lower())
                        candidates.append((rank, item.n, text, heading))
                continue
            if ADMONITION_TITLE.match(raw.strip()) or _code_line(item.text, start, end):
                continue  # "Tip" above a tip, a command line: neither a heading nor an answer
            if _HEADING_LINE.match(raw):
                heading = clean_sentence(raw.lstrip().lstrip("#"))
                continue
            if _rendered_heading(item.text, start, end, item.passage):
                heading = _heading_path(item.passage, clean_sentence(raw))
                continue
            if body != start:  # "Cold weather operation\nThe AM-5 is rated …", as PDFs and plain text have it
                heading = _heading_path(item.passage, clean_sentence(_last_line(item.text[start:body])))
                raw = item.text[body:end]
            if _NOT_PROSE.match(raw):
                continue
            text = cleaned
            key = text.lower()
            if len(_WORD.findall(text)) < MIN_ANSWER_WORDS or key in seen:
                continue  # overlapping chunks repeat sentences
            if text.endswith("?"):
                continue  # a question (an FAQ's, a rhetorical one) asks; it does not answer
            seen.add(key)
            candidates.append((rank, item.n, text, heading))
    return candidates


def _path_parts(passage: Any) -> list[str]:
    return [part.strip() for part in (passage.heading or "").split(" > ") if part.strip()]


def _rendered_heading(text: str, start: int, end: int, passage: Any) -> bool:
    """A heading whose "#" the loader rendered away ("E17: RA motor stall" on a line of its own): a
    line naming a part of the passage's heading path or its title, or a short line without a full stop
    that stands as a paragraph of its own, between blank lines."""
    line = " ".join(text[start:end].split())
    names = {part.lower() for part in _path_parts(passage)} | {(passage.title or "").strip().lower()}
    return line.lower() in names or _short_line_alone(text, start, end)


def _short_line_alone(text: str, start: int, end: int) -> bool:
    """A short line without a full stop that stands as a paragraph of its own: a heading (unless it is a
    command or code, which loaders render as plain lines too: "pg_dump -Fc dbname > filename")."""
    line = " ".join(text[start:end].split())
    alone = (start == 0 or text.endswith("\n\n", 0, start)) and text.startswith("\n\n", end)
    return (
        alone
        and len(_WORD.findall(line)) <= MAX_HEADING_WORDS
        and not line.endswith((".", "!", "?", ":", ";"))
        and _heading_shaped(line)
    )


# What a command or a line of code has and a heading has not: an option ("-Fc", "--force"), a pipe, a
# redirection, an assignment, a call, a statement end, a path separator run, a shell prompt.
_CODE_MARKS = re.compile(r"(?:^|\s)--?[A-Za-z]|[|;{}=`]|\s[<>]\s|::|->|\w\(|^\$\s|^#!|\w/\w+/")


def _heading_shaped(line: str) -> bool:
    # "shared_buffers (integer)" heads a parameter's description: a lower-case start is fine.
    return not _CODE_MARKS.search(line)


def _code_line(text: str, start: int, end: int) -> bool:
    """A line of its own, without end punctuation, that reads as a command or code; or a listing, most of
    whose lines do (HTML <pre> and Markdown code reach us as plain lines: "INSERT INTO t VALUES ('ok');")."""
    lines = [line.strip() for line in text[start:end].split("\n") if line.strip()]
    if not lines or lines[-1].endswith((".", "!", "?")):
        return False  # a sentence, perhaps wrapped over lines ("… under Menu > Settings > Display.")
    if len(lines) == 1:
        return bool(_CODE_MARKS.search(lines[0]))
    return sum(bool(_CODE_MARKS.search(line)) for line in lines) >= 0.6 * len(lines)


_TABLE_SEPARATOR = re.compile(r"^[\s|:+-]+$")


def _table_rows(text: str, start: int, end: int) -> list[str] | None:
    """The rows of a table span, each as one line of its cells ("Payload capacity without counterweight:
    15 kg"), named by the header when there is one ("Code: E23; Meaning: GPS fix timeout"); None when the
    span is not a table. Raw Markdown rows come one span each, rendered tables ("a | b" lines) as one."""
    lines = [line.strip() for line in text[start:end].split("\n") if line.strip()]
    if not lines or not all("|" in line for line in lines):
        return None
    if len(lines) == 1 and not lines[0].startswith("|"):
        return None  # one line with a pipe is prose ("pipe it: `ls | wc -l`") unless it is a Markdown row
    table = [_cells(line) for line in lines]
    if any(len([c for c in cells if c]) < 2 for cells in table if cells):
        return None  # a pipe in prose ("a | b" once) is not a table
    if len(lines) == 1 and _is_rule(text[end:].lstrip("\n").split("\n", 1)[0]):
        return []  # a Markdown header row: it names the cells of the rows under its rule
    header: list[str] = []
    block = _markdown_table_above(text, start) if len(lines) == 1 else lines
    if len(block) > 1 and _TABLE_SEPARATOR.match(block[1]):  # the row above the rule names the cells
        header = _cells(block[0])
        if len(lines) == 1 and len(block) <= 2:
            return []  # the header or the rule itself
        table = table[2:] if len(lines) > 1 else table
    elif len(table) > 1 and len(table[0]) > 2 and all(len(cells) == len(table[0]) for cells in table):
        # A rendered table (the loaders write "a | b | c" lines): with three or more columns the first row
        # is the header. A two-column table is often a list of names and values with no header at all.
        header, table = table[0], table[1:]
    rows = []
    for cells in table:
        if not cells:
            continue
        if len(cells) > 2 and len(header) == len(cells):
            rows.append("; ".join(f"{name}: {cell}" for name, cell in zip(header, cells, strict=True) if cell))
        else:
            filled = [cell for cell in cells if cell]
            rows.append(f"{filled[0]}: {filled[1]}" if len(filled) == 2 else "; ".join(filled))
    return [clean_sentence(row) for row in rows]


def _is_rule(line: str) -> bool:
    return "|" in line and "-" in line and bool(_TABLE_SEPARATOR.match(line))


def _spans_with_tables_apart(text: str) -> list[tuple[int, int]]:
    """`sentence_spans`, with a list item cut into its sentences and a table's rows cut from prose that runs
    on after them on the next line (a compressed passage may join them so: "Serializable | Not possible\nIn
    PostgreSQL, you can …")."""
    spans = []
    for start, end in (piece for span in sentence_spans(text) for piece in item_sentence_spans(text, *span)):
        lines = text[start:end].split("\n")
        rows = 0
        while rows < len(lines) and "|" in lines[rows]:
            rows += 1
        if 2 <= rows < len(lines):
            cut = start + sum(len(line) + 1 for line in lines[:rows])
            spans += [(start, cut - 1), (cut, end)]
        else:
            spans.append((start, end))
    return spans


def _cells(line: str) -> list[str]:
    return [] if _TABLE_SEPARATOR.match(line) else [cell.strip() for cell in line.strip().strip("|").split("|")]


def _markdown_table_above(text: str, start: int) -> list[str]:
    """The Markdown table lines from the table's first line down to the one starting at `start`."""
    above = text[:start].split("\n")[:-1]
    block = [text[start:].split("\n", 1)[0].strip()]
    for line in reversed(above):
        if not line.strip().startswith("|"):
            break
        block.insert(0, line.strip())
    return block


# A heading line names; it does not end on a word that needs the next line ("… moved its production to").
_RUNS_ON_TEXT = "a an the of to in on at by for from with and or but as than that which who"
_RUNS_ON = frozenset(_RUNS_ON_TEXT.split())
MAX_HEADING_LINE_WORDS = 8


def _after_heading_line(text: str, start: int, end: int) -> int | None:
    """Where the sentence starts when heading lines are glued to it: short lines opening a paragraph,
    without end punctuation, each followed by a line that opens with a capital or a digit. PDF text and
    plain text put headings so ("Growth years\nIn 2018 the company moved …")."""
    if not (start == 0 or text.endswith("\n\n", 0, start)):
        return None
    body = None
    while (newline := text.find("\n", start, end)) >= 0:
        following = text[newline + 1 : end]
        if not _is_heading_line(text[start:newline], following):
            break
        start = body = end - len(following.lstrip())
    return body


def _is_heading_line(line: str, following: str) -> bool:
    line, following = line.strip(), following.lstrip()
    words = _WORD.findall(line)
    if not words or len(words) > MAX_HEADING_LINE_WORDS or not following or not line[:1].isupper():
        return False
    if not _heading_shaped(line):
        return False
    if line.endswith((".", "!", "?", ":", ";", ",", "-")) or words[-1].lower() in _RUNS_ON:
        return False
    return following[:1].isupper() or following[:1].isdigit()


def _last_line(text: str) -> str:
    return text.strip().rsplit("\n", 1)[-1]


def _heading_path(passage: Any, line: str) -> str:
    """The heading path a sentence under `line` stands under: the passage's path up to `line` when
    `line` is part of it, else `line` in place of the path's last part (a chunk that runs on into the
    next section of the same level)."""
    parts = _path_parts(passage)
    for index, part in enumerate(parts):
        if part.lower() == line.lower():
            return " > ".join(parts[: index + 1])
    return " > ".join([*parts[:-1], line])


def clean_sentence(raw: str) -> str:
    """A sentence as a reader should see it: one line, without quote, list or admonition markers, inline
    HTML/XML tags or reference marks."""
    text = " ".join(raw.split())
    text = _TAG.sub(" ", text)
    text = _REFERENCE_MARK.sub("", text)
    text = _QUOTE_PREFIX.sub("", text)
    text = _MARKUP_PREFIX.sub("", text)
    text = _ADMONITION.sub("", text)
    return " ".join(text.split())


def heading_needed(question_terms: set[str] | frozenset[str], heading: str | None, text: str) -> bool:
    """Whether only the heading holds some word of the question ("E23: GPS fix timeout" above "The
    built-in GPS receiver found no fix …"), so the sentence must be shown with it."""
    return heading_words_of_question(question_terms, heading, text) is not None


def heading_words_of_question(
    question_terms: set[str] | frozenset[str], heading: str | None, text: str
) -> str | None:
    """The parts of a heading path that hold a word of the question the sentence lacks ("Factory reset"
    of "Troubleshooting the Aurora AM-5 > Factory reset" for "How do I reset the controller?"), or None.
    The cross-encoder reads the sentence led by these parts only: with the whole path in front, the
    sentence that answers read as less relevant (docs/benchmarks.md, "Headings")."""
    if not heading:
        return None
    missing = set(question_terms) - set(content_terms(text))
    parts = [part for part in heading.split(" > ") if missing & set(content_terms(part))]
    return " > ".join(parts) if parts else None


def led_by_heading(heading: str | None, text: str) -> str:
    return f"{heading} — {text}" if heading else text


def _with_heading(question: str, sentence: ScoredSentence) -> str:
    needed = heading_needed(set(content_terms(question)), sentence.heading, sentence.text)
    return led_by_heading(sentence.heading, sentence.text) if needed else sentence.text


def points_back(sentence: str) -> bool:
    first = sentence.split(maxsplit=1)[0].lower().strip(",.;:") if sentence.split() else ""
    return first in _POINTING_WORDS


# An example shown with the sentence that introduces it is one line, not a listing.
MAX_EXAMPLE_CHARS = 160


def introduced_example(text: str, sentence: str) -> str | None:
    """The one-line command or code right after `sentence` when the sentence ends in ":" and introduces
    it ("To create a database, you use the following command:" / "$ createdb mydb"), else None."""
    if not sentence.endswith(":"):
        return None
    bodies = _sentence_bodies(text)

    def span_text(index: int) -> str:
        _, start, end, _ = bodies[index]
        return text[start:end].strip()

    for index, (_, _, _, cleaned) in enumerate(bodies[:-1]):
        if cleaned != sentence:
            continue
        following = span_text(index + 1)
        fence = following.startswith(("```", "~~~"))
        if fence:  # the splitter gives a fence line, the code line(s), the closing fence
            closing = index + 3 < len(bodies) and span_text(index + 3)[:3] in {"```", "~~~"}
            following = span_text(index + 2) if closing else ""
        following = following.strip("`").strip()
        one_line = following and "\n" not in following and len(following) <= MAX_EXAMPLE_CHARS
        if one_line and not following.endswith(".") and (fence or _example_shaped(following)):
            return following
        return None
    return None


def _example_shaped(line: str) -> bool:
    return bool(_CODE_MARKS.search(line)) or line[:1].islower() or line.startswith(("$", "#", ">"))


@functools.lru_cache(maxsize=64)
def _sentence_bodies(text: str) -> tuple[tuple[int, int, int, str], ...]:
    """(start, body start, end, clean body text) of each sentence of a passage as answer candidates are cut
    from it: tables apart, and the body after heading lines glued to it (body start = start when there are
    none). The candidates and the neighbours of every shortlisted sentence are read from here, so a passage
    is split once per question, not once for the candidates and again for each lookup."""
    bodies = []
    for start, end in _spans_with_tables_apart(text):
        body = _after_heading_line(text, start, end) or start
        bodies.append((start, body, end, clean_sentence(text[body:end])))
    return tuple(bodies)


def previous_sentence(text: str, sentence: str) -> str | None:
    """The prose sentence before `sentence` (as `clean_sentence` gives it) in `text`, if there is one."""
    bodies = _sentence_bodies(text)
    for index, (_, _, _, cleaned) in enumerate(bodies):
        if cleaned == sentence and index > 0:
            _, start, end, before = bodies[index - 1]
            layout = _short_line_alone(text, start, end) or _table_rows(text, start, end) is not None
            if not layout and not _NOT_PROSE.match(text[start:end]) and len(_WORD.findall(before)) >= MIN_ANSWER_WORDS:
                return before
            return None
    return None


def _inverse_frequencies(sentence_terms: list[set[str]]) -> Callable[[str], float]:
    counts = Counter(term for terms in sentence_terms for term in terms)
    total = len(sentence_terms)

    def idf(term: str) -> float:
        # A question word that no sentence contains weighs most: missing it says the most.
        weight = math.log((total + 1) / (counts.get(term, 0) + 0.5))
        return weight * IDENTIFIER_WEIGHT if _IDENTIFIER.match(term) else weight

    return idf


def _coverage(question_terms: set[str], terms: set[str], idf: Callable[[str], float]) -> float:
    total = sum(idf(t) for t in question_terms)
    if total <= 0:
        return 0.0
    return sum(idf(t) for t in question_terms & terms) / total
