"""Turn a file's bytes into text, or say plainly why they are not text.

Order of evidence, strongest first:
1. a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE);
2. NUL bytes: text in UTF-16/32 without a BOM has them in a regular pattern (every other byte, or three
   of four); NUL bytes in any other arrangement mean the file is binary;
3. strict UTF-8;
4. cp1252, the legacy 8-bit encoding most such files were written in (a superset of Latin-1's printable
   range); bytes cp1252 leaves undefined fall back to Latin-1. The caller is told it was a fallback
   (`is_fallback`) because the guess can be wrong for, say, a KOI8-R file.
Decoded text with a high share of control characters is rejected as binary too.
"""

from __future__ import annotations

import codecs
import re

from ragcli.errors import PermanentError

FALLBACK_ENCODINGS = frozenset({"cp1252", "latin-1"})

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# How much of a file the heuristics look at; enough to be sure, cheap on a 100 MB file.
_SAMPLE_BYTES = 64 * 1024
# Tab, newlines, form feed and ESC (colour codes in logs) are at home in text; other controls are not.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f\x80-\x9f]")
_MAX_CONTROL_SHARE = 0.05
_MIN_CONTROLS = 3


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode `data`, returning (text, encoding name). Raise PermanentError for binary or empty input.

    The BOM is not part of the returned text. Encoding names are Python codec names: "utf-8",
    "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", or a fallback ("cp1252", "latin-1").
    """
    if not data:
        raise PermanentError("empty document: no text to index")
    text, encoding = _decode(data)
    _reject_control_heavy(text)
    if not text.strip():
        raise PermanentError("empty document: no text to index")
    return text, encoding


def is_fallback(encoding: str) -> bool:
    """True if `encoding` was a guess for legacy 8-bit text rather than a certainty."""
    return encoding in FALLBACK_ENCODINGS


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte order mark at the start of `data` announces, if there is one."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def _decode(data: bytes) -> tuple[str, str]:
    by_bom = bom_encoding(data)
    if by_bom is not None:
        bom_length = 4 if by_bom.startswith("utf-32") else 3 if by_bom == "utf-8" else 2
        # A BOM is strong evidence; a stray bad sequence further on should not lose the whole file.
        return data[bom_length:].decode(by_bom, errors="replace"), by_bom

    first_nul = data.find(b"\x00")
    if first_nul != -1:
        wide = _guess_wide_encoding(data)
        if wide is not None:
            try:
                return data.decode(wide), wide
            except UnicodeDecodeError:
                pass
        raise PermanentError(f"binary content, not text (NUL byte at offset {first_nul})")

    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; Latin-1 maps every byte, so this cannot fail.
        return data.decode("latin-1"), "latin-1"


def _guess_wide_encoding(data: bytes) -> str | None:
    """UTF-16/32 without a BOM, recognised by where the NUL bytes of mostly-Latin text fall."""
    sample = data[:_SAMPLE_BYTES]
    sample = sample[: len(sample) - len(sample) % 4] or sample
    if len(data) % 4 == 0 and len(sample) >= 4:
        lanes = [sample[i::4].count(0) / (len(sample) // 4 or 1) for i in range(4)]
        if lanes[0] < 0.1 and min(lanes[1:]) > 0.9:
            return "utf-32-le"
        if lanes[3] < 0.1 and min(lanes[:3]) > 0.9:
            return "utf-32-be"
    if len(data) % 2 == 0 and len(sample) >= 2:
        half = len(sample) // 2
        even_nuls = sample[0::2].count(0) / half
        odd_nuls = sample[1::2].count(0) / half
        if odd_nuls > 0.3 and even_nuls < 0.05:
            return "utf-16-le"
        if even_nuls > 0.3 and odd_nuls < 0.05:
            return "utf-16-be"
    return None


def _reject_control_heavy(text: str) -> None:
    sample = text[:_SAMPLE_BYTES]
    if not sample:
        return
    controls = len(_CONTROL_CHARS.findall(sample))
    # A short note with one stray control character is still a note.
    if controls > _MIN_CONTROLS and controls / len(sample) > _MAX_CONTROL_SHARE:
        raise PermanentError(
            f"binary content, not text ({controls} control characters in the first {len(sample)})"
        )
