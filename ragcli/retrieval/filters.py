"""Metadata filters, built from parsed values and never by pasting user text into SQL.

- `--source GLOB`: matched in Python against the indexed source paths; the filter names the matching
  document ids (hex strings this program produced).
- `--filter key=value`: the key must be one of FIELD_COLUMNS; the value is converted to the column's
  type and, for text, quoted by `sql_literal` (quotes doubled), so it can only ever be a literal.
  Text matches whole and case-insensitively (`title=aurora am-5 warranty`); `doc_type` also accepts the
  other names of its format (`md` = `markdown`, `htm` = `html`, `txt` = `text`, `rst` =
  `restructuredtext`).
- `--filter key~text`: partial match, case-insensitive: the field contains `text` (`title~warranty`).
  The text becomes a LIKE pattern with `%`, `_` and the escape character escaped, so it matches only
  itself. Text fields only.
  Repeating a key means OR (across both forms); different keys mean AND.
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
from typing import Any

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
LIKE_ESCAPE = "\\"
# The names a format goes by: the index stores the file's extension, users say either.
_DOC_TYPE_ALIASES = [
    {"md", "markdown"},
    {"htm", "html", "xhtml"},
    {"txt", "text"},
    {"rst", "restructuredtext"},
    {"pdf"},
]


@dataclass
class Filters:
    sources: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    since: float | None = None
    contains: list[tuple[str, str]] = field(default_factory=list)
    """`key~text` filters: the field contains the text (case-insensitive)."""

    @property
    def empty(self) -> bool:
        return not (self.sources or self.fields or self.contains or self.since is not None)

    def fingerprint(self) -> str:
        # Case-folded, as matching is: `title=Pumps` and `title=pumps` share cached answers.
        fields = sorted((k, v.casefold()) for k, v in self.fields)
        if not self.contains:
            return repr((sorted(self.sources), fields, self.since))
        contains = sorted((k, v.casefold()) for k, v in self.contains)
        return repr((sorted(self.sources), fields, self.since, contains))

    def describe(self) -> str:
        """The filters as a user would type them, for messages."""
        parts = [f"--source {s}" for s in self.sources]
        parts += [f"{k}={v}" for k, v in self.fields] + [f"{k}~{v}" for k, v in self.contains]
        if self.since is not None:
            parts.append(f"--since {datetime.fromtimestamp(self.since, UTC).isoformat(timespec='seconds')}")
        return ", ".join(parts)


def parse_field_filter(expression: str) -> tuple[str, str]:
    """`key=value` → (key, value); see `parse_filter_expression` for `key~text` too."""
    key, op, value = parse_filter_expression(expression)
    if op != "=":
        raise UsageError(f"Bad filter {expression!r}: expected key=value.")
    return key, value


def parse_filter_expression(expression: str) -> tuple[str, str, str]:
    """`key=value` or `key~text` → (key, "=" or "~", value); the first = or ~ separates them."""
    cut = min((i for i in (expression.find("="), expression.find("~")) if i >= 0), default=-1)
    key, op, value = expression[:cut].strip(), expression[cut : cut + 1], expression[cut + 1 :]
    if cut < 0 or not key:
        raise UsageError(
            f"Bad filter {expression!r}: expected key=value or key~text.",
            hint=f"Use --filter KEY=VALUE (whole value) or KEY~TEXT (contains), KEY one of {', '.join(FIELD_COLUMNS)}.",
        )
    if key not in FIELD_COLUMNS:
        raise UsageError(
            f"Unknown filter field {key!r}.", hint=f"Filter on one of {', '.join(FIELD_COLUMNS)}."
        )
    if FIELD_COLUMNS[key] is int:
        if op == "~":
            raise UsageError(f"Filter {key} is a number: use {key}=N, not {key}~.", hint=f"--filter {key}=2")
        try:
            int(value)
        except ValueError:
            raise UsageError(
                f"Filter {key} needs a whole number, not {value!r}.", hint=f"--filter {key}=2"
            ) from None
    if key == "doc_type" and op == "=" and not _known_doc_type(value):
        # A typo would otherwise filter everything out and read as "no document matches".
        raise UsageError(
            f"Unknown document type {value!r}.",
            hint="Use the extension of the files you indexed: doc_type=md, pdf, html, txt, docx, eml …",
        )
    return key, op, value


def _known_doc_type(value: str) -> bool:
    from ragcli.loaders import supported_suffixes

    # "" is the type of files without an extension (Makefile, Dockerfile).
    known = {suffix.lstrip(".") for suffix in supported_suffixes()} | set().union(*_DOC_TYPE_ALIASES) | {""}
    return all(name in known for name in doc_type_names(value))


def parse_field_filters(expressions: Iterable[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """`--filter` values → (whole-value filters, contains filters)."""
    exact: list[tuple[str, str]] = []
    partial: list[tuple[str, str]] = []
    for expression in expressions:
        key, op, value = parse_filter_expression(expression)
        (exact if op == "=" else partial).append((key, value))
    return exact, partial


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
        by_key.setdefault(key, []).append(_field_condition(key, value))
    for key, value in filters.contains:
        by_key.setdefault(key, []).append(_contains_condition(key, value))
    for _key, conditions in sorted(by_key.items()):
        parts.append("(" + " OR ".join(conditions) + ")")
    if filters.since is not None:
        parts.append(f"mtime >= {float(filters.since)!r}")
    return " AND ".join(parts) if parts else None


def _checked_key(key: str) -> str:
    if key not in FIELD_COLUMNS:  # parse_filter_expression rejects these; never trust a caller
        raise UsageError(f"Unknown filter field {key!r}.")
    return key


def _field_condition(key: str, value: str) -> str:
    if FIELD_COLUMNS[_checked_key(key)] is int:
        return f"{key} = {int(value)}"
    if key == "doc_type":
        names = doc_type_names(value)
        return f"lower({key}) IN (" + ", ".join(sql_literal(n) for n in names) + ")"
    # lower() on both sides: the same folding for the column and the value, whatever the script.
    return f"lower({key}) = lower({sql_literal(value)})"


def _contains_condition(key: str, text: str) -> str:
    if FIELD_COLUMNS[_checked_key(key)] is not str:
        raise UsageError(f"Filter {key} is a number: use {key}=N, not {key}~.")
    pattern = "%" + like_escape(text) + "%"
    return f"lower({key}) LIKE lower({sql_literal(pattern)}) ESCAPE {sql_literal(LIKE_ESCAPE)}"


def like_escape(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself: the escape character, % and _ escaped."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def doc_type_names(value: str) -> list[str]:
    """Every stored doc_type a user's `doc_type=value` means: `markdown` → ['markdown', 'md']."""
    wanted = value.strip().lower().lstrip(".")
    for names in _DOC_TYPE_ALIASES:
        if wanted in names:
            return sorted(names)
    return [wanted]


def _in_ids(ids: Sequence[str]) -> str:
    for doc_id in ids:
        if not re.fullmatch(r"[0-9a-f]+", doc_id):
            raise ValueError(f"not a document id: {doc_id!r}")
    return "doc_id IN (" + ", ".join(f"'{d}'" for d in ids) + ")"


# ----- when the filters leave nothing ---------------------------------------------------------------
FILTERED_OUT = "filtered_out"


def nothing_passes(store: Any, where: str | None) -> bool:
    """True when no indexed chunk passes `where`: the filters, not the question, emptied the search.

    Called only after a filtered search came back empty, so the count costs nothing on the usual path.
    """
    if where is None:
        return False
    if where == MATCH_NOTHING:
        return True
    return int(store.table.count_rows(where)) == 0


def filtered_out_answer(filters: Filters) -> str:
    return f"No document matches the filters ({filters.describe()}), so there is nothing to answer from."
