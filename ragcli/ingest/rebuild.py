"""Rebuilding the whole index: `ragcli reindex` and `ragcli doctor --repair`.

The new index is built beside the old one (`<uri>.reindex`) and swapped in with renames, so a healthy
old index keeps answering until the new one is complete, and a crash leaves it in place. The list of
source files comes from the old index, or, when its files are damaged, from the corpus journal, which
keeps every indexed document's source (store/journal.py); a damaged index is moved aside
(`<uri>.damaged-<time>`) rather than deleted. Vectors come from the chunk embedding cache where it has
them, so a rebuild with the same embedder embeds nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.errors import IndexUnreadableError, UsageError, state_write_error
from ragcli.ingest.lock import IngestLock
from ragcli.store.journal import journal_for

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.embedding import Embedder
    from ragcli.ingest.pipeline import IngestObserver, IngestReport

logger = logging.getLogger(__name__)


@dataclass
class Rebuild:
    report: IngestReport | None
    sources: int = 0
    sources_missing: int = 0
    from_journal: bool = False  # the old index was unreadable: its sources came from the journal
    moved_aside: str | None = None
    notes: list[str] = field(default_factory=list)


def known_sources(settings: Settings) -> tuple[list[str], bool, IndexUnreadableError | None]:
    """The source files of the index (sorted), whether they came from the journal, and the error that
    made the index unreadable, if it was."""
    from ragcli.store.lance import LanceStore

    old = LanceStore.open(settings.store_uri, settings.config.store.table)
    try:
        if old.exists():
            return sorted(set(old.all_rows(["source"])["source"])), False, None
        damage = None
    except IndexUnreadableError as exc:
        damage = exc
    documents = journal_for(settings).documents()
    if damage is None and not documents:
        return [], False, None
    return sorted(set(documents.values())), True, damage


def rebuild_index(
    settings: Settings, *, observer: IngestObserver | None = None, embedder: Embedder | None = None
) -> Rebuild:
    from ragcli.ingest.pipeline import Ingestor
    from ragcli.store.lance import LanceStore

    uri = settings.store_uri
    if "://" in uri:
        raise UsageError(
            f"reindex swaps folders and works on a local index; {uri} is remote.",
            hint="Ingest into a new [store] uri, then point the config at it.",
        )
    with IngestLock(settings.lock_path):
        sources, from_journal, damage = known_sources(settings)
        index_dir = Path(uri)
        if not sources:
            if damage is None:
                raise UsageError("There is nothing to reindex.", hint="Run `ragcli ingest PATH` first.")
            aside = _move_aside(index_dir, "damaged")
            return Rebuild(
                None,
                from_journal=True,
                moved_aside=str(aside),
                notes=[
                    f"The index was unreadable and no list of its files was kept; moved it to {aside}. "
                    "Run `ragcli ingest PATH` to build a new one."
                ],
            )
        existing = [Path(s) for s in sources if Path(s).exists()]
        building = index_dir.with_name(index_dir.name + ".reindex")
        shutil.rmtree(building, ignore_errors=True)
        settings_new = dataclasses.replace(settings, config=settings.config.model_copy(deep=True))
        settings_new.config.store.uri = str(building)
        store = LanceStore.open(str(building), settings.config.store.table)
        ingestor = Ingestor(settings_new, store=store, embedder=embedder, observer=observer)
        ingestor.keeps_document_list = False
        report = ingestor.run(existing, prune=False, retry_failed=True, locked=True)
        result = Rebuild(report, len(sources), len(sources) - len(existing), from_journal)
        try:
            if damage is not None:
                result.moved_aside = str(_move_aside(index_dir, "damaged"))
                result.notes.append(f"The damaged index was moved to {result.moved_aside}.")
            elif index_dir.exists():
                retired = _move_aside(index_dir, "old")
                shutil.rmtree(retired, ignore_errors=True)
            building.rename(index_dir)
        except OSError as exc:
            mapped = state_write_error(exc, index_dir)
            if mapped is not None:
                raise mapped from exc
            raise
        journal_for(settings).remember_documents(
            {d.doc_id: d.source for d in LanceStore.open(uri, settings.config.store.table).document_states().values()}
        )
    return result


def _move_aside(index_dir: Path, label: str) -> Path:
    aside = index_dir.with_name(f"{index_dir.name}.{label}-{int(time.time())}")
    if index_dir.exists():
        index_dir.rename(aside)
    return aside
