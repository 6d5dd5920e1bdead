"""Documents on object storage: `ragcli ingest s3://bucket/prefix/` against a real S3 server (moto)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import Settings
from ragcli.ingest.deadletter import DeadLetterFile
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions, QueryEngine
from tests.conftest import CountingEmbedder
from tests.servers import S3Server
from tests.test_query import DOCS

pytestmark = pytest.mark.slow


def downloads(s3: S3Server, bucket: str) -> int:
    """GETs of document objects that moto logged (a listing is a GET of the bucket, not of a key)."""
    lines = s3.log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if f"GET /{bucket}/docs/" in line)


@pytest.fixture
def bucket(s3: S3Server, aws_env: dict[str, str]) -> str:
    name = s3.new_bucket("docs")
    for key, text in DOCS.items():
        s3.put(name, f"docs/{key}", text)
    s3.put(name, "docs/broken.pdf", b"%PDF-1.4 this is no pdf at all")
    s3.put(name, "docs/.hidden/secret.md", "# Secret\n\nNot to be indexed.\n")
    s3.put(name, "elsewhere/other.md", "# Other\n\nOutside the prefix.\n")
    return name


def test_objects_are_ingested_skipped_by_etag_updated_and_pruned(
    s3: S3Server, bucket: str, settings: Settings, embedder: CountingEmbedder
) -> None:
    url = f"s3://{bucket}/docs/"
    first = Ingestor(settings, embedder=embedder).run([url])
    assert (first.added, first.failed, first.scanned) == (len(DOCS), 1, len(DOCS) + 1)
    dead = DeadLetterFile(settings.dead_letter_path).entries
    assert list(dead) == [f"s3://{bucket}/docs/broken.pdf"]
    top = QueryEngine(settings, embedder=embedder).retrieve("When are fire drills held?", AskOptions(k=1)).passages
    assert top[0].source == f"s3://{bucket}/docs/safety.txt"

    # Unchanged: nothing is downloaded, not even the failed object (its hash is known from the listing).
    before = downloads(s3, bucket)
    embedder.reset()
    second = Ingestor(settings, embedder=embedder).run([url])
    assert (second.skipped_unchanged, second.skipped_failed, second.added) == (len(DOCS), 1, 0)
    assert downloads(s3, bucket) == before and embedder.texts_embedded == 0

    # A new ETag with the same bytes (here: the catalog forgotten) is downloaded, then skipped by content hash.
    (settings.home / "objects.sqlite3").unlink()
    third = Ingestor(settings, embedder=embedder).run([url])
    assert third.skipped_unchanged == len(DOCS) and downloads(s3, bucket) > before

    # A changed object is replaced; deleted objects are pruned, with their dead letters.
    s3.put(bucket, "docs/pumps.md", "# Pumps\n\nThe P-900 pump moves 90 litres per minute.\n")
    s3.delete(bucket, "docs/valves.md")
    s3.delete(bucket, "docs/broken.pdf")
    fourth = Ingestor(settings, embedder=embedder).run([url])
    assert (fourth.updated, fourth.removed, fourth.failed) == (1, 1, 0)
    assert DeadLetterFile(settings.dead_letter_path).entries == {}
    sources = {p.source for p in QueryEngine(settings, embedder=embedder).retrieve("pump", AskOptions(k=10)).passages}
    assert f"s3://{bucket}/docs/valves.md" not in sources
    assert f"s3://{bucket}/docs/pumps.md" in sources
    assert not any(".hidden" in s or "elsewhere" in s for s in sources)


def test_an_empty_listing_does_not_empty_the_index(
    s3: S3Server, bucket: str, settings: Settings, embedder: CountingEmbedder
) -> None:
    url = f"s3://{bucket}/docs/"
    Ingestor(settings, embedder=embedder).run([url])
    for key in s3.keys(bucket, "docs/"):
        s3.delete(bucket, key)
    report = Ingestor(settings, embedder=embedder).run([url])
    assert report.removed == 0 and report.warnings and "--force-prune" in report.warnings[0]


def test_cli_ingests_an_s3_url_and_names_a_missing_bucket(
    s3: S3Server, bucket: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["ingest", f"s3://{bucket}/docs/", "--json"])
    assert result.exit_code == 3, result.output  # the broken PDF failed, the rest is indexed
    assert json.loads(result.stdout)["added"] == len(DOCS)
    missing = CliRunner().invoke(app, ["ingest", "s3://no-such-bucket-here/docs/"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr

