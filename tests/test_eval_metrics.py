"""BEIR readers and retrieval metrics, checked against values worked out by hand.

The rankings are fixed lists (the retrieve function is a lookup): the metric code is what is under test.
nDCG here is trec_eval's (what BEIR reports): gain = the qrels grade, discount = log2(rank + 1).
"""

from __future__ import annotations

import shutil
import time
from math import log2
from pathlib import Path

import pytest

from ragcli.errors import UsageError
from ragcli.evaluation.beir import (
    CorpusDoc,
    corpus_file_name,
    corpus_id_for_source,
    load_beir,
    load_corpus,
    load_qrels,
    load_queries,
    write_corpus_files,
)
from ragcli.evaluation.runner import compare, evaluate_retrieval, latency_summary

TINY = Path(__file__).parent / "data" / "beir_tiny"
FILLER = [f"x{n}" for n in range(1, 10)]  # ids that are in no qrels: irrelevant results

# The fixed rankings, keyed by query text.
RANKINGS = {
    # q1: qrels d1=2, d2=1, d3=0.
    "How hot should the water be for green tea?": ["d3", "d1", "d5", "d2"],
    # q2: qrels d4=1. Several chunks of d1 come back: d1, d2, d4 after de-duplication.
    "What does a derailleur do?": ["d1", "d1", "d2", "d1", "d4"],
    # q3: qrels d5=2, d6=1. d5 only comes back at rank 11.
    "How does lava differ between volcanoes?": ["d6", *FILLER, "d5"],
    # q4 has no relevant document: it must never be asked.
}

# q1: DCG@10 = 0/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5)
#            = 0 + 2/1.5849625007 + 0 + 1/2.3219280949 = 1.2618595071 + 0.4306765581 = 1.6925360652
#     IDCG   = 2/log2(2) + 1/log2(3) = 2 + 0.6309297536 = 2.6309297536
#     nDCG@10 = 1.6925360652 / 2.6309297536 = 0.6433224083
#     recall@10 = recall@100 = 2/2 (d1 and d2 both in) ; MRR@10 = 1/2 (first relevant, d1, at rank 2)
Q1_NDCG = (2 / log2(3) + 1 / log2(5)) / (2 + 1 / log2(3))
# q2: d4 at rank 3. DCG = 1/log2(4) = 1/2 ; IDCG = 1/log2(2) = 1 -> nDCG@10 = 0.5
#     recall@10 = recall@100 = 1/1 ; MRR@10 = 1/3
Q2_NDCG = 0.5
# q3: top 10 holds d6 (grade 1) at rank 1 only. DCG@10 = 1/log2(2) = 1 ; IDCG = 2 + 1/log2(3) = 2.6309297536
#     nDCG@10 = 1 / 2.6309297536 = 0.3800937667 ; recall@10 = 1/2 ; recall@100 = 2/2 (d5 at 11) ; MRR = 1/1
Q3_NDCG = 1 / (2 + 1 / log2(3))


def fixed(query: str, k: int) -> list[str]:
    return RANKINGS[query]


@pytest.fixture(scope="module")
def tiny() -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    return load_queries(TINY), load_qrels(TINY, "test")


# ----- readers ------------------------------------------------------------------------------------
def test_readers_parse_the_tiny_folder_despite_bom_and_blank_lines() -> None:
    corpus = load_corpus(TINY)
    queries = load_queries(TINY)
    qrels = load_qrels(TINY, "test")

    assert list(corpus) == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert corpus["d1"] == CorpusDoc(
        "d1", "Tea brewing", "Green tea is brewed at 80 degrees for two minutes."
    )
    assert corpus["d6"].title == ""
    assert list(queries) == ["q1", "q2", "q3", "q4"]  # not "\ufeffq1": the BOM is gone
    assert qrels["q1"] == {"d1": 2, "d2": 1, "d3": 0}
    assert qrels["q3"] == {"d5": 2, "d6": 1}
    assert set(qrels) == {"q1", "q2", "q3", "q4", "q9"}
    assert load_beir(TINY, "test").qrels == qrels


def test_qrels_without_header_line_read_the_same(tmp_path: Path) -> None:
    lines = (TINY / "qrels" / "test.tsv").read_text().splitlines()
    assert lines[0].startswith("query-id")
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("\n".join(lines[1:]) + "\n\n")

    assert load_qrels(tmp_path, "test") == load_qrels(TINY, "test")


def test_qrels_in_trec_four_column_format(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "dev.tsv").write_text("q1 0 d1 2\nq1 0 d2 1\nq2 Q0 d4 1\n")

    assert load_qrels(tmp_path, "dev") == {"q1": {"d1": 2, "d2": 1}, "q2": {"d4": 1}}


def test_missing_files_raise_usage_errors_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"corpus\.jsonl is missing") as missing_corpus:
        load_corpus(tmp_path)
    assert missing_corpus.value.hint and "qrels/<split>.tsv" in missing_corpus.value.hint

    with pytest.raises(UsageError, match="not a folder"):
        load_queries(tmp_path / "nowhere")

    shutil.copytree(TINY, tmp_path / "beir")
    with pytest.raises(UsageError, match="split 'train'") as missing_split:
        load_qrels(tmp_path / "beir", "train")
    assert missing_split.value.hint == "Splits in this folder: test."


def test_bad_lines_are_reported_with_their_number(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "ok"}\n\n{"_id": "b", "text": \n')
    with pytest.raises(UsageError, match=r"line 3: not valid JSON"):
        load_corpus(tmp_path)

    (tmp_path / "queries.jsonl").write_text('{"text": "no id"}\n')
    with pytest.raises(UsageError, match=r'line 1: the record has no "_id"'):
        load_queries(tmp_path)

    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("q\tc\tscore\nq1\td1\thigh\n")
    with pytest.raises(UsageError, match=r"line 2: the score 'high' is not a number"):
        load_qrels(tmp_path, "test")


def test_corpus_files_round_trip_to_their_ids(tmp_path: Path) -> None:
    docs = [CorpusDoc("plain", "Title", "Body."), CorpusDoc("a/b c", "", "x"), CorpusDoc(".hidden", "T", "y")]

    assert write_corpus_files(docs, tmp_path) == 3
    assert write_corpus_files(docs, tmp_path) == 0  # unchanged files are not rewritten

    files = sorted(tmp_path.iterdir())
    assert not any(path.name.startswith(".") for path in files)
    assert sorted(corpus_id_for_source(str(path.resolve())) for path in files) == [
        ".hidden",
        "a/b c",
        "plain",
    ]
    assert (tmp_path / corpus_file_name("plain")).read_text() == "Title\n\nBody.\n"
    assert (tmp_path / corpus_file_name("a/b c")).read_text() == "x\n"


# ----- metrics ------------------------------------------------------------------------------------
def test_metrics_equal_the_hand_computed_values(
    tiny: tuple[dict[str, str], dict[str, dict[str, int]]],
) -> None:
    queries, qrels = tiny
    result = evaluate_retrieval(queries, qrels, fixed, k=100)

    per_query = result["per_query"]
    assert set(per_query) == {"q1", "q2", "q3"}  # q4: no relevant document; q9: no query text
    assert per_query["q1"]["ndcg@10"] == pytest.approx(0.6433224083, abs=1e-6)
    assert per_query["q1"]["ndcg@10"] == pytest.approx(Q1_NDCG, abs=1e-6)
    assert per_query["q2"]["ndcg@10"] == pytest.approx(Q2_NDCG, abs=1e-6)
    assert per_query["q3"]["ndcg@10"] == pytest.approx(0.3800937667, abs=1e-6)
    assert per_query["q2"]["retrieved"] == 3
    # Means over q1, q2, q3:
    #   nDCG@10    = (0.6433224083 + 0.5 + 0.3800937667) / 3 = 0.5078053917
    #   recall@10  = (1 + 1 + 1/2) / 3 = 0.8333333333
    #   recall@100 = (1 + 1 + 1) / 3 = 1
    #   MRR@10     = (1/2 + 1/3 + 1) / 3 = 0.6111111111
    assert result["ndcg@10"] == pytest.approx(0.5078053917, abs=1e-6)
    assert result["recall@10"] == pytest.approx(2.5 / 3, abs=1e-6)
    assert result["recall@100"] == pytest.approx(1.0, abs=1e-6)
    assert result["mrr@10"] == pytest.approx(0.6111111111, abs=1e-6)
    assert result["queries"] == 3
    assert result["queries_without_relevant"] == 1
    assert result["queries_missing_text"] == 1
    assert {"p50_ms", "p95_ms"} <= result.keys()


def test_k_truncates_the_ranking(tiny: tuple[dict[str, str], dict[str, dict[str, int]]]) -> None:
    queries, qrels = tiny
    result = evaluate_retrieval(queries, qrels, fixed, k=5)

    # q3 keeps d6, x1..x4: d5 (rank 11) is gone, so recall@100 = (1 + 1 + 1/2) / 3; the rest is unchanged.
    assert result["recall@100"] == pytest.approx(2.5 / 3, abs=1e-6)
    assert result["ndcg@10"] == pytest.approx(0.5078053917, abs=1e-6)
    assert result["per_query"]["q3"]["retrieved"] == 5


def test_empty_ranking_scores_zero_not_absent(tiny: tuple[dict[str, str], dict[str, dict[str, int]]]) -> None:
    queries, qrels = tiny

    def nothing_for_q2(query: str, k: int) -> list[str]:
        return [] if query == queries["q2"] else RANKINGS[query]

    result = evaluate_retrieval(queries, qrels, nothing_for_q2)

    assert result["queries"] == 3
    assert result["per_query"]["q2"]["ndcg@10"] == 0.0
    # nDCG@10 = (0.6433224083 + 0 + 0.3800937667) / 3 = 0.3411387250 ; MRR@10 = (1/2 + 0 + 1) / 3 = 0.5
    assert result["ndcg@10"] == pytest.approx(0.3411387250, abs=1e-6)
    assert result["mrr@10"] == pytest.approx(0.5, abs=1e-6)


def test_progress_and_latency_are_measured(tiny: tuple[dict[str, str], dict[str, dict[str, int]]]) -> None:
    queries, qrels = tiny
    calls: list[tuple[int, int]] = []

    def slow_for_q3(query: str, k: int) -> list[str]:
        if query == queries["q3"]:
            time.sleep(0.05)
        return RANKINGS[query]

    result = evaluate_retrieval(
        queries, qrels, slow_for_q3, progress=lambda done, total: calls.append((done, total))
    )

    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert result["per_query"]["q3"]["ms"] >= 50.0
    # Three latencies a <= b < c with c >= 50: p95 = b + 0.9 (c - b) >= 45, well above the median b.
    assert result["p95_ms"] >= 45.0
    assert result["max_ms"] >= 50.0
    assert result["p50_ms"] < result["p95_ms"]


def test_latency_percentiles_interpolate_like_numpy() -> None:
    # Sorted 1, 2, 3, 4, 10: p50 is the middle value 3; p95 sits at position 0.95 * 4 = 3.8,
    # i.e. 4 + 0.8 * (10 - 4) = 8.8. Mean = 20 / 5 = 4.
    summary = latency_summary([10.0, 3.0, 1.0, 4.0, 2.0])
    assert summary == pytest.approx({"p50_ms": 3.0, "p95_ms": 8.8, "mean_ms": 4.0, "max_ms": 10.0})
    assert latency_summary([7.0]) == {"p50_ms": 7.0, "p95_ms": 7.0, "mean_ms": 7.0, "max_ms": 7.0}


def test_nothing_to_evaluate_is_a_usage_error(tiny: tuple[dict[str, str], dict[str, dict[str, int]]]) -> None:
    queries, qrels = tiny
    with pytest.raises(UsageError, match="No query has both"):
        evaluate_retrieval({"other": "text"}, qrels, fixed)
    with pytest.raises(UsageError, match="k must be at least 1"):
        evaluate_retrieval(queries, qrels, fixed, k=0)


def test_compare_lines_variants_up_against_the_baseline(
    tiny: tuple[dict[str, str], dict[str, dict[str, int]]],
) -> None:
    queries, qrels = tiny
    good = evaluate_retrieval(queries, qrels, fixed)

    def worse(query: str, k: int) -> list[str]:
        return [] if query == queries["q2"] else RANKINGS[query]

    bad = evaluate_retrieval(queries, qrels, worse)

    rows = compare({"dense": good, "broken": bad})

    assert [row["variant"] for row in rows] == ["dense", "broken"]
    assert rows[0]["baseline"] and not rows[1]["baseline"]
    assert rows[0]["ndcg@10_delta"] == 0.0
    # q2 went from nDCG 0.5 to 0: the mean drops by 0.5 / 3.
    assert rows[1]["ndcg@10_delta"] == pytest.approx(-0.5 / 3, abs=1e-6)
    assert rows[1]["mrr@10_delta"] == pytest.approx(-1 / 9, abs=1e-6)
    assert (rows[1]["ndcg@10_wins"], rows[1]["ndcg@10_losses"]) == (0, 1)
    assert rows[1]["queries"] == 3 and "queries_delta" not in rows[1]  # counts get no delta
    assert "per_query" not in rows[1]

    against_broken = compare({"dense": good, "broken": bad}, baseline="broken")
    assert against_broken[0]["ndcg@10_delta"] == pytest.approx(0.5 / 3, abs=1e-6)
    with pytest.raises(UsageError, match="no variant named 'bm25'"):
        compare({"dense": good}, baseline="bm25")


# ----- paired bootstrap intervals (eval retrieval --ci) ---------------------------------------------
def _scores(values: list[float]) -> dict[str, dict[str, float]]:
    return {f"q{i}": {"ndcg@10": v} for i, v in enumerate(values)}


def test_paired_bootstrap_of_a_run_against_itself_is_zero() -> None:
    from ragcli.evaluation.runner import paired_bootstrap, significant

    run = _scores([0.1, 0.5, 0.9, 0.3])
    iv = paired_bootstrap(run, run)
    assert (iv["delta"], iv["low"], iv["high"], iv["p"], iv["queries"]) == (0.0, 0.0, 0.0, 1.0, 4)
    assert not significant(iv)


def test_paired_bootstrap_pairs_queries_so_a_uniform_gain_is_certain() -> None:
    from ragcli.evaluation.runner import paired_bootstrap, significant

    # Query difficulty varies wildly, but the variant gains exactly 0.05 on every query: an unpaired test
    # would drown that in the spread, the paired interval is the point itself.
    base = _scores([0.0, 0.9, 0.2, 0.6, 0.4, 0.1, 0.8, 0.3])
    better = {q: {"ndcg@10": s["ndcg@10"] + 0.05} for q, s in base.items()}
    iv = paired_bootstrap(better, base)
    assert iv["delta"] == pytest.approx(0.05)
    assert iv["low"] == pytest.approx(0.05) and iv["high"] == pytest.approx(0.05)
    assert iv["p"] == 0.0 and significant(iv)


def test_paired_bootstrap_straddles_zero_for_a_wash_and_is_reproducible() -> None:
    from ragcli.evaluation.runner import paired_bootstrap, significant

    base = _scores([0.5] * 40)
    mixed = _scores([0.6 if i % 2 else 0.4 for i in range(40)])
    iv = paired_bootstrap(mixed, base)
    assert iv["low"] < 0.0 < iv["high"] and iv["p"] > 0.5 and not significant(iv)
    assert paired_bootstrap(mixed, base) == iv
    with pytest.raises(UsageError, match="share no query"):
        paired_bootstrap(_scores([1.0]), {"other": {"ndcg@10": 0.0}})
