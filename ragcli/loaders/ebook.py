"""EPUB e-books through ebooklib: the spine's XHTML documents in reading order, each through the HTML
loader, so chapter and section headings become the citation's heading. The zip is bounded first."""

from __future__ import annotations

import io
from pathlib import Path

from ragcli.errors import PermanentError, RagcliError
from ragcli.loaders.blocks import Block, document_from_blocks, open_zip
from ragcli.loaders.office import parse_guarded
from ragcli.models import ParsedDocument


class EpubLoader:
    name = "epub"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        archive = open_zip(data, "EPUB")
        if "META-INF/encryption.xml" in archive.namelist():
            raise PermanentError("EPUB with encrypted (DRM-protected) content: it cannot be read")
        return parse_guarded("EPUB", path, lambda: _load_epub(path, data))


def _load_epub(path: Path, data: bytes) -> ParsedDocument:
    from ebooklib import epub

    from ragcli.loaders.html import HtmlLoader

    book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    html = HtmlLoader()
    blocks: list[Block] = []
    for item_id, _linear in book.spine:
        item = book.get_item_with_id(item_id)
        if item is None:
            continue
        try:
            chapter = html.load(Path(item.get_name()), item.get_content())
        except RagcliError:
            continue  # an empty chapter (a cover image page) is no reason to lose the book
        for section in chapter.sections:
            blocks.append(Block(chapter.text[section.start : section.end], section.heading))
    titles = book.get_metadata("DC", "title")
    title = titles[0][0] if titles else None
    return document_from_blocks(blocks, title, path.name)
