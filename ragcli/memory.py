"""glibc malloc settings for the long-running commands (`ingest`, `reindex`, `serve`).

By default glibc gives threads that allocate at once heaps of their own (up to 8 per core) and seldom
hands their free pages back to the kernel. onnxruntime's, LanceDB's and the parsers' threads all
allocate, so a long ingest's resident memory climbed with every write batch although Python's own heap
stayed near 115 MB (docs/benchmarks.md, "Memory"). Elsewhere (musl, macOS) these are no-ops.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

_M_ARENA_MAX = -8  # glibc's mallopt parameter, the same setting as MALLOC_ARENA_MAX


def _libc() -> Any:
    import ctypes

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas before the worker threads start; True when set here. Over 10,000
    server requests the growth was 54 MB with the default and 47 MB with 2 arenas, 70 MB smaller
    overall, at the same speed (docs/benchmarks.md, "`ragcli serve`"). A MALLOC_ARENA_MAX of the user's
    wins."""
    libc = _libc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        return bool(libc.mallopt(_M_ARENA_MAX, count))
    except AttributeError:  # not glibc (musl has no mallopt arenas)
        return False


def release_free_memory() -> None:
    """Hand the free pages at the top of every heap back to the kernel (glibc's malloc_trim). Cheap next
    to the write batch an ingest calls it after, and 20–100 MB each time on a large corpus."""
    libc = _libc()
    if libc is None:
        return
    with contextlib.suppress(AttributeError):  # not glibc
        libc.malloc_trim(0)
