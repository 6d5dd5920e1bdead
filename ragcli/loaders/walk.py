"""Which files an ingest of a path reads, in a deterministic order.

Glob patterns (include and exclude) are matched against a file's path relative to the root, written
with "/" on every platform, case-sensitively:

- `*` matches any run of characters except "/", `?` one character except "/", `[abc]` / `[!abc]` one
  character from (not from) a set, as in fnmatch;
- `**` as a whole path segment matches zero or more directories: `**/*.md` matches `a.md` and `x/y/a.md`,
  `docs/**` everything under docs/;
- a pattern without "/" matches the file name at any depth (`*.md` is `**/*.md`), like pathlib's
  `PurePath.match`; start it with "/" to anchor it at the root (`/README.md`).

A file is yielded if it matches at least one include pattern and no exclude pattern. A directory whose
relative path matches an exclude pattern (`node_modules`, `build`, `**/tmp`), or that a pattern ending
in "/**" covers whole (`build/**`), is not entered at all.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

VCS_DIRS = frozenset({".git", ".hg", ".svn", "CVS", "_darcs", ".bzr"})


def iter_files(root: Path, include: list[str], exclude: list[str]) -> Iterator[Path]:
    """Files under `root` to ingest, sorted; `root` itself if it is a file (globs do not apply).

    Hidden entries (name starting with ".") and VCS folders are skipped. Symbolic links are followed only
    if they resolve inside `root`; each directory is entered once, so link cycles end, and a file reached
    through several links is yielded once. Real paths win over links: links are walked after the real
    tree, so a file that is also reachable without a link is yielded under its real path.
    Unreadable directories are logged and skipped.
    """
    if not root.is_dir():
        if root.exists():
            yield root
        return
    yield from _Walk(root, include, exclude).files()


def matches_any(relative: str, patterns: Iterable[str]) -> bool:
    """Whether a POSIX relative path matches one of the glob patterns (see the module docstring)."""
    return _matches(relative, [compile_glob(pattern) for pattern in patterns])


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    anchored = pattern.startswith("/")
    pattern = pattern.strip("/")
    segments = [s for s in pattern.split("/") if s] or [""]
    if not anchored and len(segments) == 1 and segments[0] != "**":
        segments = ["**", *segments]
    regex = ""
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _segment_regex(segment) + ("" if last else "/")
    return re.compile(regex)


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1  # "a**b" inside a segment is the same as "a*b"
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = _class_end(segment, i)
            if close == -1:
                out.append(re.escape(char))
            else:
                body = segment[i + 1 : close]
                negate = body.startswith("!")
                body = re.sub(r"([\\^\[&~|])", r"\\\1", body[1:] if negate else body)
                out.append(f"[{'^/' if negate else ''}{body}]")
                i = close
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the "]" closing the set opened at `start`, or -1; a leading "]" or "!]" is literal."""
    i = start + 1
    if segment[i : i + 1] == "!":
        i += 1
    if segment[i : i + 1] == "]":
        i += 1
    return segment.find("]", i)


class _Walk:
    def __init__(self, root: Path, include: list[str], exclude: list[str]) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.include = [compile_glob(p) for p in include]
        self.exclude = [compile_glob(p) for p in exclude]
        # "docs/**" excludes every file under docs/, so the folder itself need not be entered.
        self.exclude_dirs = self.exclude + [compile_glob(p[:-3]) for p in exclude if p.endswith("/**")]
        self.visited_dirs: set[Path] = set()
        self.yielded_files: set[Path] = set()
        self.deferred_links: list[tuple[Path, str]] = []  # (path, relative path), walked last

    def files(self) -> Iterator[Path]:
        self.visited_dirs.add(self.real_root)
        yield from self._walk_dir(self.root, "", self.real_root)
        # Links may lead to more links (a linked folder holding links), so drain until none are left.
        while self.deferred_links:
            pending, self.deferred_links = self.deferred_links, []
            for path, relative in pending:
                yield from self._follow_link(path, relative)

    def _walk_dir(self, directory: Path, prefix: str, real_dir: Path) -> Iterator[Path]:
        try:
            with os.scandir(directory) as entries:
                listing = sorted(entries, key=lambda entry: entry.name)
        except OSError as exc:
            log.warning("skipping unreadable folder %s: %s", directory, exc.strerror or exc)
            return
        for entry in listing:
            name = entry.name
            if name.startswith(".") or name in VCS_DIRS:
                continue
            relative = f"{prefix}{name}"
            path = directory / name
            try:
                if entry.is_symlink():
                    self.deferred_links.append((path, relative))
                elif entry.is_dir(follow_symlinks=False):
                    yield from self._enter_dir(path, relative, real_dir / name)
                elif entry.is_file(follow_symlinks=False):
                    yield from self._consider_file(path, relative, real_dir / name)
            except OSError as exc:
                log.warning("skipping %s: %s", path, exc.strerror or exc)

    def _follow_link(self, path: Path, relative: str) -> Iterator[Path]:
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # a dangling link, or a loop of links
            log.info("skipping broken link %s: %s", path, exc)
            return
        if not target.is_relative_to(self.real_root):
            log.info("not following %s: it points outside %s", path, self.root)
            return
        if target.is_dir():
            yield from self._enter_dir(path, relative, target)
        elif target.is_file():
            yield from self._consider_file(path, relative, target)

    def _enter_dir(self, path: Path, relative: str, real: Path) -> Iterator[Path]:
        if _matches(relative, self.exclude_dirs) or real in self.visited_dirs:
            return
        self.visited_dirs.add(real)
        yield from self._walk_dir(path, relative + "/", real)

    def _consider_file(self, path: Path, relative: str, real: Path) -> Iterator[Path]:
        if not _matches(relative, self.include) or _matches(relative, self.exclude):
            return
        if real in self.yielded_files:
            return
        self.yielded_files.add(real)
        yield path


def _matches(relative: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(pattern.fullmatch(relative) for pattern in patterns)
