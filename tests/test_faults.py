"""The fault matrix (issue 12): every state file and folder × {missing, truncated, garbage, read-only,
disk full} × {ingest, ask, stats, reindex}, each a real `python -m ragcli` process against its own copy
of one small state. No cell exits 1; each exits with a code documented for its command, says `Error:`
and a fix when it fails, and ends as tests/fault_matrix.txt (the table in docs/operations.md) says. A
fix that names a ragcli command is followed, in the same fault, and must work.

The cells run three at a time in one session fixture (212 processes of 0.3–2 s each; 10–15 minutes
on a shared 2-core machine under load);
the read-only and disk-full cells need root and `unshare -m` (see tests/faultkit.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import faultkit as fk

REPO = Path(__file__).resolve().parents[1]


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _can_unshare(), reason="needs root and `unshare -m` for read-only and full disks"),
]

Cell = tuple[str, str, str]


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[fk.Base, Path, dict[Cell, Any]]:
    root = tmp_path_factory.mktemp("faults")
    base = fk.Base(*fk.build_state(root / "base"))
    return base, root, fk.run_matrix(base, root, workers=3)


@pytest.mark.parametrize("cell", fk.cells(), ids=lambda c: "/".join(c).replace(" ", "-"))
def test_cell(matrix: tuple[fk.Base, Path, dict[Cell, Any]], cell: Cell) -> None:
    command = cell[2]
    result = matrix[2][cell]
    stderr = result.stderr
    assert result.returncode != 1, stderr
    assert "Traceback" not in stderr, stderr
    assert result.returncode in fk.ALLOWED[command], stderr
    if result.returncode not in (0, 3):
        assert "Error:" in stderr and "Fix:" in stderr, stderr
    assert fk.outcome(result) == fk.load_expected()[cell], stderr


def test_every_fix_that_names_a_command_works_when_followed(
    matrix: tuple[fk.Base, Path, dict[Cell, Any]],
) -> None:
    """No advice loops: do what the fix says, in the same fault, then the command that failed again."""
    base, root, results = matrix
    todo: dict[tuple[str, str, str], Cell] = {}
    for cell, result in results.items():
        hint = fk.advice(result.stderr) if result.returncode else None
        if hint is not None:
            todo.setdefault((cell[0], cell[1], hint), cell)
    assert todo, "the matrix has damaged-index cells whose fix is `ragcli reindex`"
    with ThreadPoolExecutor(3) as pool:
        followed = list(
            pool.map(
                lambda pair: (pair[1], fk.follow_advice(base, pair[1][1], pair[1][0][2], root / f"fix-{pair[0]}")),
                enumerate(todo.items()),
            )
        )
    for ((_, _, hint), cell), (fixed, again) in followed:
        assert fixed.returncode in (0, 3), f"{cell}: `{hint}` failed: {fixed.stderr}"
        assert again.returncode in (0, 3), f"{cell}: still failing after `{hint}`: {again.stderr}"


def test_expected_outcomes_cover_exactly_the_cells() -> None:
    assert set(fk.load_expected()) == set(fk.cells())


def test_operations_doc_has_the_matrix_table() -> None:
    doc = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert fk.render_table(fk.load_expected()) in doc
