"""The fault matrix: every state file and folder × {missing, truncated, garbage, read-only, disk full} ×
{ingest, ask, stats, reindex}, run as real `python -m ragcli` processes (tests/test_faults.py).

Faults:
- missing, truncated, garbage: applied to a copy of a state built once per session;
- read-only: a read-only bind mount of the file or folder, in a private mount namespace (`unshare -m`;
  the tests run as root, for whom `chmod a-w` changes nothing);
- disk full: the folder holding the file (or the folder itself) on a tmpfs that is filled up, its
  other subfolders bound back from the normal disk, so only that folder is full.

`python tests/faultkit.py wrap --fault read-only|disk-full --target PATH [--whole] -- CMD…` sets a fault
up inside the namespace and runs CMD there (it is what `unshare -m` runs).

EXPECTED (in tests/fault_matrix.txt) is the outcome of every cell; `render_table` turns it into the
table in docs/operations.md, and a test checks that the two agree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPECTED_FILE = Path(__file__).with_name("fault_matrix.txt")

FAULTS = ("missing", "truncated", "garbage", "read-only", "disk full")
COMMANDS = ("ingest", "ask", "stats", "reindex")
# Exit codes each command may end with (README "Exit codes"); 1 never.
ALLOWED = {"ingest": {0, 2, 3, 4, 5, 7}, "ask": {0, 5, 7}, "stats": {0, 5, 7}, "reindex": {0, 2, 3, 4, 5, 7}}
NEW_QUESTION = "How often should the belt tension be checked?"
CACHED_QUESTION = "How do I do a factory reset?"


@dataclass(frozen=True)
class StateItem:
    name: str
    # Relative to RAGCLI_HOME; "{fts}" and "{vector}" are the index folders' names (found at build).
    path: str
    is_dir: bool


STATES = (
    StateItem("index data files", "lancedb/chunks.lance/data", True),
    StateItem("index manifests", "lancedb/chunks.lance/_versions", True),
    StateItem("full-text index", "lancedb/chunks.lance/_indices/{fts}", True),
    StateItem("vector index", "lancedb/chunks.lance/_indices/{vector}", True),
    StateItem("corpus journal", "corpus.sqlite3", False),
    StateItem("answer cache", "cache/answers/cache.db", False),
    StateItem("embedding cache", "cache/embeddings/cache.db", False),
    StateItem("event log", "events.sqlite3", False),
    StateItem("dead letter file", "dead_letter.jsonl", False),
    StateItem("lock file", "ingest.lock", False),
    StateItem("state folder", "", True),
)

SKIPPED = {
    ("state folder", "truncated"): "a folder cannot be cut off; each file's own row covers it",
    ("state folder", "garbage"): "each file's own row covers it",
}


def skip_reason(state: str, fault: str) -> str | None:
    return SKIPPED.get((state, fault))


def cells() -> list[tuple[str, str, str]]:
    return [(s.name, f, c) for s in STATES for f in FAULTS for c in COMMANDS if skip_reason(s.name, f) is None]


ITEMS = {item.name: item for item in STATES}


# ----- the base state -----------------------------------------------------------------------------------
def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")}
    env.update(
        RAGCLI_HOME=str(home),
        PYTHONPATH=str(REPO),
        RAGCLI_STORE__ANN_MIN_ROWS="20",  # so the small state has a vector index to damage
        RAGCLI_STORE__KEEP_VERSIONS_MINUTES="0",
        COLUMNS="200",
    )
    return env


def ragcli(home: Path, *args: str, wrap: Sequence[str] = (), timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [*wrap, sys.executable, "-m", "ragcli", *args]
    return subprocess.run(command, env=cli_env(home), capture_output=True, text=True, timeout=timeout, check=False)


def build_state(root: Path) -> tuple[Path, Path, dict[str, str]]:
    """A small state (the fixture documents, one that fails, a cached answer, events, a stale lock
    record) and the documents folder with one more file for the ingest cells to add."""
    docs = root / "docs"
    shutil.copytree(REPO / "fixtures" / "docs", docs)
    shutil.copy(REPO / "fixtures" / "broken" / "corrupt.pdf", docs / "corrupt.pdf")
    home = root / "home"
    done = ragcli(home, "ingest", str(docs))
    assert done.returncode == 3, done.stderr  # corrupt.pdf: in the dead letter file
    for question in (CACHED_QUESTION, "What is the warranty period?"):
        asked = ragcli(home, "ask", question)
        assert asked.returncode == 0, asked.stderr
    (home / "ingest.lock").write_text("pid=999999 host=elsewhere since=2026-01-01T00:00:00Z\n")
    (docs / "new-note.md").write_text("# Belt tension\n\nCheck the belt tension every 500 hours of running.\n")
    names = index_names(home)
    assert set(names) == {"vector", "fts"}, names
    return home, docs, names


def index_names(home: Path) -> dict[str, str]:
    import warnings

    import lance

    dataset = lance.dataset(str(home / "lancedb" / "chunks.lance"))
    names = {}
    with warnings.catch_warnings():  # list_indices is deprecated, but the only one that names the folders
        warnings.simplefilter("ignore", DeprecationWarning)
        indices = dataset.list_indices()
    for index in indices:
        kind = "vector" if index["fields"] == ["vector"] else "fts"
        names[kind] = index["uuid"]
    return names


def target_of(item: StateItem, home: Path, names: dict[str, str]) -> Path:
    return home / item.path.format(**names) if item.path else home


# ----- faults -------------------------------------------------------------------------------------------
def files_of(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.rglob("*") if p.is_file())
    return [target] if target.exists() else []


def damage(target: Path, fault: str) -> None:
    """missing, truncated or garbage, in place."""
    if fault == "missing":
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                target.with_name(target.name + suffix).unlink(missing_ok=True)
        return
    for path in files_of(target):
        size = path.stat().st_size
        if fault == "truncated":
            os.truncate(path, min(size // 2, 100) if size > 1 else 0)
        else:
            path.write_bytes(b"\x8f garbage \x00" * max(1, size // 11))
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def wrapper(fault: str, target: Path, *, whole: bool) -> list[str]:
    """The command prefix that runs a command with `fault` in place (empty for in-place faults)."""
    if fault not in ("read-only", "disk full"):
        return []
    kind = "read-only" if fault == "read-only" else "disk-full"
    extra = ["--whole"] if whole else []
    return ["unshare", "-m", "--", sys.executable, str(Path(__file__)), "wrap", "--fault", kind,
            "--target", str(target), *extra, "--"]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _fill(folder: Path) -> None:
    fd = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError:
                    break
    finally:
        os.close(fd)


def _make_read_only(target: Path) -> None:
    _mount("--bind", str(target), str(target))
    _mount("-o", "remount,bind,ro", str(target))


def _make_full(target: Path, whole: bool) -> Path:
    """`target` (a folder) on a full tmpfs: its files copied there; its subfolders too with `whole`,
    else bound back from the normal disk, so that only this folder is full."""
    import tempfile

    staging = Path(tempfile.mkdtemp(prefix="faultkit-"))
    used = sum(p.stat().st_size for p in (target.rglob("*") if whole else target.iterdir()) if p.is_file())
    _mount("-t", "tmpfs", "-o", f"size={used + 256 * 1024},mode=0700", "tmpfs", str(staging))
    for entry in target.iterdir():
        if entry.is_dir() and whole:
            shutil.copytree(entry, staging / entry.name, symlinks=True)
        elif entry.is_dir():
            (staging / entry.name).mkdir()
            _mount("--bind", str(entry), str(staging / entry.name))
        else:
            shutil.copy2(entry, staging / entry.name)
    _fill(staging)
    _mount("--rbind", str(staging), str(target))
    return staging


def wrap_main(argv: list[str]) -> None:
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    fault = options[options.index("--fault") + 1]
    target = Path(options[options.index("--target") + 1])
    if fault == "read-only":
        _make_read_only(target)
        os.execvp(command[0], command)
    folder = target if target.is_dir() else target.parent
    staging = _make_full(folder, "--whole" in options)
    code = subprocess.run(command, check=False).returncode
    # The mounts die with this namespace; the empty staging folder on /tmp is removed here.
    subprocess.run(["umount", "-R", "-l", str(folder)], check=False, capture_output=True)
    subprocess.run(["umount", "-R", "-l", str(staging)], check=False, capture_output=True)
    staging.rmdir()
    sys.exit(code if code >= 0 else 128 - code)


# ----- running cells -------------------------------------------------------------------------------------
@dataclass
class Base:
    home: Path
    docs: Path
    names: dict[str, str]


def command_args(command: str, docs: Path) -> list[str]:
    return {"ingest": ["ingest", str(docs)], "ask": ["ask", NEW_QUESTION], "stats": ["stats"],
            "reindex": ["reindex"]}[command]


def prepare(base: Base, state: str, fault: str, workdir: Path) -> tuple[Path, list[str]]:
    """A copy of the base state with `fault` applied to `state`; the command prefix it needs."""
    home = workdir / "home"
    shutil.copytree(base.home, home, symlinks=True)
    item = ITEMS[state]
    target = target_of(item, home, base.names)
    if fault in ("missing", "truncated", "garbage"):
        damage(target, fault)
    return home, wrapper(fault, target, whole=not item.path)


def run_cell(base: Base, cell: tuple[str, str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    state, fault, command = cell
    home, wrap = prepare(base, state, fault, workdir)
    return ragcli(home, *command_args(command, base.docs), wrap=wrap)


def follow_advice(base: Base, cell: tuple[str, str, str], hint: str, workdir: Path) -> list[subprocess.CompletedProcess[str]]:
    """Do what the fix said, in the same fault, then the command again: both results."""
    state, fault, command = cell
    home, wrap = prepare(base, state, fault, workdir)
    args = [str(base.docs) if word == "PATH" else word for word in hint.split()[1:]]
    fixed = ragcli(home, *args, wrap=wrap)
    again = ragcli(home, *command_args(command, base.docs), wrap=wrap)
    return [fixed, again]


def run_matrix(base: Base, root: Path, workers: int = 3) -> dict[tuple[str, str, str], subprocess.CompletedProcess[str]]:
    from concurrent.futures import ThreadPoolExecutor

    todo = cells()
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda pair: run_cell(base, pair[1], root / f"cell-{pair[0]}"), enumerate(todo))
        return dict(zip(todo, results, strict=True))


# ----- outcomes -----------------------------------------------------------------------------------------
ADVICE = re.compile(r"[Rr]un `(ragcli [^`]+)`")


def advice(stderr: str) -> str | None:
    """The ragcli command the fix names, if it names one."""
    fixes = [line for line in stderr.splitlines() if line.strip().startswith("Fix:")]
    for line in fixes:
        match = ADVICE.search(line)
        if match:
            return match.group(1)
    return None


def outcome(result: subprocess.CompletedProcess[str]) -> str:
    """A cell's result in a few words: `ok`, `ok, warns`, `exit 3`, `exit 5 → ragcli reindex`."""
    if result.returncode == 0:
        return "ok, warns" if "WARNING" in result.stderr else "ok"
    text = f"exit {result.returncode}"
    hint = advice(result.stderr)
    return f"{text} → {hint.split()[0]} {hint.split()[1]}" if hint else text


def load_expected() -> dict[tuple[str, str, str], str]:
    expected = {}
    for line in EXPECTED_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        state, fault, command, result = (part.strip() for part in line.split("|"))
        expected[(state, fault, command)] = result
    return expected


def write_expected(results: dict[tuple[str, str, str], str]) -> None:
    lines = ["# state | fault | command | outcome  (tests/faultkit.py; docs/operations.md is rendered from it)"]
    lines += [f"{s} | {f} | {c} | {results[(s, f, c)]}" for s, f, c in cells() if (s, f, c) in results]
    EXPECTED_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")


def render_table(expected: dict[tuple[str, str, str], str]) -> str:
    """The matrix as Markdown: a row per state and fault, a column per command."""
    rows = ["| state | fault | " + " | ".join(COMMANDS) + " |", "|---|---|" + "---|" * len(COMMANDS)]
    for item in STATES:
        for fault in FAULTS:
            reason = skip_reason(item.name, fault)
            if reason is not None:
                rows.append(f"| {item.name} | {fault} | skipped: {reason} |" + " |" * (len(COMMANDS) - 1))
                continue
            outcomes = [expected.get((item.name, fault, c), "?") for c in COMMANDS]
            rows.append(f"| {item.name} | {fault} | " + " | ".join(outcomes) + " |")
    return "\n".join(rows)


def main() -> None:
    """`python tests/faultkit.py record [WORKDIR]`: run the matrix and write tests/fault_matrix.txt."""
    import tempfile
    import time

    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="faults-"))
    started = time.perf_counter()
    base = Base(*build_state(root / "base"))
    results = run_matrix(base, root)
    for cell, result in results.items():
        print(" | ".join(cell), "|", outcome(result), "|", result.stderr.strip().replace("\n", " ⏎ ")[:300])
    write_expected({cell: outcome(result) for cell, result in results.items()})
    print(f"{len(results)} cells in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["wrap"]:
        wrap_main(sys.argv[2:])
    elif sys.argv[1:2] == ["record"]:
        main()
