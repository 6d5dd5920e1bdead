"""Opening diskcache folders so that damage costs a miss, never a crash or a wrong answer."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def open_cache(directory: Path, *, size_limit_mb: int) -> Any:
    """A diskcache.Cache at `directory`; a damaged one is moved aside and a fresh one made."""
    import diskcache

    settings = {"size_limit": size_limit_mb * 1024 * 1024, "eviction_policy": "least-recently-used"}
    try:
        cache = diskcache.Cache(str(directory), timeout=10, **settings)
        cache.get("__probe__")  # reading the schema is what fails on a truncated database
        return cache
    except (sqlite3.DatabaseError, OSError, ValueError) as exc:
        aside = directory.with_name(f"{directory.name}.corrupt-{int(time.time())}")
        logger.warning(
            "Cache %s is unreadable (%s); moved it to %s and starting afresh", directory, exc, aside
        )
        try:
            directory.rename(aside)
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
        return diskcache.Cache(str(directory), timeout=10, **settings)


def safe_get(cache: Any, key: str) -> Any:
    """`cache.get` that treats an undecodable or unreadable value as a miss (and drops it)."""
    try:
        return cache.get(key)
    except (sqlite3.DatabaseError, OSError, EOFError, ValueError, TypeError, AttributeError) as exc:
        logger.warning("Dropping an unreadable cache entry (%s)", exc)
        try:
            cache.delete(key)
        except Exception:
            logger.debug("Could not delete the damaged entry", exc_info=True)
        return None
    except Exception as exc:  # pickle raises many types on damaged data
        logger.warning("Dropping an unreadable cache entry (%s: %s)", type(exc).__name__, exc)
        return None
