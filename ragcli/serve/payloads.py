"""JSON shapes shared by the HTTP server and the MCP tools (no third-party import: the `mcp` extra
does not bring prometheus-client or uvicorn)."""

from __future__ import annotations

from typing import Any


def passage_json(p: Any) -> dict[str, Any]:
    return {
        "chunk_id": p.chunk_id,
        "doc_id": p.doc_id,
        "source": p.source,
        "title": p.title,
        "heading": p.heading,
        "page": p.page,
        "chunk_index": p.chunk_index,
        "score": round(float(p.score), 6),
        "text": p.text,
    }


def search_json(question: str, retrieval: Any, total_ms: float) -> dict[str, Any]:
    """The /v1/search answer (and the MCP `search` tool's) for a query.Retrieval."""
    timings = dict(retrieval.timings_ms)
    timings["total"] = round(total_ms, 2)
    return {
        "question": question,
        "mode": retrieval.mode,
        "passages": [passage_json(p) for p in retrieval.passages],
        "candidates": retrieval.candidates,
        "degraded": bool(retrieval.degraded_reasons),
        "degraded_reason": "; ".join(retrieval.degraded_reasons) or None,
        "notes": retrieval.notes,
        "timings_ms": timings,
    }
