"""One readable score per citation (0..1, documented in ragcli/retrieval/scores.py) and the raw
per-retriever scores under --json (issue 10, item 6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import Settings
from ragcli.ingest.pipeline import Ingestor
from ragcli.models import Passage, RawScores
from ragcli.query import AskOptions, QueryEngine
from ragcli.retrieval.fusion import reciprocal_rank_fusion, weighted_fusion
from ragcli.retrieval.scores import attach_raw_scores, display_score, with_rerank_scores
from tests.conftest import CountingEmbedder

DOCS = {
    "pumps.md": "# Pumps\n\nThe P-700 pump moves 40 litres per minute.\n\n## Service\n\n"
    "Replace the P-700 impeller seal every 2,000 hours of operation.\n",
    "valves.md": "# Valves\n\nThe V-12 relief valve opens at 8 bar of pressure.\n",
    "safety.txt": "Safety rules\n\nAlways wear ear protection near the compressor hall.\n",
}
QUESTION = "How often must the impeller seal be replaced?"


def _passage(chunk_id: str, score: float, raw: RawScores | None = None) -> Passage:
    return Passage(chunk_id, "d" * 32, f"/{chunk_id}.md", chunk_id, None, None, 0, "text", score, raw or RawScores())


def test_rrf_scores_are_shares_of_the_best_possible_fused_score() -> None:
    vector = [_passage("a", 0.8), _passage("b", 0.6)]
    keyword = [_passage("a", 7.5), _passage("c", 3.0)]
    fused = reciprocal_rank_fusion([vector, keyword], 60)
    annotated = {p.chunk_id: p for p in attach_raw_scores(fused, [vector, keyword], ["vector", "keyword"], fusion="rrf", rrf_k=60)}
    assert display_score(annotated["a"]) == pytest.approx(1.0)  # first in both
    assert display_score(annotated["b"]) == pytest.approx((1 / 62) / (2 / 61))  # second in one only
    assert annotated["a"].raw.vector == 0.8 and annotated["a"].raw.keyword == 7.5
    assert annotated["b"].raw.keyword is None and annotated["c"].raw.vector is None
    assert [p.chunk_id for p in fused] == list(annotated)  # the order is never touched


def test_weighted_keyword_and_vector_scores_are_on_zero_to_one() -> None:
    vector = [_passage("a", 0.9), _passage("b", 0.3)]
    keyword = [_passage("b", 9.0), _passage("a", 1.0)]
    fused = weighted_fusion(vector, keyword, 0.5)
    weighted = attach_raw_scores(fused, [vector, keyword], ["vector", "keyword"], fusion="weighted", rrf_k=60)
    assert all(0.0 <= display_score(p) <= 1.0 for p in weighted)
    keyword_only = attach_raw_scores(keyword, [keyword], ["keyword"], fusion=None, rrf_k=60)
    assert [display_score(p) for p in keyword_only] == pytest.approx([1.0, 1.0 / 9.0])
    vector_only = attach_raw_scores(vector, [vector], ["vector"], fusion=None, rrf_k=60)
    assert [display_score(p) for p in vector_only] == pytest.approx([0.9, 0.3])
    assert display_score(_passage("x", -0.2, RawScores(vector=-0.2))) == 0.0


def test_reranked_passages_read_as_the_cross_encoders_probability() -> None:
    passages = with_rerank_scores([_passage("a", 0.03), _passage("b", 0.02)], [2.0, -40.0])
    assert display_score(passages[0]) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert 0.0 <= display_score(passages[1]) < 1e-12


@pytest.fixture
def indexed(settings: Settings, embedder: CountingEmbedder, tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    Ingestor(settings, embedder=embedder).run([root])
    return root


@pytest.mark.parametrize(("mode", "rerank"), [("hybrid", False), ("vector", False), ("keyword", False), ("hybrid", True)])
def test_every_citation_has_a_unit_score_and_its_raw_scores(
    settings: Settings, embedder: CountingEmbedder, indexed: Path, mode: str, rerank: bool
) -> None:
    result = QueryEngine(settings, embedder=embedder).ask(QUESTION, AskOptions(k=3, mode=mode, rerank=rerank))
    citations = result.citations
    assert citations and citations[0]["source"].endswith("pumps.md")
    for citation in citations:
        assert 0.0 <= citation["score"] <= 1.0
        assert set(citation["scores"]) == {"vector", "keyword", "rerank"}
    top = citations[0]
    assert result.top_score == pytest.approx(top["score"], abs=1e-4)
    if rerank:
        assert all(c["scores"]["rerank"] is not None for c in citations)
        assert top["score"] == pytest.approx(1 / (1 + math.exp(-top["scores"]["rerank"])), abs=1e-4)
    else:
        assert all(c["scores"]["rerank"] is None for c in citations)
    if mode == "vector":
        assert top["scores"]["keyword"] is None
        assert top["score"] == pytest.approx(top["scores"]["vector"], abs=1e-4)
    if mode == "keyword":
        assert top["scores"]["vector"] is None and top["score"] == pytest.approx(1.0)
    if mode == "hybrid" and not rerank:
        # The impeller question is the best hit of both retrievers: the best possible fused score.
        assert top["scores"]["vector"] is not None and top["scores"]["keyword"] is not None
        assert top["score"] == pytest.approx(1.0)


def test_cli_json_shows_score_and_raw_scores(indexed: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["ask", QUESTION, "--json", "--no-cache", "--k", "2"])
    assert result.exit_code == 0, result.output
    citation = json.loads(result.stdout)["citations"][0]
    assert 0.0 <= citation["score"] <= 1.0 and citation["scores"]["vector"] is not None
    text = CliRunner().invoke(app, ["ask", QUESTION, "--no-cache", "--k", "2"])
    assert text.exit_code == 0 and "(score 1.000)" in text.stdout
