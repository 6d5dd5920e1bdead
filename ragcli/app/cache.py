"""`ragcli cache stats|clear`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from ragcli.app.console import human_bytes, print_json, stdout
from ragcli.config import Settings
from ragcli.errors import EXIT_OK, UsageError


def cache_stats(settings: Settings, *, json_output: bool) -> int:
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.embeddings import EmbeddingCache

    answers = AnswerCache(settings).stats()
    embeddings = EmbeddingCache(settings).stats()
    hits = answers["exact_hits"] + answers["semantic_hits"]
    lookups = hits + answers["exact_misses"] - answers["semantic_hits"]
    data = {
        "answers": answers,
        "embeddings": embeddings,
        "hit_rate": round(hits / lookups, 4) if lookups > 0 else None,
        "directory": str(settings.cache_dir),
    }
    if json_output:
        print_json(data)
        return EXIT_OK
    table = Table("cache", "entries", "size", "hits", "misses")
    table.add_row(
        "answers (exact)",
        str(answers["entries"]),
        human_bytes(answers["size_bytes"]),
        str(answers["exact_hits"]),
        str(answers["exact_misses"]),
    )
    table.add_row(
        "answers (semantic)", "", "", str(answers["semantic_hits"]), str(answers["semantic_misses"])
    )
    table.add_row(
        "query embeddings", str(embeddings["query_entries"]), human_bytes(embeddings["size_bytes"]), "", ""
    )
    table.add_row("chunk embeddings", str(embeddings["chunk_entries"]), "", "", "")
    stdout.print(table)
    rate = data["hit_rate"]
    stdout.print(f"answer hit rate: {'n/a' if rate is None else f'{rate:.1%}'}")
    return EXIT_OK


def cache_clear(settings: Settings, kinds: Sequence[str], *, json_output: bool) -> int:
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.embeddings import EmbeddingCache

    wanted = set(kinds) or {"answers", "embeddings"}
    unknown = wanted - {"answers", "embeddings"}
    if unknown:
        raise UsageError(
            f"Unknown cache kind {sorted(unknown)[0]!r}.", hint="Use --kind answers or --kind embeddings."
        )
    cleared = {}
    if "answers" in wanted:
        cleared["answers"] = AnswerCache(settings).clear()
    if "embeddings" in wanted:
        cleared["embeddings"] = EmbeddingCache(settings).clear()
    if json_output:
        print_json({"cleared": cleared})
    else:
        for kind, count in cleared.items():
            stdout.print(f"Cleared {count} {kind} entries.")
    return EXIT_OK
