"""The index store. LanceDB is the one backend; `get_store` opens it without importing it at CLI start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.store.lance import LanceStore


def get_store(settings: Settings) -> LanceStore:
    from ragcli.store.lance import LanceStore
    from ragcli.store.remote import is_remote, storage_options

    uri = settings.store_uri
    options = storage_options(settings) if is_remote(uri) else None
    return LanceStore.open(uri, settings.config.store.table, options)
