"""The index on object storage: a real S3-compatible server (moto, tests/servers.py) on loopback.

The race tests are the reason no DynamoDB commit store is configured: the server refuses a second
conditional create of one key, and Lance commits each table version with such a create (If-None-Match),
so two writers committing at once lose nothing (one is refused and retries on the newer version).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import Settings, load_settings
from ragcli.ingest.pipeline import Ingestor
from ragcli.query import AskOptions, QueryEngine
from ragcli.store import get_store
from ragcli.store.remote import fsspec_options, storage_options
from tests.conftest import CountingEmbedder
from tests.servers import S3Server
from tests.test_query import DOCS, QUESTIONS

pytestmark = pytest.mark.slow


def s3_settings(home: Path, uri: str, **env: str) -> Settings:
    return load_settings(env={"RAGCLI_HOME": str(home), "RAGCLI_STORE__URI": uri, **env})


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_server_refuses_a_second_conditional_create(s3: S3Server) -> None:
    bucket = s3.new_bucket("race")
    client = s3.client()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def create(n: int) -> None:
        barrier.wait()
        try:
            client.put_object(Bucket=bucket, Key="one", Body=str(n).encode(), IfNoneMatch="*")
            outcomes.append("created")
        except client.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["PreconditionFailed"] * 7 + ["created"]


RACE_WRITER = """
import sys, lance, pyarrow as pa
uri, writer, endpoint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
options = {"endpoint": endpoint, "region": "us-east-1", "allow_http": "true"}
for i in range(10):
    lance.write_dataset(pa.table({"writer": [writer], "i": [i]}), uri, mode="append", storage_options=options)
"""


def test_two_writers_committing_at_once_lose_no_commit(s3: S3Server, aws_env: dict[str, str]) -> None:
    import lance
    import pyarrow as pa

    bucket = s3.new_bucket("race")
    uri = f"s3://{bucket}/race.lance"
    options = {"endpoint": s3.endpoint, "region": "us-east-1", "allow_http": "true"}
    lance.write_dataset(pa.table({"writer": [0], "i": [0]}), uri, storage_options=options)
    refused_before = len(s3.requests_with_status(412))
    writers = [
        subprocess.Popen([sys.executable, "-c", RACE_WRITER, uri, str(w), s3.endpoint]) for w in (1, 2, 3)
    ]
    assert [w.wait(timeout=180) for w in writers] == [0, 0, 0]
    dataset = lance.dataset(uri, storage_options=options)
    rows = dataset.to_table().to_pylist()
    assert len(rows) == 31
    assert {(r["writer"], r["i"]) for r in rows} == {(0, 0)} | {(w, i) for w in (1, 2, 3) for i in range(10)}
    assert dataset.version == 31
    # Not asserted (it depends on timing), but logged: how many commits the server refused and Lance retried.
    print("conditional creates refused during the race:", len(s3.requests_with_status(412)) - refused_before)


def test_storage_options_come_from_the_environment_then_the_config(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "RAGCLI_HOME": str(tmp_path),
            "RAGCLI_STORE__STORAGE_OPTIONS": '{"region": "eu-north-1"}',
        }
    )
    options = storage_options(settings, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"})
    assert options == {"endpoint": "http://127.0.0.1:9", "region": "eu-north-1", "allow_http": "true"}
    assert fsspec_options(options | {"aws_access_key_id": "k"}) == {
        "endpoint_url": "http://127.0.0.1:9",
        "key": "k",
        "client_kwargs": {"region_name": "eu-north-1"},
    }


def test_ingest_and_query_an_index_on_object_storage(
    s3: S3Server, aws_env: dict[str, str], tmp_path: Path, embedder: CountingEmbedder
) -> None:
    bucket = s3.new_bucket("index")
    settings = s3_settings(tmp_path / "state", f"s3://{bucket}/team/index")
    root = write_docs(tmp_path / "docs")
    report = Ingestor(settings, embedder=embedder).run([root])
    assert report.added == len(DOCS) and report.failed == 0
    assert any(key.startswith("team/index/chunks.lance/_versions/") for key in s3.keys(bucket))
    # Nothing of the index lands on local disk.
    assert not (tmp_path / "state" / "lancedb").exists()

    engine = QueryEngine(settings, embedder=embedder)
    for question, expected in QUESTIONS:
        top = engine.retrieve(question, AskOptions(k=3)).passages
        assert top and top[0].source.endswith(expected), (question, [p.source for p in top])

    # A second machine (another state directory) sees the same index and skips every unchanged file.
    other = s3_settings(tmp_path / "other-state", f"s3://{bucket}/team/index")
    embedder.reset()
    again = Ingestor(other, embedder=embedder).run([root])
    assert again.skipped_unchanged == len(DOCS) and embedder.texts_embedded == 0
    assert get_store(other).count() == get_store(settings).count() > 0


def test_a_wrong_endpoint_is_a_clear_store_error(tmp_path: Path, monkeypatch: Any, embedder: CountingEmbedder) -> None:
    from ragcli.errors import StoreError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    settings = s3_settings(
        tmp_path / "state",
        "s3://nowhere/index",
        RAGCLI_STORE__STORAGE_OPTIONS='{"endpoint": "http://127.0.0.1:9", "region": "us-east-1"}',
    )
    settings.config.store.storage_options["client_max_retries"] = "0"
    settings.config.store.storage_options["connect_timeout"] = "1s"
    with pytest.raises(StoreError):
        Ingestor(settings, embedder=embedder).run([write_docs(tmp_path / "docs")])
