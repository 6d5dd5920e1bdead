"""The index store. LanceDB is the one backend; `get_store` opens it without importing it at CLI start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.store.lance import LanceStore


def get_store(settings: Settings) -> LanceStore:
    from ragcli.store.lance import LanceStore

    return LanceStore.open(settings.store_uri, settings.config.store.table)
