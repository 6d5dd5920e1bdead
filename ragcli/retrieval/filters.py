"""Metadata filters, built from parsed values and never by pasting user text into SQL.

- `--source GLOB`: matched in Python against the indexed source paths; the filter names the matching
  document ids (hex strings this program produced).
- `--filter key=value`: the key must be one of FIELD_COLUMNS; the value is converted to the column's
  type and, for text, quoted by `sql_literal` (quotes doubled), so it can only ever be a literal.
  Repeating a key means OR; different keys mean AND.
- `--since`: an ISO date or datetime, or an age such as 7d / 24h / 30m; compared with the file's mtime.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ragcli.errors import UsageError

FIELD_COLUMNS: dict[str, type] = {
    "title": str,
    "heading": str,
    "doc_type": str,
    "page": int,
    "source": str,
    "doc_id": str,
}

MATCH_NOTHING = "doc_id IS NULL"  # ids are never null: a filter that no document passes


@dataclass
class Filters:
    sources: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    since: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.sources or self.fields or self.since is not None)

    def fingerprint(self) -> str:
        return repr((sorted(self.sources), sorted(self.fields), self.since))


def parse_field_filter(expression: str) -> tuple[str, str]:
    key, sep, value = expression.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(
            f"Bad filter {expression!r}: expected key=value.",
            hint=f"Use --filter KEY=VALUE with KEY one of {', '.join(FIELD_COLUMNS)}.",
        )
    if key not in FIELD_COLUMNS:
        raise UsageError(
            f"Unknown filter field {key!r}.", hint=f"Filter on one of {', '.join(FIELD_COLUMNS)}."
        )
    if FIELD_COLUMNS[key] is int:
        try:
            int(value)
        except ValueError:
            raise UsageError(f"Filter {key} needs a whole number, not {value!r}.") from None
    return key, value


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: float | None = None) -> float:
    """Seconds since the epoch for '7d', '24h', '2026-01-31' or '2026-01-31T12:00:00'."""
    now = time.time() if now is None else now
    match = _AGE.match(value)
    if match:
        return now - float(match.group(1)) * _AGE_SECONDS[match.group(2)]
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"Cannot read --since {value!r}.", hint="Give an age like 7d, 24h, 30m or a date like 2026-01-31."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def sql_literal(value: str) -> str:
    from ragcli.store.lance import sql_literal as quote

    return quote(value)


def _source_matches(pattern: str, source: str) -> bool:
    if fnmatch.fnmatchcase(source, pattern):
        return True
    # A relative pattern like 'guides/*.md' or '*.md' matches the tail of the absolute path.
    if not pattern.startswith("/"):
        absolute = str(Path(pattern).absolute()) if not pattern.startswith("*") else None
        if absolute and fnmatch.fnmatchcase(source, absolute):
            return True
        return fnmatch.fnmatchcase(source, "*/" + pattern)
    return False


def build_where(filters: Filters, sources_by_doc: Iterable[tuple[str, str]]) -> str | None:
    """A LanceDB filter for `filters`; `sources_by_doc` yields (doc_id, source) of the indexed documents."""
    parts: list[str] = []
    if filters.sources:
        ids = sorted(
            {doc for doc, src in sources_by_doc if any(_source_matches(p, src) for p in filters.sources)}
        )
        if not ids:
            return MATCH_NOTHING
        parts.append(_in_ids(ids))
    by_key: dict[str, list[str]] = {}
    for key, value in filters.fields:
        by_key.setdefault(key, []).append(value)
    for key, values in sorted(by_key.items()):
        if key not in FIELD_COLUMNS:  # parse_field_filter rejects these; never trust a caller
            raise UsageError(f"Unknown filter field {key!r}.")
        if FIELD_COLUMNS[key] is int:
            literals = [str(int(v)) for v in values]
        else:
            literals = [sql_literal(v) for v in values]
        parts.append("(" + " OR ".join(f"{key} = {lit}" for lit in literals) + ")")
    if filters.since is not None:
        parts.append(f"mtime >= {float(filters.since)!r}")
    return " AND ".join(parts) if parts else None


def _in_ids(ids: Sequence[str]) -> str:
    for doc_id in ids:
        if not re.fullmatch(r"[0-9a-f]+", doc_id):
            raise ValueError(f"not a document id: {doc_id!r}")
    return "doc_id IN (" + ", ".join(f"'{d}'" for d in ids) + ")"
