"""Source code, configuration and markup-as-text files (.py, .go, .tex, .org, .yaml, …).

The text is kept as it is; the title is the file name (a first line of code is no title). Top-level
definitions (Python `def`/`class`, Go `func`/`type`, JavaScript/TypeScript `function`/`class`) and
LaTeX/Org section commands become headings, so a citation names the function or section it points into.
"""

from __future__ import annotations

import re
from pathlib import Path

from ragcli.loaders.text import decode_document, require_text, sections_from_headings
from ragcli.models import ParsedDocument, Section

_PY = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.MULTILINE)
_GO = re.compile(r"^(?:func[ \t]+(?:\([^)]*\)[ \t]*)?|type[ \t]+)(\w+)", re.MULTILINE)
_JS = re.compile(
    r"^(?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?(?:function\*?|class)[ \t]+(\w+)", re.MULTILINE
)
_TEX = re.compile(r"^[ \t]*\\(part|chapter|section|subsection|subsubsection)\*?\{([^}]*)\}", re.MULTILINE)
_ORG = re.compile(r"^(\*+)[ \t]+(.+?)[ \t]*$", re.MULTILINE)
_TEX_LEVEL = {"part": 1, "chapter": 2, "section": 3, "subsection": 4, "subsubsection": 5}
_DEFINITIONS = {".py": _PY, ".go": _GO, ".js": _JS, ".mjs": _JS, ".ts": _JS, ".tsx": _JS, ".jsx": _JS}

CODE_SUFFIXES = (
    ".py",
    ".pyi",
    ".go",
    ".js",
    ".mjs",
    ".ts",
    ".tsx",
    ".jsx",
    ".java",
    ".kt",
    ".scala",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".rb",
    ".rs",
    ".php",
    ".swift",
    ".sh",
    ".bash",
    ".zsh",
    ".ps1",
    ".sql",
    ".r",
    ".lua",
    ".pl",
    ".css",
    ".scss",
    ".yaml",
    ".yml",
    ".toml",
    ".ini",
    ".cfg",
    ".conf",
    ".tex",
    ".org",
    ".adoc",
    ".log",
    ".in",
    ".xsl",
    ".svg",
)
# Extension-less files that are text by convention.
CODE_NAMES = ("makefile", "dockerfile", "license", "readme", "changelog", "authors", "notice", "copying")


class CodeLoader:
    name = "code"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        text, metadata = decode_document(path, data)
        require_text(text)
        headings = _headings(text, path.suffix.lower())
        sections = sections_from_headings(text, headings) if headings else [Section(0, len(text))]
        title = next((h[2] for h in headings if path.suffix.lower() in {".tex", ".org"}), None)
        return ParsedDocument(text=text, title=title or path.name, sections=sections, metadata=metadata)


def _headings(text: str, suffix: str) -> list[tuple[int, int, str]]:
    if suffix == ".tex":
        return [(m.start(), _TEX_LEVEL[m.group(1)], m.group(2).strip()) for m in _TEX.finditer(text)]
    if suffix == ".org":
        return [(m.start(), len(m.group(1)), m.group(2)) for m in _ORG.finditer(text)]
    pattern = _DEFINITIONS.get(suffix)
    if pattern is None:
        return []
    return [(m.start(), 1, m.group(1)) for m in pattern.finditer(text)]
