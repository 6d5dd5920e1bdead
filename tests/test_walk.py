"""The directory walker, on real trees (with real symlinks) built in tmp_path."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from ragcli.loaders.walk import iter_files, matches_any

ALL = ["**/*"]


def make_tree(root: Path, files: list[str]) -> Path:
    for relative in files:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"contents of {relative}\n", encoding="utf-8")
    return root


def walk(root: Path, include: list[str] = ALL, exclude: list[str] | None = None) -> list[str]:
    return [p.relative_to(root).as_posix() for p in iter_files(root, include, exclude or [])]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*", "a.md", True),
        ("**/*", "x/y/a.md", True),
        ("**/*.md", "a.md", True),
        ("**/*.md", "docs/deep/a.md", True),
        ("*.md", "docs/deep/a.md", True),  # no "/" in the pattern: matches the name at any depth
        ("*.md", "docs/a.txt", False),
        ("*.md", "a.MD", False),  # case-sensitive
        ("/README.md", "README.md", True),
        ("/README.md", "docs/README.md", False),
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "docs/sub/a.md", False),  # * stays within one segment
        ("docs/**", "docs/sub/a.md", True),
        ("docs/**", "other/docs/a.md", False),
        ("a/**/b.md", "a/b.md", True),
        ("a/**/b.md", "a/x/y/b.md", True),
        ("?.txt", "a.txt", True),
        ("?.txt", "ab.txt", False),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "b.txt", False),
        ("[!ab].txt", "c.txt", True),
        ("[[].txt", "[.txt", True),
        ("notes (draft).md", "notes (draft).md", True),  # regex characters are literal
    ],
)
def test_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert matches_any(path, [pattern]) is expected


def test_directory_walk_is_sorted_and_deterministic(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", ["b.md", "a/z.txt", "a/b/c.md", "A.txt", "c.html"])
    expected = ["A.txt", "a/b/c.md", "a/z.txt", "b.md", "c.html"]
    assert walk(root) == expected
    assert walk(root) == expected


def test_include_and_exclude(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "root",
        ["a.md", "docs/b.md", "docs/c.txt", "drafts/d.md", "node_modules/pkg/e.md", "docs/drafts/f.md"],
    )
    assert walk(root, ["**/*.md"]) == ["a.md", "docs/b.md", "docs/drafts/f.md", "drafts/d.md",
                                       "node_modules/pkg/e.md"]
    assert walk(root, ["*.md"], ["/drafts/**", "node_modules"]) == ["a.md", "docs/b.md", "docs/drafts/f.md"]
    assert walk(root, ALL, ["**/drafts", "*.txt"]) == ["a.md", "docs/b.md", "node_modules/pkg/e.md"]
    assert walk(root, ["docs/*"]) == ["docs/b.md", "docs/c.txt"]


def test_excluded_folder_is_not_entered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_tree(tmp_path / "root", ["keep.md", "build/out.md"])
    # Entering build/ would log that this link leads outside the root.
    (root / "build" / "escape").symlink_to(tmp_path, target_is_directory=True)
    with caplog.at_level(logging.DEBUG, logger="ragcli.loaders.walk"):
        assert walk(root, ALL, ["build/**"]) == ["keep.md"]
        assert not caplog.records
        assert walk(root) == ["build/out.md", "keep.md"]
        assert "points outside" in caplog.text


def test_hidden_entries_and_vcs_folders_are_skipped(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "root",
        [".hidden.md", ".cache/a.md", ".git/config.md", "CVS/entries.md", "_darcs/patch.md",
         "docs/.secret.md", "docs/visible.md", "top.md"],
    )
    assert walk(root) == ["docs/visible.md", "top.md"]


def test_a_file_root_is_yielded_even_if_globs_or_its_name_would_skip_it(tmp_path: Path) -> None:
    hidden = make_tree(tmp_path, [".notes.txt"]) / ".notes.txt"
    assert list(iter_files(hidden, ["*.md"], ["*.txt"])) == [hidden]


def test_a_missing_root_yields_nothing(tmp_path: Path) -> None:
    assert list(iter_files(tmp_path / "absent", ALL, [])) == []


def test_links_pointing_outside_the_root_are_not_followed(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", ["secret.md", "dir/deep.md"])
    root = make_tree(tmp_path / "root", ["inside.md"])
    (root / "file-link.md").symlink_to(outside / "secret.md")
    (root / "dir-link").symlink_to(outside / "dir", target_is_directory=True)
    (root / "relative-escape").symlink_to(Path("..") / "outside", target_is_directory=True)
    assert walk(root) == ["inside.md"]


def test_link_cycles_terminate(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", ["a/file.md"])
    (root / "a" / "up").symlink_to(root, target_is_directory=True)
    (root / "a" / "self").symlink_to(root / "a", target_is_directory=True)
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    assert walk(root) == ["a/file.md"]


def test_a_file_reachable_through_links_is_yielded_once_under_its_real_path(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", ["docs/guide.md", ".versions/v3.md"])
    (root / "0-link-to-guide.md").symlink_to(root / "docs" / "guide.md")
    (root / "0-link-to-docs").symlink_to(root / "docs", target_is_directory=True)
    # The target is hidden, so the link is the only way the walk reaches it.
    (root / "current.md").symlink_to(root / ".versions" / "v3.md")
    assert walk(root) == ["docs/guide.md", "current.md"]


def test_a_linked_folder_inside_the_root_is_walked_once(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", ["shared/.hidden/x.md", "shared/.hidden/y.md"])
    (root / "alias").symlink_to(root / "shared" / ".hidden", target_is_directory=True)
    assert walk(root) == ["alias/x.md", "alias/y.md"]


def test_the_root_may_itself_be_a_link(tmp_path: Path) -> None:
    real = make_tree(tmp_path / "real", ["a.md", "sub/b.md"])
    (real / "sub" / "back").symlink_to(real / "a.md")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert walk(link) == ["a.md", "sub/b.md"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_folder_is_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_tree(tmp_path / "root", ["ok.md", "locked/inner.md"])
    (root / "locked").chmod(0)
    try:
        with caplog.at_level(logging.WARNING):
            assert walk(root) == ["ok.md"]
        assert "unreadable folder" in caplog.text and "locked" in caplog.text
    finally:
        (root / "locked").chmod(0o755)
