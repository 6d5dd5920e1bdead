"""Contextual chunks: the text that is embedded and keyword-indexed carries the document's title and the
chunk's heading path, so a chunk from the middle of a document still says what it is about. The text
shown and cited stays the chunk alone.

The template (`[chunking] context_template`) has two fields: `{context}` — the title and the heading path
joined by " > ", each part once — and `{text}`, the chunk. "{text}" alone switches context off. Parts the
chunk already starts with are left out (a document's first chunk usually opens with its title), and a
chunk without any context is embedded as it is.
"""

from __future__ import annotations

import string

DEFAULT_TEMPLATE = "{context}\n\n{text}"
FIELDS = frozenset({"context", "text"})


def check_template(template: str) -> str:
    """The template, or ValueError naming what is wrong with it (the config validator calls this)."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"context_template {template!r} is not a format string ({exc})") from None
    unknown = names - FIELDS
    if unknown:
        raise ValueError(
            f"context_template uses unknown field(s) {', '.join(sorted(unknown))}; "
            "the fields are {context} and {text}"
        )
    if "text" not in names:
        raise ValueError("context_template must contain {text}, or the chunk itself would not be indexed")
    return template


def context_line(title: str | None, heading: str | None, text: str) -> str:
    """Title and heading path as one line, without parts repeated or already at the head of `text`."""
    parts: list[str] = []
    for part in (title, *(heading.split(" > ") if heading else ())):
        part = " ".join((part or "").split())
        if part and part not in parts:
            parts.append(part)
    head = " ".join(text[:400].split()).lstrip("#=-*_ ").casefold()
    return " > ".join(part for part in parts if not head.startswith(_comparable(part)))


def contextual_text(template: str, title: str | None, heading: str | None, text: str) -> str:
    """What is embedded and keyword-indexed for a chunk: `text` itself when there is no context to add."""
    context = context_line(title, heading, text)
    if not context or template == "{text}":
        return text
    return template.format(context=context, text=text)


def _comparable(part: str) -> str:
    # Titles may be shortened with an ellipsis (loaders.text.shorten): compare the part before it.
    return part.rstrip("…").rstrip().casefold()
