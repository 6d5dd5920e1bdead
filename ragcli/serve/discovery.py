"""`<home>/serve.json`: where a running `ragcli serve` listens, and which configuration it answers with.

The client uses a server only when the file's pid is alive and the server answers with the same
configuration digest as the client's own, so `ragcli ask` through a server gives the answer the
in-process pipeline would give. Standard library only: this runs on the CLI's fast path.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragcli.config import Settings

SERVE_FILE = "serve.json"

# Keys a request carries itself (or that do not change an answer): left out of the digest, so
# `ragcli ask --k 3 --no-rerank` can still use a server started with other defaults.
_PER_REQUEST_KEYS = {
    ("retrieval", "top_k"),
    ("retrieval", "mode"),
    ("rerank", "enabled"),
    ("generation", "provider"),
    ("generation", "stream"),
    ("cache", "enabled"),
    # Threads change how fast, not what.
    ("embedding", "threads"),
    ("rerank", "threads"),
}
_IRRELEVANT_SECTIONS = {"serve", "log_level", "thresholds", "cost", "telemetry"}


@dataclass
class ServeInfo:
    pid: int
    host: str
    port: int
    started: float
    digest: str
    token_required: bool = False


def serve_file(settings: Settings) -> Path:
    return settings.home / SERVE_FILE


def config_digest(settings: Settings) -> str:
    """A hash of everything that shapes an answer, apart from what a request states itself."""
    data: dict[str, Any] = settings.config.model_dump(mode="json")
    for section in _IRRELEVANT_SECTIONS:
        data.pop(section, None)
    for section, key in _PER_REQUEST_KEYS:
        data.get(section, {}).pop(key, None)
    data["store_uri"] = settings.store_uri
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def write_serve_file(settings: Settings, info: ServeInfo) -> Path:
    path = serve_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all: a client must never read half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".serve-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(info), fh)
    os.replace(tmp, path)
    return path


def remove_serve_file(settings: Settings, pid: int) -> None:
    """Only our own file: a second server on another port may have replaced it."""
    info = read_serve_file(settings)
    if info is not None and info.pid == pid:
        serve_file(settings).unlink(missing_ok=True)


def read_serve_file(settings: Settings) -> ServeInfo | None:
    try:
        raw = json.loads(serve_file(settings).read_text(encoding="utf-8"))
        return ServeInfo(
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            port=int(raw["port"]),
            started=float(raw["started"]),
            digest=str(raw["digest"]),
            token_required=bool(raw.get("token_required", False)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True
