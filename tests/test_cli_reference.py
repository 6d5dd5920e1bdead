"""docs/cli.md is generated from the Typer app; this fails when someone changes a command and not it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "scripts" / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date() -> None:
    generator = _generator()
    assert generator.main(["--check"]) == 0, "docs/cli.md is stale: run python scripts/cli_reference.py"


def test_the_check_fails_on_a_stale_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    stale = tmp_path / "cli.md"
    stale.write_text(generator.render().replace("Passages to retrieve.", "Passages."), encoding="utf-8")
    monkeypatch.setattr(generator, "TARGET", stale)
    assert generator.main(["--check"]) == 1


def test_the_reference_covers_every_command_with_examples() -> None:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in ("ragcli ask", "ragcli ingest", "ragcli history", "ragcli history show", "ragcli config show"):
        assert f"`{command}`" in text
    assert text.count("Examples:") >= 15
