"""No network at run time: ingest and ask make no connection that leaves the machine, and answer the
same with networking switched off."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# Records (and refuses) every non-loopback connect made from Python, where strace is unavailable.
_SOCKET_GUARD = """
import os, socket
_connect = socket.socket.connect
def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
        with open(os.environ["RAGCLI_TEST_CONNECT_LOG"], "a") as log:
            log.write(f"connect {host}\\n")
        raise OSError("network disabled by the test")
    return _connect(self, address)
socket.socket.connect = _guarded
"""


def _tree(root: Path) -> Path:
    root.mkdir()
    (root / "pumps.md").write_text(
        "# Pumps\n\nBeta pumps run on 24 volt power and weigh 3 kg.\n\n## Service\n\n"
        "Replace the beta pump seal every 2,000 hours.\n",
        encoding="utf-8",
    )
    (root / "valves.txt").write_text("The alpha valve opens at 42 kPa. Grease it yearly.\n", encoding="utf-8")
    return root


def _env(home: Path, extra_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "TIKTOKEN_"))}
    env["RAGCLI_HOME"] = str(home)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), str(REPO)])
        env["RAGCLI_TEST_CONNECT_LOG"] = str(extra_path / "connects.log")
    return env


def _run(prefix: list[str], args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "ragcli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def _outside_connects(strace_log: Path) -> list[str]:
    """connect() calls to an internet address (not loopback) in an `strace -f -e trace=connect` log."""
    calls = [line for line in strace_log.read_text().splitlines() if "connect(" in line]
    inet = [line for line in calls if "AF_INET" in line]
    return [line for line in inet if not re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"', line)]


def _answer(result: subprocess.CompletedProcess[str]) -> tuple[str, list[str]]:
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return data["answer"], [c["chunk_id"] for c in data["citations"]]


def _network_off_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_ingest_and_ask_attempt_no_connection_and_answer_the_same_offline(tmp_path: Path) -> None:
    root = _tree(tmp_path / "docs")
    home = tmp_path / "state"
    question = ["ask", "What voltage do beta pumps use?", "--json", "--no-cache"]
    strace = shutil.which("strace")
    if strace is not None:
        log = tmp_path / "strace.log"
        prefix = [strace, "-f", "-qq", "-e", "trace=connect", "-o", str(log)]
        assert _run(prefix, ["ingest", str(root)], _env(home)).returncode == 0
        assert _outside_connects(log) == []
        online = _run(prefix, question, _env(home))
        assert _outside_connects(log) == []
    else:
        guard = tmp_path / "guard"
        guard.mkdir()
        (guard / "sitecustomize.py").write_text(_SOCKET_GUARD, encoding="utf-8")
        assert _run([], ["ingest", str(root)], _env(home, guard)).returncode == 0
        online = _run([], question, _env(home, guard))
        assert not (guard / "connects.log").exists(), (guard / "connects.log").read_text()
    answer, citations = _answer(online)
    assert "24 volt" in answer or any("24 volt" in c["text"] for c in json.loads(online.stdout)["citations"])
    if _network_off_works():
        offline = _run(["unshare", "-n"], question, _env(home))
        assert _answer(offline) == (answer, citations)
        # A fresh index built with no network at all answers the same.
        home2 = tmp_path / "state-offline"
        assert _run(["unshare", "-n"], ["ingest", str(root)], _env(home2)).returncode == 0
        assert _answer(_run(["unshare", "-n"], question, _env(home2))) == (answer, citations)


def test_token_counts_come_from_the_bundled_encoding_without_tiktokens_registry() -> None:
    code = (
        "import sys, ragcli.tokens as t\n"
        "n = t.count_tokens('Hello world, 12345 <|endoftext|>')\n"
        "print(n, 'tiktoken_ext.openai_public' in sys.modules, 'requests' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIKTOKEN_")}
    env["TIKTOKEN_CACHE_DIR"] = "/nonexistent/ragcli-test"  # a download cache that cannot be used
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["12", "False", "False"]
