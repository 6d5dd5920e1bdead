"""`--filter`: case-insensitive whole values, `key~text` partial matches, doc_type aliases, values that
stay literals, and the answer when the filters leave no document (issue 10, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import Settings
from ragcli.errors import UsageError
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions, QueryEngine
from ragcli.retrieval.filters import (
    Filters,
    build_where,
    doc_type_names,
    like_escape,
    parse_field_filter,
    parse_field_filters,
    parse_filter_expression,
)
from tests.conftest import CountingEmbedder

DOCS = {
    "warranty.md": "# Aurora AM-5 Warranty\n\nThe Aurora AM-5 amplifier is covered for 36 months from purchase.\n",
    "manual.markdown": "# Aurora AM-5 Manual\n\nConnect the speakers before switching the amplifier on.\n",
    "rates.md": "# 100% Cotton_Care\n\nWash the cotton covers at 30 degrees and dry them flat.\n",
    "rates2.md": "# 1000 Cotton Care\n\nThe cotton covers of the amplifier shrink in a hot dryer.\n",
    "notes.txt": "Service notes\n\nThe amplifier fan is replaced every five years.\n",
    "guide.html": "<html><head><title>Setup Guide</title></head><body><p>Place the amplifier on a shelf "
    "with room for air.</p></body></html>",
}
QUESTION = "How is the amplifier looked after?"


@pytest.fixture
def indexed(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    report = Ingestor(settings, embedder=embedder).run([root])
    assert report.summary()["added"] == len(DOCS)
    return root


def _names(settings: Settings, embedder: CountingEmbedder, filters: Filters) -> set[str]:
    engine = QueryEngine(settings, embedder=embedder)
    passages = engine.retrieve(QUESTION, AskOptions(k=20, filters=filters)).passages
    return {Path(p.source).name for p in passages}


# ----- parsing and the where clause ---------------------------------------------------------------
def test_expressions_split_at_the_first_operator() -> None:
    assert parse_filter_expression("title=A~B") == ("title", "=", "A~B")
    assert parse_filter_expression("title~A=B") == ("title", "~", "A=B")
    assert parse_filter_expression(" heading ~ x") == ("heading", "~", " x")
    assert parse_field_filters(["title=A", "title~b", "page=3"]) == ([("title", "A"), ("page", "3")], [("title", "b")])
    assert parse_field_filter("title=A = B") == ("title", "A = B")
    with pytest.raises(UsageError, match="key~text"):
        parse_filter_expression("title")
    with pytest.raises(UsageError, match="Unknown filter field"):
        parse_filter_expression("vector~1")
    with pytest.raises(UsageError, match="is a number"):
        parse_filter_expression("page~3")
    with pytest.raises(UsageError, match="key=value"):
        parse_field_filter("title~x")


def test_a_document_type_nobody_has_is_a_usage_error_not_an_empty_result() -> None:
    for known in ("md", "markdown", ".PDF", "html", "docx", "eml", ""):
        assert parse_filter_expression(f"doc_type={known}")[0] == "doc_type"
    with pytest.raises(UsageError, match="Unknown document type 'banana'") as caught:
        parse_filter_expression("doc_type=banana")
    assert "doc_type=md" in (caught.value.hint or "")
    assert parse_filter_expression("doc_type~mark") == ("doc_type", "~", "mark")  # a part of a name is fine
    with pytest.raises(UsageError, match="whole number") as caught:
        parse_filter_expression("page=abc")
    assert caught.value.hint


def test_where_clause_folds_case_and_expands_doc_type_aliases() -> None:
    where = build_where(Filters(fields=[("title", "Pumps"), ("doc_type", "Markdown")]), [])
    assert where == "(lower(doc_type) IN ('markdown', 'md')) AND (lower(title) = lower('Pumps'))"
    assert doc_type_names("md") == doc_type_names("MARKDOWN") == doc_type_names(".markdown") == ["markdown", "md"]
    assert doc_type_names("htm") == doc_type_names("html") == ["htm", "html", "xhtml"]
    assert doc_type_names("text") == ["text", "txt"]
    assert doc_type_names("restructuredtext") == doc_type_names("rst")
    assert doc_type_names("pdf") == ["pdf"]
    assert doc_type_names("docx") == ["docx"]


def test_partial_patterns_escape_like_wildcards() -> None:
    assert like_escape("100%_a\\b") == "100\\%\\_a\\\\b"
    where = build_where(Filters(contains=[("title", "it's 5%")]), [])
    assert where == "(lower(title) LIKE lower('%it''s 5\\%%') ESCAPE '\\')"


@given(st.text(min_size=1, max_size=30).filter(lambda t: "\x00" not in t))
def test_any_partial_text_stays_inside_one_literal(text: str) -> None:
    where = build_where(Filters(contains=[("heading", text)]), [])
    assert where is not None
    # Between the opening and closing quote of the pattern every quote is doubled: no way out.
    pattern = where.split("lower('", 1)[1].rsplit("') ESCAPE", 1)[0]
    assert "'" not in pattern.replace("''", "")


def test_fingerprint_ignores_case_and_tells_the_forms_apart() -> None:
    assert Filters(fields=[("title", "Pumps")]).fingerprint() == Filters(fields=[("title", "pumps")]).fingerprint()
    assert Filters(fields=[("title", "x")]).fingerprint() != Filters(contains=[("title", "x")]).fingerprint()
    assert Filters().fingerprint() == repr(([], [], None))  # unchanged for unfiltered questions


# ----- on a real index ------------------------------------------------------------------------------
def test_whole_values_match_case_insensitively(settings: Settings, embedder: CountingEmbedder, indexed: Path) -> None:
    assert _names(settings, embedder, Filters(fields=[("title", "aurora am-5 WARRANTY")])) == {"warranty.md"}
    assert _names(settings, embedder, Filters(fields=[("title", "Warranty")])) == set()


def test_partial_match_finds_the_readmes_example(
    settings: Settings, embedder: CountingEmbedder, indexed: Path
) -> None:
    assert _names(settings, embedder, Filters(contains=[("title", "Warranty")])) == {"warranty.md"}
    assert _names(settings, embedder, Filters(contains=[("title", "aurora")])) == {"warranty.md", "manual.markdown"}
    # Same key: OR across both forms; different keys: AND.
    either = Filters(fields=[("title", "setup guide")], contains=[("title", "warranty")])
    assert _names(settings, embedder, either) == {"warranty.md", "guide.html"}
    both = Filters(fields=[("doc_type", "markdown")], contains=[("title", "aurora")])
    assert _names(settings, embedder, both) == {"warranty.md", "manual.markdown"}
    assert _names(settings, embedder, Filters(fields=[("doc_type", "html")], contains=[("title", "aurora")])) == set()


def test_partial_match_treats_wildcards_as_text(settings: Settings, embedder: CountingEmbedder, indexed: Path) -> None:
    assert _names(settings, embedder, Filters(contains=[("title", "100%")])) == {"rates.md"}
    assert _names(settings, embedder, Filters(contains=[("title", "cotton_care")])) == {"rates.md"}
    assert _names(settings, embedder, Filters(contains=[("title", "%")])) == {"rates.md"}
    assert _names(settings, embedder, Filters(contains=[("title", "_")])) == {"rates.md"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("md", {"warranty.md", "manual.markdown", "rates.md", "rates2.md"}),
        ("markdown", {"warranty.md", "manual.markdown", "rates.md", "rates2.md"}),
        ("MD", {"warranty.md", "manual.markdown", "rates.md", "rates2.md"}),
        ("text", {"notes.txt"}),
        ("txt", {"notes.txt"}),
        ("htm", {"guide.html"}),
        ("html", {"guide.html"}),
        ("pdf", set()),
    ],
)
def test_doc_type_accepts_every_name_of_a_format(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, value: str, expected: set[str]
) -> None:
    assert _names(settings, embedder, Filters(fields=[("doc_type", value)])) == expected


@pytest.mark.parametrize(
    "value", ["x' OR '1'='1", "Warranty' OR title <> '", "'; DROP TABLE chunks; --", "%' OR 1=1 --", "\\' OR 1=1 --"]
)
def test_injection_attempts_in_partial_values_are_literals(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, value: str
) -> None:
    engine = QueryEngine(settings, embedder=embedder)
    result = engine.retrieve(QUESTION, AskOptions(k=20, mode="hybrid", filters=Filters(contains=[("title", value)])))
    assert result.passages == []
    assert engine.store.count() > 0


def test_filters_that_leave_nothing_are_said_so(settings: Settings, embedder: CountingEmbedder, indexed: Path) -> None:
    engine = QueryEngine(settings, embedder=embedder)
    result = engine.ask(QUESTION, AskOptions(filters=Filters(fields=[("title", "Warranty")], sources=["*.md"])))
    assert result.refused and result.refused_reason == "filtered_out"
    assert "no document matches the filters" in result.answer.lower()
    assert "title=Warranty" in result.answer and "--source *.md" in result.answer
    assert result.citations == [] and result.to_json()["refused_reason"] == "filtered_out"
    # Filters that leave documents never give that reason, whatever the answer.
    kept = engine.ask(QUESTION, AskOptions(filters=Filters(contains=[("title", "warranty")])))
    assert kept.refused_reason != "filtered_out" and kept.citations


def test_cli_reports_filtered_out_with_exit_zero(indexed: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(settings.home))
    runner = CliRunner()
    result = runner.invoke(app, ["ask", QUESTION, "--json", "--filter", "doc_type=pdf", "--filter", "title~aurora"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["refused"] is True and data["refused_reason"] == "filtered_out"
    assert "doc_type=pdf" in data["answer"] and "title~aurora" in data["answer"]
    text = runner.invoke(app, ["ask", QUESTION, "--no-cache", "--filter", "title=Warranty"])
    assert text.exit_code == 0 and "No document matches the filters (title=Warranty)" in text.stdout
    found = runner.invoke(app, ["ask", QUESTION, "--json", "--no-cache", "--filter", "title~WARRANTY"])
    assert found.exit_code == 0
    assert {Path(c["source"]).name for c in json.loads(found.stdout)["citations"]} == {"warranty.md"}
    bad = runner.invoke(app, ["ask", QUESTION, "--filter", "page~2"])
    assert bad.exit_code == 2 and "is a number" in bad.stderr
