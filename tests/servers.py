"""Real servers for the scale-out tests, on loopback ephemeral ports, started and stopped by the tests:
moto's server mode (S3 and DynamoDB, from PyPI) and Debian's redis-server.

Each is a context manager that starts the process, waits (bounded) until it answers, and stops it; the
session fixtures at the bottom share one of each across a test session (registered in conftest.py),
and every test gets its own bucket or Redis database so tests do not see each other's data.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_S = 30.0
# moto accepts any key pair; these are what every test process gets in AWS_* variables.
ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(ready: Any, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not answer within {START_TIMEOUT_S:.0f} s:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class S3Server:
    """moto's server: S3 and DynamoDB on one endpoint."""

    endpoint: str
    log: Path
    _buckets: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a client (ragcli, boto, lance) reads to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def client(self, service: str = "s3") -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self, stem: str = "bucket") -> str:
        name = f"{stem}-{os.getpid()}-{next(self._buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, body: bytes | str) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, bucket: str, key: str) -> None:
        self.client().delete_object(Bucket=bucket, Key=key)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def requests_with_status(self, status: int) -> list[str]:
        """Request lines moto logged with this HTTP status (e.g. 412: a refused conditional write)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if f'" {status} ' in line]


@contextlib.contextmanager
def s3_server(workdir: Path) -> Iterator[S3Server]:
    port = free_port()
    log = workdir / "moto.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).status == 200, proc, "moto", log)
        yield S3Server(endpoint, log)
    finally:
        _stop(proc)


@dataclass
class RedisServer:
    port: int
    _databases: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def new_url(self) -> str:
        """A URL to a database no other test used (redis-server has 16 by default; then they are reused
        after a flush)."""
        db = next(self._databases) % 16
        import redis

        redis.Redis.from_url(self.url(db)).flushdb()
        return self.url(db)


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/install-dev.sh installs it from Debian)")
    port = free_port()
    log = workdir / "redis.log"
    with log.open("wb") as fh:
        # No persistence: the data lives and dies with the test session.
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: _redis_ping(port), proc, "redis-server", log)
        yield RedisServer(port)
    finally:
        _stop(proc)


# ----- session fixtures (conftest.py registers this module as a plugin) ---------------------------------
@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    pytest.importorskip("moto.server")
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    pytest.importorskip("redis")
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def aws_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS variables pointing at the test server, set for this process and returned for children."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3.env
