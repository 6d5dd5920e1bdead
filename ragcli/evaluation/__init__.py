"""Evaluation for `ragcli eval`: retrieval on BEIR data, QA on SQuAD 2.0, and users' golden sets.

Pure library code: each scorer takes plain callables (retrieve, answer) so the CLI decides how a
variant retrieves and generates. Nothing heavy is imported here; ir-measures loads when scores are
computed (runner.score_rankings).

    beir    load_corpus / load_queries / load_qrels, write_corpus_files, corpus_id_for_source
    runner  evaluate_retrieval, score_rankings, latency_summary, compare
    squad   load_squad, paragraph_documents, normalize_answer, exact_match, f1_score, is_refusal, score_qa
    golden  load_golden, score_golden, check_thresholds
"""

from __future__ import annotations

from ragcli.evaluation.beir import (
    BeirDataset,
    CorpusDoc,
    corpus_id_for_source,
    load_beir,
    load_corpus,
    load_qrels,
    load_queries,
    write_corpus_files,
)
from ragcli.evaluation.golden import GoldenItem, check_thresholds, load_golden, score_golden
from ragcli.evaluation.runner import METRICS, compare, evaluate_retrieval
from ragcli.evaluation.squad import SquadExample, is_refusal, load_squad, paragraph_documents, score_qa

__all__ = [
    "METRICS",
    "BeirDataset",
    "CorpusDoc",
    "GoldenItem",
    "SquadExample",
    "check_thresholds",
    "compare",
    "corpus_id_for_source",
    "evaluate_retrieval",
    "is_refusal",
    "load_beir",
    "load_corpus",
    "load_golden",
    "load_qrels",
    "load_queries",
    "load_squad",
    "paragraph_documents",
    "score_golden",
    "score_qa",
    "write_corpus_files",
]
