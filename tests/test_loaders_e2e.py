"""New formats end to end: generated .docx, .pptx, .xlsx, .eml (with a .docx attachment) and a scanned
PDF go through `ragcli ingest`, and `ask --json` with the real models answers questions that only one
of them answers, citing that file with its location (heading, slide/page, sheet, subject)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import Settings
from ragcli.ingest.pipeline import Ingestor
from ragcli.store import get_store
from tests import formats_fixtures as fx
from tests.conftest import CountingEmbedder, RecordingObserver

runner = CliRunner()


def _corpus(root: Path, scanned: bool) -> Path:
    root.mkdir()
    fx.write_docx(root / "manual.docx")
    fx.write_pptx(root / "review.pptx")
    fx.write_xlsx(root / "stock.xlsx")
    attachment = fx.attachment_docx(root.parent / "ibis-contract.docx")
    fx.write_eml(root / "heron.eml", attachment)
    if scanned:
        fx.write_scanned_pdf(root / "keeper-log.pdf", ["Harbour log, volume two", fx.SCAN_FACT])
    return root


def _ask(question: str) -> dict[str, Any]:
    result = runner.invoke(app, ["ask", question, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _top(answer: dict[str, Any]) -> dict[str, Any]:
    citations = answer["citations"]
    cited = [c for c in citations if c["cited"]] or citations
    return cited[0]


@pytest.mark.slow
def test_questions_answered_only_by_one_office_mail_or_scanned_file_cite_it_with_its_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli.loaders.ocr import get_ocr_engine

    has_ocr = get_ocr_engine() is not None
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("RAGCLI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "state"))
    root = _corpus(tmp_path / "docs", scanned=has_ocr)

    ingest = runner.invoke(app, ["ingest", str(root), "--json"])
    assert ingest.exit_code == 0, ingest.output
    report = json.loads(ingest.stdout)
    assert report["failed"] == 0 and report["unsupported"] == 0
    assert report["added"] == (6 if has_ocr else 5)  # five files and the e-mail's attachment

    docx = _top(_ask("What torque does the Kestrel valve need before the pressure test?"))
    assert docx["source"].endswith("manual.docx")
    assert docx["heading"] == "Maintenance Manual > Valves > Kestrel valve"

    pptx = _top(_ask("What did quarterly churn fall to after the loyalty programme?"))
    assert pptx["source"].endswith("review.pptx")
    assert (pptx["page"], pptx["heading"]) == (2, "Retention")

    xlsx = _top(_ask("How many pallets are stored in the Osprey warehouse in Lisbon?"))
    assert xlsx["source"].endswith("stock.xlsx")
    assert xlsx["heading"] == "Warehouse stock"
    assert "1312" in xlsx["text"]

    eml = _top(_ask("Why is the Heron rollout postponed?"))
    assert eml["source"].endswith("heron.eml")
    assert eml["heading"] == "Heron rollout schedule"

    attached = _top(_ask("How often does the Ibis contract renew?"))
    assert attached["source"].endswith("heron.eml#attachment/ibis-contract.docx")
    assert attached["heading"] == "Ibis contract"

    if has_ocr:
        scan = _top(_ask("How often does the lighthouse keeper log the barometer reading?"))
        assert scan["source"].endswith("keeper-log.pdf")
        assert scan["page"] == 2


@pytest.mark.slow
def test_attachments_stay_while_their_message_is_unchanged_and_go_with_it(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    root = tmp_path / "mail"
    root.mkdir()
    attachment = fx.attachment_docx(tmp_path / "ibis.docx")
    message = fx.write_eml(root / "m.eml", attachment)
    child = f"{message.resolve()}#attachment/ibis.docx"

    progress = RecordingObserver()
    first = Ingestor(settings, embedder=embedder, observer=progress).run([root])
    assert (first.added, first.failed) == (2, 0)
    # Progress counts the attachment's chunks among those found, not only among those embedded.
    found = sum(n for kind, n in progress.events if kind == "found")
    embedded = sum(n for kind, n in progress.events if kind == "embedded")
    assert found == embedded == first.chunks_embedded > 1
    assert child in set(get_store(settings).all_rows(["source"])["source"])

    again = Ingestor(settings, embedder=embedder).run([root])
    assert (again.skipped_unchanged, again.removed) == (1, 0)
    assert child in set(get_store(settings).all_rows(["source"])["source"])

    fx.write_eml(message)  # the same message, now without the attachment
    changed = Ingestor(settings, embedder=embedder).run([root])
    assert (changed.updated, changed.removed) == (1, 1)
    assert child not in set(get_store(settings).all_rows(["source"])["source"])


@pytest.mark.slow
def test_a_file_needing_a_missing_extra_is_counted_unsupported_with_the_extras_name(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from ragcli.loaders.blocks import OLE_MAGIC

    monkeypatch.setitem(sys.modules, "extract_msg", None)
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.msg").write_bytes(OLE_MAGIC + b"\x00" * 600)
    (root / "b.txt").write_text("plain words\n")
    report = Ingestor(settings, embedder=embedder).run([root])
    assert (report.added, report.unsupported, report.failed) == (1, 1, 0)
    assert report.unsupported_types == {".msg (reading Outlook .msg files needs the 'msg' extra)": 1}
