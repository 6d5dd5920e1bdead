"""The dead letter file: one JSON object per document that failed, keyed by its source path.

The file is rewritten whole through a temporary file and `os.replace`, so a crash leaves the old or the
new file, never half of one. A document that later succeeds is removed from it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ragcli.state import private_file

logger = logging.getLogger(__name__)


@dataclass
class DeadLetter:
    source: str
    stage: str
    error_type: str
    message: str
    attempts: int
    content_hash: str | None
    retryable: bool
    time: float
    first_failed: float

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["time_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time))
        return data


class DeadLetterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, DeadLetter] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    data.pop("time_iso", None)
                    entry = DeadLetter(**data)
                except (ValueError, TypeError, AttributeError) as exc:
                    # A damaged line must not stop ingestion; the document is simply tried again.
                    logger.warning("Ignoring unreadable line %d of %s: %s", lineno, self.path, exc)
                    continue
                self.entries[entry.source] = entry

    def get(self, source: str) -> DeadLetter | None:
        return self.entries.get(source)

    def record(
        self,
        source: str,
        *,
        stage: str,
        error: BaseException,
        content_hash: str | None,
        retryable: bool,
    ) -> DeadLetter:
        now = time.time()
        previous = self.entries.get(source)
        same_content = previous is not None and previous.content_hash == content_hash
        entry = DeadLetter(
            source=source,
            stage=stage,
            error_type=type(error).__name__,
            message=getattr(error, "message", None) or str(error) or type(error).__name__,
            attempts=(previous.attempts + 1) if (previous and same_content) else 1,
            content_hash=content_hash,
            retryable=retryable,
            time=now,
            first_failed=previous.first_failed if (previous and same_content) else now,
        )
        self.entries[source] = entry
        self._dirty = True
        return entry

    def resolve(self, source: str) -> None:
        if self.entries.pop(source, None) is not None:
            self._dirty = True

    def clear(self) -> int:
        count = len(self.entries)
        self.entries.clear()
        self._dirty = True
        self.save()
        return count

    def save(self) -> None:
        if not self._dirty:
            return
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        fd = private_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with open(fd, "w", encoding="utf-8") as fh:
            for entry in sorted(self.entries.values(), key=lambda e: e.source):
                fh.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._dirty = False
