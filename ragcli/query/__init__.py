"""The query pipeline behind `ragcli ask`, `serve` and `eval`: the engine (embed → search → fuse →
rerank → compress → generate) and the caches in front of it."""

from ragcli.query.cached import ask_with_cache
from ragcli.query.engine import STAGES, AskOptions, AskResult, QueryEngine, Retrieval, inject_fault

__all__ = ["STAGES", "AskOptions", "AskResult", "QueryEngine", "Retrieval", "ask_with_cache", "inject_fault"]
