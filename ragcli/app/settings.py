"""`ragcli config show` and `ragcli config show --defaults`.
"""

from __future__ import annotations

import json

from ragcli.app.console import print_json, print_table, stdout
from ragcli.config import Settings, effective_items
from ragcli.errors import EXIT_OK


def show_config(settings: Settings, *, json_output: bool) -> int:
    items = effective_items(settings)
    if json_output:
        print_json(
            {
                "file": str(settings.file) if settings.file else None,
                "home": str(settings.home),
                "home_reason": settings.home_reason,
                "home_exists": settings.home.exists(),
                "store_uri": settings.store_uri,
                "values": {k: {"value": v, "source": s} for k, v, s in items},
            }
        )
        return EXIT_OK
    stdout.print(f"config file: {settings.file or '(none)'}", markup=False)
    exists = "" if settings.home.exists() else " (does not exist yet; `ragcli ingest` creates it)"
    stdout.print(f"state directory: {settings.home}{exists}", markup=False)
    stdout.print(f"  chosen as: {settings.home_reason}", markup=False)
    stdout.print(f"index: {settings.store_uri}", markup=False)
    print_table(["key", "value", "from"], [(key, json.dumps(value), source) for key, value, source in items])
    return EXIT_OK


def show_default_config(*, json_output: bool) -> int:
    from ragcli.config import RagConfig, example_config

    if json_output:
        print_json(RagConfig.model_construct().model_dump())
    else:
        stdout.out(example_config(), end="", highlight=False)
    return EXIT_OK
