"""`ragcli config show`.
"""

from __future__ import annotations

import json

from rich.table import Table

from ragcli.app.console import print_json, stdout
from ragcli.config import Settings, effective_items
from ragcli.errors import EXIT_OK


def show_config(settings: Settings, *, json_output: bool) -> int:
    items = effective_items(settings)
    if json_output:
        print_json(
            {
                "file": str(settings.file) if settings.file else None,
                "home": str(settings.home),
                "store_uri": settings.store_uri,
                "values": {k: {"value": v, "source": s} for k, v, s in items},
            }
        )
        return EXIT_OK
    stdout.print(f"config file: {settings.file or '(none)'}", markup=False)
    stdout.print(f"state directory: {settings.home}", markup=False)
    stdout.print(f"index: {settings.store_uri}", markup=False)
    table = Table("key", "value", "from")
    for key, value, source in items:
        table.add_row(key, json.dumps(value), source)
    stdout.print(table)
    return EXIT_OK
