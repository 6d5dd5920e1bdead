"""The service layer between the CLI (and the other front doors) and the pipeline, one module per
command group: it runs commands, draws Rich output and logs to stderr."""

from ragcli.app.ask import read_question, run_ask
from ragcli.app.cache import cache_clear, cache_stats
from ragcli.app.console import print_json, setup_logging, since_timestamp
from ragcli.app.evaluate import run_eval_golden, run_eval_qa, run_eval_retrieval
from ragcli.app.history import run_history, run_history_show
from ragcli.app.ingest import dlq_clear, dlq_list, dlq_retry, run_ingest, run_reindex
from ragcli.app.settings import show_config, show_default_config
from ragcli.app.stats import run_feedback, run_stats

__all__ = [
    "cache_clear",
    "cache_stats",
    "dlq_clear",
    "dlq_list",
    "dlq_retry",
    "print_json",
    "read_question",
    "run_ask",
    "run_eval_golden",
    "run_eval_qa",
    "run_eval_retrieval",
    "run_feedback",
    "run_history",
    "run_history_show",
    "run_ingest",
    "run_reindex",
    "run_stats",
    "setup_logging",
    "show_config",
    "show_default_config",
    "since_timestamp",
]
