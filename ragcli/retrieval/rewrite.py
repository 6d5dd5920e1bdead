"""Query rewriting and multi-query expansion with the configured LLM.

The rewrite turns a conversational question into a standalone search query; multi-query adds N other
phrasings. Each query is searched and all rankings are fused, so a phrasing the index does not match
is rescued by one it does. With the extractive provider there is no LLM: the stage is skipped and the
trace says so. Any LLM failure keeps the original question alone (a note, not an error).
"""

from __future__ import annotations

import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

REWRITE_PROMPT = (
    "Rewrite the user's question as one short, standalone search query for a document search engine. "
    "Keep every name, number and technical term. Reply with the query only."
)
MULTI_PROMPT = (
    "Write {n} different short search queries that would find documents answering the user's question. "
    "Keep every name, number and technical term. One query per line, no numbering, nothing else."
)


def expand_queries(
    generator: Any, question: str, *, rewrite: bool, extra: int
) -> tuple[list[str], list[str]]:
    """(queries to search, notes for the trace). The original question always comes first."""
    complete = getattr(generator, "complete", None)
    if complete is None:
        return [question], ["rewrite/multi-query skipped: the provider has no LLM"]
    queries = [question]
    notes: list[str] = []
    try:
        if rewrite:
            rewritten = _clean_line(complete(_messages(REWRITE_PROMPT, question), 64))
            if rewritten and rewritten.lower() != question.lower():
                queries.append(rewritten)
        if extra:
            reply = complete(_messages(MULTI_PROMPT.format(n=extra), question), 48 * extra)
            lines = [_clean_line(line) for line in reply.splitlines()]
            queries.extend(line for line in lines if line)
    except Exception as exc:  # the question alone still retrieves
        notes.append(f"rewrite/multi-query failed, searched the question alone: {exc}")
        logger.warning("Query expansion failed (%s); searching the question alone", exc)
        return [question], notes
    unique = list(dict.fromkeys(q for q in queries if q))[: 1 + int(rewrite) + extra]
    notes.append(f"searched {len(unique)} queries: " + " | ".join(unique[1:]))
    return unique, notes


def _messages(instruction: str, question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": instruction}, {"role": "user", "content": question}]


_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.)]|query\s*\d*:)\s*", re.IGNORECASE)


def _clean_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return _NUMBERING.sub("", line).strip().strip('"').strip()
