"""Loaders turn one file's bytes into visible text with a title and sections (headings or pages).

`get_loader(path)` picks a loader by file suffix and imports its backend (pypdf, …) only then; it
returns None for a type ragcli does not read, which the pipeline counts as unsupported. A loader raises
`PermanentError` for a file it should read but cannot (corrupt, encrypted, empty, undecodable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ragcli.models import ParsedDocument


class Loader(Protocol):
    name: str

    def load(self, path: Path, data: bytes) -> ParsedDocument: ...


# suffix -> (module, class name); modules are imported only when a file of that type is met.
_REGISTRY: dict[str, tuple[str, str]] = {
    ".txt": ("ragcli.loaders.text", "TextLoader"),
    ".text": ("ragcli.loaders.text", "TextLoader"),
    ".md": ("ragcli.loaders.markdown", "MarkdownLoader"),
    ".markdown": ("ragcli.loaders.markdown", "MarkdownLoader"),
    ".rst": ("ragcli.loaders.rst", "RstLoader"),
    ".html": ("ragcli.loaders.html", "HtmlLoader"),
    ".htm": ("ragcli.loaders.html", "HtmlLoader"),
    ".xhtml": ("ragcli.loaders.html", "HtmlLoader"),
    ".pdf": ("ragcli.loaders.pdf", "PdfLoader"),
}

_instances: dict[str, Loader] = {}


def supported_suffixes() -> list[str]:
    return sorted(_REGISTRY)


def get_loader(path: Path) -> Loader | None:
    spec = _REGISTRY.get(path.suffix.lower())
    if spec is None:
        return None
    module_name, class_name = spec
    if module_name not in _instances:
        import importlib

        module = importlib.import_module(module_name)
        _instances[module_name] = getattr(module, class_name)()
    return _instances[module_name]
