"""One writer across machines: the lease object beside an index on object storage (ingest/lease.py).

"Machines" are state directories: each has its own flock, so only the lease keeps them apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragcli.config import load_settings
from ragcli.errors import LockHeldError
from ragcli.ingest.lease import LEASE_NAME, ObjectLease, WriterLock, lease_path
from ragcli.store.remote import filesystem
from tests.servers import S3Server
from tests.test_object_store import write_docs
from tests.test_query import DOCS

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def machine_env(home: Path, uri: str, aws: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "AWS_"))}
    env.update(aws, RAGCLI_HOME=str(home), RAGCLI_STORE__URI=uri, **extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )


def lease_for(tmp_path: Path, uri: str, seconds: float) -> ObjectLease:
    settings = load_settings(env={"RAGCLI_HOME": str(tmp_path / "x"), "RAGCLI_STORE__URI": uri})
    return ObjectLease(filesystem(settings), lease_path(uri), seconds)


def test_a_held_lease_is_refused_renewed_and_released(s3: S3Server, aws_env: dict[str, str], tmp_path: Path) -> None:
    uri = f"s3://{s3.new_bucket('lease')}/index"
    first = lease_for(tmp_path, uri, seconds=1.5)
    second = lease_for(tmp_path, uri, seconds=1.5)
    with first:
        record = json.loads(s3.client().get_object(Bucket=uri[5:].split("/")[0], Key=f"index/{LEASE_NAME}")["Body"].read())
        assert record["pid"] == os.getpid() and record["started"].endswith("+00:00")
        # Twice the lease time later the holder is still there: the renewer kept it alive.
        time.sleep(3.0)
        first.ensure_held()
        with pytest.raises(LockHeldError, match=f"pid {os.getpid()} on "):
            second.acquire()
    # Released: the next writer gets it at once.
    with second:
        second.ensure_held()


def test_a_writer_whose_lease_was_taken_stops_before_committing(
    s3: S3Server, aws_env: dict[str, str], tmp_path: Path
) -> None:
    uri = f"s3://{s3.new_bucket('lease')}/index"
    lease = lease_for(tmp_path, uri, seconds=30)
    lease.acquire()
    try:
        bucket, _, key = lease_path(uri).partition("/")
        s3.put(bucket, key, json.dumps({"pid": 1, "host": "elsewhere", "expires_at": time.time() + 60}))
        with pytest.raises(LockHeldError):
            lease.renew()
        with pytest.raises(LockHeldError, match="no longer holds"):
            lease.ensure_held()
    finally:
        lease.release()
    # Releasing a lost lease leaves the other writer's lease alone.
    assert json.loads(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())["host"] == "elsewhere"


def test_second_machine_exits_4_naming_the_holder_and_takes_over_after_a_kill(
    s3: S3Server, aws_env: dict[str, str], tmp_path: Path
) -> None:
    uri = f"s3://{s3.new_bucket('lease')}/index"
    root = write_docs(tmp_path / "docs")
    lease = {"RAGCLI_STORE__LEASE_SECONDS": "6"}
    machine_a = machine_env(tmp_path / "a", uri, aws_env, **lease)
    machine_b = machine_env(tmp_path / "b", uri, aws_env, **lease)

    # While machine A's process holds the lease (here: this test process), B is refused with exit 4.
    settings_a = load_settings(env={k: v for k, v in machine_a.items() if k.startswith("RAGCLI_")})
    with WriterLock(settings_a):
        refused = run_cli(machine_b, "ingest", str(root))
    assert refused.returncode == 4, refused.stderr
    assert f"pid {os.getpid()} on " in refused.stderr and "Fix:" in refused.stderr

    # A is killed in the middle of its ingest: its lease stays behind, naming it...
    crashed = run_cli(machine_a | {"RAGCLI_TEST_CRASH_AT": "after_write", "RAGCLI_INGEST__WRITE_BATCH_DOCS": "1"},
                      "ingest", str(root))
    assert crashed.returncode == -9, crashed.stderr
    bucket, _, key = lease_path(uri).partition("/")
    holder = json.loads(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    assert holder["pid"] != os.getpid()
    assert holder["expires_at"] > time.time(), "the lease should outlive the killed writer for a while"
    with pytest.raises(LockHeldError, match=f"pid {holder['pid']} on {holder['host']}"):
        lease_for(tmp_path, uri, seconds=6).acquire()
    time.sleep(max(0.0, holder["expires_at"] - time.time()) + 0.2)
    blocked = run_cli(machine_b, "ingest", str(root))
    # ...and once it has expired, B takes it over and finishes the work.
    assert blocked.returncode == 0, blocked.stderr
    assert "Took over an expired writer lease" in blocked.stderr
    report = run_cli(machine_b, "ingest", str(root), "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["skipped_unchanged"] == len(DOCS)
    # A finished run releases the lease.
    assert not any(k.endswith("writer.lease") for k in s3.keys(bucket))
