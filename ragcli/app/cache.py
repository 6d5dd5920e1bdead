"""`ragcli cache stats|clear`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragcli.app.console import human_bytes, print_json, print_table, stdout
from ragcli.config import Settings
from ragcli.errors import EXIT_OK, UsageError

_ANSWER_COUNTERS = ("exact_hits", "exact_misses", "semantic_hits", "semantic_misses")


def cache_stats(settings: Settings, *, json_output: bool) -> int:
    from ragcli.cache.answers import AnswerCache
    from ragcli.cache.embeddings import EmbeddingCache

    shared = settings.config.cache.backend == "redis"
    if settings.cache_dir.exists() or shared:
        answers = AnswerCache(settings).stats()
        embeddings = EmbeddingCache(settings).stats()
    else:  # opening the caches would create them; looking must not create state
        answers = dict.fromkeys(("entries", "size_bytes", *_ANSWER_COUNTERS), 0)
        embeddings = dict.fromkeys(("query_entries", "chunk_entries", "size_bytes"), 0)
    hits = answers["exact_hits"] + answers["semantic_hits"]
    lookups = hits + answers["exact_misses"] - answers["semantic_hits"]
    data = {
        "answers": answers,
        "embeddings": embeddings,
        "hit_rate": round(hits / lookups, 4) if lookups > 0 else None,
        "directory": settings.config.cache.redis_url if shared else str(settings.cache_dir),
    }
    if json_output:
        print_json(data)
        return EXIT_OK
    print_table(
        ["cache", "entries", "size", "hits", "misses"],
        [
            (
                "answers (exact)",
                answers["entries"],
                human_bytes(answers["size_bytes"]),
                answers["exact_hits"],
                answers["exact_misses"],
            ),
            ("answers (semantic)", "", "", answers["semantic_hits"], answers["semantic_misses"]),
            ("query embeddings", embeddings["query_entries"], human_bytes(embeddings["size_bytes"]), "", ""),
            ("chunk embeddings", embeddings["chunk_entries"], "", "", ""),
        ],
    )
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
