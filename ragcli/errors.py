"""Domain errors. Library code raises these; only the CLI turns them into `Error: …` and an exit code.

    RagcliError                      every error ragcli raises on purpose; has .hint (the fix) and .exit_code
    ├── ConfigError                  bad key, bad value, unreadable config file            exit 2
    ├── UsageError                   a path that does not exist, a bad filter, …          exit 2
    ├── LockHeldError                another ingest holds the index's writer lock         exit 4
    ├── StoreError                   the index cannot be opened, read or written          exit 5
    │   └── EmbedderMismatchError    the index was built with another embedder            exit 5
    ├── ModelError                   a model file is missing or cannot be loaded          exit 5
    └── DocumentError                one document failed; the run goes on (dead letter file)
        ├── PermanentError           retrying cannot help: corrupt, encrypted, empty, undecodable
        │   └── UnsupportedError     no loader for this file type: counted, not a failure
        └── TransientError           may work next time: I/O hiccup, HTTP 429/5xx, timeout

Exit codes of the CLI: 0 all well; 1 unexpected internal error; 2 usage or configuration error;
3 some documents failed (the rest was indexed); 4 another ingest holds the lock; 5 the index or a model
cannot be used as configured; 6 a quality or health threshold was breached (eval golden, stats --check).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_LOCKED = 4
EXIT_STORE = 5
EXIT_THRESHOLD = 6


class RagcliError(Exception):
    """Base of every deliberate ragcli error. `hint` tells the user what to do about it."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  Fix: {self.hint}"


class ConfigError(RagcliError):
    exit_code = EXIT_USAGE


class UsageError(RagcliError):
    exit_code = EXIT_USAGE


class LockHeldError(RagcliError):
    exit_code = EXIT_LOCKED


class StoreError(RagcliError):
    exit_code = EXIT_STORE


class EmbedderMismatchError(StoreError):
    pass


class ModelError(RagcliError):
    exit_code = EXIT_STORE


class DocumentError(RagcliError):
    """One document could not be processed; `stage` names where (load, chunk, embed, write)."""

    retryable = False

    def __init__(self, message: str, *, stage: str = "load", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stage = stage


class PermanentError(DocumentError):
    retryable = False


class UnsupportedError(PermanentError):
    pass


class TransientError(DocumentError):
    retryable = True
