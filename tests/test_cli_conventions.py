"""The command-line conventions users expect (issue 16): state found like git, -h, metavars, examples,
stdin, global options anywhere, clear limits, quiet broken pipes, untruncated piped output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from ragcli.cli import app, hoist_global_options
from ragcli.config import RagConfig, example_config
from ragcli.ingest.lock import IngestLock
from tests.conftest import FIXTURES, REPO

runner = CliRunner()
QUESTION = "What is the default Wi-Fi password of the mount?"
ANSWER = "northstar-58"


def _run(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAGCLI_"):
            monkeypatch.delenv(name)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _clean_env(monkeypatch)
    state = tmp_path / "state"
    monkeypatch.setenv("RAGCLI_HOME", str(state))
    return state


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_commands(sub, (*path, name)))
    return found


# ----- state discovery -------------------------------------------------------------------------------------
def test_config_file_is_found_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    project = tmp_path / "project"
    deep = project / "docs" / "guides"
    deep.mkdir(parents=True)
    (project / ".ragcli.toml").write_text("[retrieval]\ntop_k = 9\n", encoding="utf-8")
    monkeypatch.chdir(deep)
    data = json.loads(_run("config", "show", "--json").stdout)
    assert data["file"] == str(project / ".ragcli.toml")
    assert data["home"] == str(project / ".ragcli")
    assert data["values"]["retrieval.top_k"]["value"] == 9
    assert ".ragcli.toml" in data["home_reason"]
    human = _run("config", "show")
    assert "chosen as: beside the nearest .ragcli.toml" in human.stdout
    assert not (deep / ".ragcli").exists() and not (project / ".ragcli").exists()


def test_state_folder_is_found_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    (tmp_path / "project" / ".ragcli").mkdir(parents=True)
    (tmp_path / "project" / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "project" / "a" / "b")
    data = json.loads(_run("config", "show", "--json").stdout)
    assert data["file"] is None
    assert data["home"] == str(tmp_path / "project" / ".ragcli")
    assert "nearest .ragcli/ folder" in data["home_reason"]


def test_ragcli_home_overrides_discovery_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    (tmp_path / ".ragcli").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "elsewhere"))
    data = json.loads(_run("config", "show", "--json").stdout)
    assert data["home"] == str(tmp_path / "elsewhere")
    assert "RAGCLI_HOME" in data["home_reason"]


def test_an_unrelated_folder_uses_the_user_directory_and_reading_creates_no_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _user_data_dir: Path
) -> None:
    _clean_env(monkeypatch)
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    monkeypatch.chdir(unrelated)
    data = json.loads(_run("config", "show", "--json").stdout)
    assert data["home"] == str(_user_data_dir)
    assert "per-user data directory" in data["home_reason"]
    asked = _run("ask", QUESTION)
    assert asked.exit_code == 5
    assert "no index here" in asked.stderr and "Fix:" in asked.stderr
    for args in (("stats",), ("history",), ("dlq", "list"), ("cache", "stats"), ("stats", "--json")):
        result = _run(*args)
        assert result.exit_code == 0, (args, result.output)
    assert list(unrelated.iterdir()) == []
    assert not _user_data_dir.exists()


# ----- help ------------------------------------------------------------------------------------------------
def test_dash_h_is_help_everywhere() -> None:
    for args in ((), ("ask",), ("history",), ("history", "show"), ("config", "show")):
        result = _run(*args, "-h")
        assert result.exit_code == 0, (args, result.output)
        assert "Usage:" in result.stdout


def test_every_command_has_examples_and_real_metavars() -> None:
    for path, _command in _commands(typer.main.get_command(app)):
        shown = _run(*path, "--help").stdout
        assert "Examples:" in shown, path
        for typer_style in ("<bool>", "<int>", "<str>", "<float>", "<list", "<Path>", "{"):
            assert typer_style not in shown, (path, typer_style)


def test_help_shows_the_defaults_of_k_and_mode_as_configured() -> None:
    defaults = RagConfig()
    shown = " ".join(re.split(r"[\s│]+", _run("ask", "--help").stdout))
    assert f"retrieval.top_k = {defaults.retrieval.top_k}" in shown
    assert f"retrieval.mode = {defaults.retrieval.mode}" in shown
    assert f"generation.provider = {defaults.generation.provider}" in shown
    assert "ragcli ask [OPTIONS] [QUESTION]" in shown


def test_completion_and_version_are_on() -> None:
    assert "--install-completion" in _run("--help").stdout
    # Typer names the shell from the process tree, so the script is asked for from a real bash, as a user
    # does: a test process without a shell among its ancestors (a detached job) got "Shell  not supported".
    # "; true" keeps bash from replacing itself with the command.
    script = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m ragcli --show-completion; true"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "complete -o default -F" in script.stdout, script.stderr
    assert re.fullmatch(r"ragcli \S+\n", _run("--version").stdout)


# ----- global options after the subcommand -----------------------------------------------------------------
def test_global_options_are_accepted_after_the_subcommand(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text("[retrieval]\ntop_k = 7\n", encoding="utf-8")
    result = _run("config", "show", "--json", "-q", "--config", str(config), "-vv")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["values"]["retrieval.top_k"]["value"] == 7


def test_hoisting_leaves_the_values_of_the_commands_own_options_alone() -> None:
    group = typer.main.get_command(app)
    ctx = typer.main._click.Context(group)
    assert hoist_global_options(group, ctx, ["feedback", "ab12", "up", "--note", "-v", "-q"]) == [
        "-q", "feedback", "ab12", "up", "--note", "-v",
    ]  # fmt: skip
    assert hoist_global_options(group, ctx, ["-v", "ask", "q", "--config=x.toml", "--k", "3"]) == [
        "-v", "--config=x.toml", "ask", "q", "--k", "3",
    ]  # fmt: skip
    assert hoist_global_options(group, ctx, ["history", "show", "x", "-c", "f.toml"]) == [
        "-c", "f.toml", "history", "show", "x",
    ]  # fmt: skip
    assert hoist_global_options(group, ctx, ["ask", "--", "-v"]) == ["ask", "--", "-v"]


# ----- clear limits ----------------------------------------------------------------------------------------
def test_an_out_of_range_flag_names_the_real_flag_and_a_fix_that_exists(home: Path) -> None:
    result = _run("ask", QUESTION, "--k", "0")
    assert result.exit_code == 2
    assert "--k" in result.stderr and "--top-k" not in result.stderr
    assert "ragcli config show --defaults" in result.stderr
    assert ".ragcli.example.toml" not in result.stderr


def test_a_long_question_is_refused_with_the_limit_and_its_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run("ask", "x" * 20_000)
    assert result.exit_code == 2
    assert "20,000 characters" in result.stderr and "retrieval.max_question_chars" in result.stderr
    monkeypatch.setenv("RAGCLI_RETRIEVAL__MAX_QUESTION_CHARS", "10")
    assert "limit is 10" in _run("ask", "a question of 26 characters").stderr


def test_a_future_since_warns(home: Path) -> None:
    for args in (("stats", "--since", "2099-01-01"), ("history", "--since", "2099-01-01")):
        result = _run(*args)
        assert result.exit_code == 0, result.output
        assert "in the future" in result.stderr


def test_a_held_lock_shows_when_the_holder_started_as_iso_time(home: Path) -> None:
    with IngestLock(home / "ingest.lock"):
        result = _run("ingest", str(FIXTURES / "docs"))
    assert result.exit_code == 4
    assert re.search(r"since=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.stderr), result.stderr
    assert not re.search(r"\d{10}", result.stderr)


def test_config_show_defaults_is_the_example_config_generated_from_the_model(tmp_path: Path) -> None:
    result = _run("config", "show", "--defaults")
    assert result.exit_code == 0
    assert result.stdout == example_config()
    generated = tomllib.loads(result.stdout)
    assert RagConfig.model_validate(generated) == RagConfig()
    # The file shipped in the repository says the same: same keys set, same values.
    shipped = tomllib.loads((REPO / ".ragcli.example.toml").read_text(encoding="utf-8"))
    assert shipped == generated
    # Every key is explained (its Field description is the comment above it).
    for name, info in RagConfig.model_fields.items():
        model = info.annotation
        fields = model.model_fields if isinstance(model, type) and hasattr(model, "model_fields") else {name: info}
        for key, field in fields.items():
            assert field.description, f"{name}.{key} has no description"


# ----- stdin -----------------------------------------------------------------------------------------------
def test_without_a_terminal_an_empty_stdin_is_an_empty_question(home: Path) -> None:
    for args in (("ask", "-"), ("ask",)):
        result = _run(*args, input="")
        assert result.exit_code == 2
        assert "question is empty" in result.stderr


@pytest.mark.slow
def test_ask_reads_the_question_from_stdin(home: Path) -> None:
    assert _run("ingest", str(FIXTURES / "docs"), "--json").exit_code == 0
    for args in (("ask", "-", "--json"), ("ask", "--json")):
        result = _run(*args, input=QUESTION + "\n")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["question"] == QUESTION
        assert ANSWER in data["answer"]


# ----- pipes -----------------------------------------------------------------------------------------------
def test_piped_dlq_list_is_tab_separated_and_never_cut(home: Path) -> None:
    assert _run("ingest", str(FIXTURES / "broken")).exit_code == 3
    lines = _run("dlq", "list").stdout.splitlines()
    assert lines[0].split("\t") == ["source", "stage", "error", "attempts"]
    sources = {line.split("\t")[0] for line in lines[1:]}
    assert str(FIXTURES / "broken" / "encrypted.pdf") in sources
    assert all(Path(s).exists() for s in sources)
    assert not any("…" in line for line in lines)


def _ragcli(*args: str, cwd: Path, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | env
    full_env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "ragcli", *args], cwd=cwd, env=full_env, stderr=subprocess.PIPE, **kwargs
    )


def _closed_pipe(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout a pipe whose reader is gone before anything is written: every write fails."""
    proc = _ragcli(*args, cwd=cwd, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


@pytest.mark.slow
def test_subprocess_discovery_broken_pipe_and_head(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".ragcli").mkdir(parents=True)
    (project / "notes" / "deep").mkdir(parents=True)
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    ingest = _ragcli("ingest", str(FIXTURES / "docs"), "-q", cwd=project, env=env, stdout=subprocess.DEVNULL)
    ingest.communicate(timeout=300)
    assert ingest.returncode == 0
    sub = project / "notes" / "deep"
    # From a subfolder the project's index answers; the reader stops early and that is success.
    code, err = _closed_pipe("ask", QUESTION, cwd=sub, env=env)
    assert code == 0 and "Traceback" not in err and "Error" not in err, err
    code, err = _closed_pipe("config", "show", cwd=sub, env=env)
    assert code == 0 and err == "", err
    firsts = []
    for command in (f'ragcli ask "{QUESTION}" | head -1', "ragcli config show | head -1"):
        shell = subprocess.run(
            ["bash", "-c", command.replace("ragcli", f"{sys.executable} -m ragcli", 1) + "; exit ${PIPESTATUS[0]}"],
            cwd=sub,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shell.returncode == 0 and "Traceback" not in shell.stderr, shell.stderr
        firsts.append(shell.stdout)
    assert ANSWER in firsts[0] and firsts[1].startswith("config file:")
    assert [len(first.splitlines()) for first in firsts] == [1, 1]
    assert not (sub / ".ragcli").exists()
    # An unrelated folder: no index there, and nothing created.
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    asked = _ragcli("ask", QUESTION, cwd=unrelated, env=env, stdout=subprocess.PIPE)
    _, err_bytes = asked.communicate(timeout=120)
    assert asked.returncode == 5 and "no index here" in err_bytes.decode()
    assert list(unrelated.iterdir()) == [] and not (tmp_path / "xdg" / "ragcli").exists()


@pytest.mark.parametrize("args", ["-h", "--help", "ask -h", "ingest --help"])
def test_help_into_a_closed_pipe_exits_0(args: str) -> None:
    # Typer renders help through its own Rich console, which exits 1 when the reader goes away.
    shell = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m ragcli {args} | head -1; exit ${{PIPESTATUS[0]}}"],
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0 and shell.stderr == "", shell.stderr
    assert len(shell.stdout.splitlines()) == 1


def test_a_fresh_ask_ends_without_teardown_and_loses_nothing(tmp_path: Path) -> None:
    """`ragcli ask` leaves with os._exit once the atexit handlers ran (cli._end_process): the answer
    printed into a pipe, the question's telemetry row and the cached answer must all be there."""
    import sqlite3

    from tests.faultkit import cli_env, ragcli

    home = tmp_path / "home"
    assert ragcli(home, "ingest", str(FIXTURES / "docs")).returncode == 0
    first = ragcli(home, "ask", QUESTION, "--json")
    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    assert ANSWER in answer["answer"] and answer["via"] == "process"
    assert answer["citations_verified"] == 1.0 and "not supported" not in first.stderr.lower()
    with sqlite3.connect(home / "events.sqlite3") as conn:
        asked = [row[0] for row in conn.execute("SELECT question FROM asks")]
    assert asked == [QUESTION]  # written by the telemetry batch's atexit flush
    again = ragcli(home, "ask", QUESTION, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["cache"] == "exact"
    missing = ragcli(tmp_path / "empty", "ask", QUESTION)
    assert missing.returncode != 0 and "Error:" in missing.stderr and "Traceback" not in missing.stderr

    # An object that says so when the interpreter is torn down: not after `ask`, still after `stats`.
    script = (
        "import sys\n"
        "class Witness:\n"
        "    def __del__(self):\n"
        "        sys.stderr.write('torn down\\n')\n"
        "witness = Witness()\n"
        "from ragcli.cli import run\n"
        "sys.argv = ['ragcli', *sys.argv[1:]]\n"
        "run()\n"
    )
    env = cli_env(home)
    for args, torn_down in ((["ask", QUESTION], False), (["stats"], True)):
        done = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert ("torn down" in done.stderr) is torn_down, (args, done.stderr)
    assert ANSWER in subprocess.run(
        [sys.executable, "-c", script, "ask", QUESTION], env=env, capture_output=True, text=True, timeout=120
    ).stdout
