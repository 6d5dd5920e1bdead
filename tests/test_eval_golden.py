"""Golden sets: loading (errors name the line), source matching, recall/MRR, answers, thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragcli.errors import UsageError
from ragcli.evaluation.golden import (
    answer_contains,
    check_thresholds,
    load_golden,
    score_golden,
    source_pattern,
)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, str]:
    """Real files; returns their resolved paths by short name, as the index would record them."""
    files = {
        "guide": tmp_path / "docs" / "guide.md",
        "keys": tmp_path / "docs" / "api" / "keys.md",
        "auth": tmp_path / "docs" / "api" / "auth.md",
        "faq": tmp_path / "notes" / "faq.txt",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {path.stem}\n")
    (tmp_path / "link").symlink_to(tmp_path / "docs", target_is_directory=True)
    (tmp_path / "golden").mkdir()
    return {name: str(path.resolve()) for name, path in files.items()}


def write_golden(tmp_path: Path, records: list[object]) -> Path:
    path = tmp_path / "golden" / "golden.jsonl"
    lines = [record if isinstance(record, str) else json.dumps(record) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def golden_items(tmp_path: Path, tree: dict[str, str]) -> Path:
    return write_golden(
        tmp_path,
        [
            {
                "question": "How do I install it?",
                "expected_sources": ["../docs/guide.md"],
                "expected_answer": "pip install ragcli",
            },
            "",  # blank lines are skipped but still counted in line numbers
            {"question": "How do I rotate keys?", "expected_sources": ["../docs/api/*.md"], "id": "keys"},
            {"question": "What is in the FAQ?", "expected_sources": [tree["faq"]]},
            {"question": "Where is the API?", "expected_sources": ["../link/api/"]},
        ],
    )


# The fixed rankings: source paths, best first, with duplicates (several chunks per file).
def ranking(tree: dict[str, str]) -> dict[str, list[str]]:
    return {
        "How do I install it?": [tree["faq"], tree["guide"], tree["guide"]],  # first hit at rank 2
        "How do I rotate keys?": [tree["keys"], tree["keys"], tree["guide"]],  # rank 1
        "What is in the FAQ?": [tree["guide"], tree["keys"]],  # miss
        "Where is the API?": [tree["faq"], tree["faq"], tree["faq"], tree["auth"]],  # rank 2 after de-dup
    }


# ----- loading ------------------------------------------------------------------------------------
def test_load_golden_resolves_sources_against_the_files_folder(
    golden_items: Path, tree: dict[str, str]
) -> None:
    items = load_golden(golden_items)

    assert [item.line for item in items] == [1, 3, 4, 5]
    assert items[0].expected_answer == "pip install ragcli"
    assert items[1].expected_answer is None
    assert [pattern.kind for item in items for pattern in item.expected_sources] == [
        "file",
        "glob",
        "file",
        "folder",
    ]
    assert items[0].expected_sources[0].target == tree["guide"]
    assert items[0].expected_sources[0].written == "../docs/guide.md"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "expected_sources": ["a.md"]', r"line 3: not valid JSON"),
        ('["q", "a.md"]', r"line 3: expected a JSON object"),
        ('{"expected_sources": ["a.md"]}', r'line 3: "question" must be a non-empty string'),
        ('{"question": " ", "expected_sources": ["a.md"]}', r'line 3: "question" must be'),
        ('{"question": "q", "expected_sources": []}', r'line 3: "expected_sources" must be a non-empty list'),
        ('{"question": "q", "expected_source": ["a.md"]}', r'line 3: "expected_sources" must be'),
        ('{"question": "q", "expected_sources": [3]}', r'line 3: "expected_sources" must be'),
        (
            '{"question": "q", "expected_sources": ["a.md"], "expected_answer": 5}',
            r'line 3: "expected_answer"',
        ),
        (
            '{"question": "q", "expected_sources": ["a.md"], "expected_answer": "the !"}',
            r'line 3: "expected_answer"',
        ),
    ],
)
def test_load_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "golden").mkdir()
    good = {"question": "fine", "expected_sources": "a.md"}  # a single string is accepted too
    path = write_golden(tmp_path, [good, "", line])

    with pytest.raises(UsageError, match=message) as error:
        load_golden(path)
    assert str(path) in error.value.message


def test_missing_or_empty_golden_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_golden(tmp_path / "absent.jsonl")
    (tmp_path / "golden").mkdir()
    with pytest.raises(UsageError, match="holds no questions"):
        load_golden(write_golden(tmp_path, ["", "  "]))


# ----- source matching ----------------------------------------------------------------------------
def test_globs_stay_within_a_segment_unless_double_star(tmp_path: Path, tree: dict[str, str]) -> None:
    one_level = source_pattern("docs/*.md", tmp_path)
    any_depth = source_pattern("docs/**/*.md", tmp_path)
    char_class = source_pattern("docs/api/[ka]*.md", tmp_path)
    negated = source_pattern("docs/api/[!k]*.md", tmp_path)

    assert one_level.matches(tree["guide"]) and not one_level.matches(tree["keys"])
    assert any_depth.matches(tree["guide"]) and any_depth.matches(tree["keys"])
    assert not any_depth.matches(tree["faq"])
    assert char_class.matches(tree["keys"]) and char_class.matches(tree["auth"])
    assert negated.matches(tree["auth"]) and not negated.matches(tree["keys"])


def test_symlinked_and_absolute_paths_match_the_resolved_source(tmp_path: Path, tree: dict[str, str]) -> None:
    assert source_pattern("link/guide.md", tmp_path).matches(tree["guide"])
    assert source_pattern("link/**/keys.md", tmp_path).matches(tree["keys"])
    assert source_pattern(tree["faq"], tmp_path / "elsewhere").matches(tree["faq"])
    assert source_pattern("notes/../docs/guide.md", tmp_path).matches(tree["guide"])
    # A folder stands for the files under it, not for a file whose name merely starts the same way.
    folder = source_pattern("docs", tmp_path)
    assert folder.kind == "folder" and folder.matches(tree["keys"])
    assert not source_pattern("doc", tmp_path).matches(tree["guide"])


# ----- scoring ------------------------------------------------------------------------------------
def test_recall_and_mrr_by_hand(golden_items: Path, tree: dict[str, str]) -> None:
    items = load_golden(golden_items)
    rankings = ranking(tree)

    result = score_golden(items, lambda question, k: rankings[question], k=3)

    # Ranks of the first expected source: 2, 1, none, 2 (the folder, after de-duplicating faq).
    # recall@3 = 3 of 4 = 0.75 ; MRR = (1/2 + 1/1 + 0 + 1/2) / 4 = 0.5
    assert result["recall"] == pytest.approx(0.75, abs=1e-6)
    assert result["mrr"] == pytest.approx(0.5, abs=1e-6)
    assert (result["k"], result["items"]) == (3, 4)
    assert [row["rank"] for row in result["per_item"]] == [2, 1, None, 2]
    assert result["per_item"][3]["retrieved"] == [tree["faq"], tree["auth"]]
    assert result["answer_containment"] is None
    assert {"p50_ms", "p95_ms"} <= result.keys()


def test_k_cuts_the_ranking(golden_items: Path, tree: dict[str, str]) -> None:
    items = load_golden(golden_items)
    rankings = ranking(tree)

    result = score_golden(items, lambda question, k: rankings[question], k=1)

    # Only rank 1 counts: the keys question alone hits. recall@1 = 1/4 ; MRR = (0 + 1 + 0 + 0) / 4
    assert result["recall"] == pytest.approx(0.25, abs=1e-6)
    assert result["mrr"] == pytest.approx(0.25, abs=1e-6)


def test_answer_containment(golden_items: Path, tree: dict[str, str]) -> None:
    items = load_golden(golden_items)
    rankings = ranking(tree)
    asked: list[str] = []

    def answer(question: str) -> str:
        asked.append(question)
        return "Run `pip install ragcli` in a shell [1]."

    result = score_golden(items, lambda question, k: rankings[question], k=3, answer=answer)

    assert asked == ["How do I install it?"]  # only items with an expected_answer are generated
    assert result["answer_containment"] == 1.0
    assert result["answered_items"] == 1
    assert answer_contains("The Answer: PIP install RAGCLI!", "pip install ragcli")
    assert not answer_contains("pip install ragcli-extra", "pip install ragcli")  # whole words only
    assert not answer_contains("The documents do not contain the answer.", "pip install ragcli")


def test_check_thresholds() -> None:
    result = {"recall": 0.75, "mrr": 0.5, "k": 3}

    assert check_thresholds(result) == []
    assert check_thresholds(result, min_recall=0.75, min_mrr=0.5) == []  # meeting the minimum passes
    assert check_thresholds(result, min_recall=0.8) == ["recall@3 0.750 is below the minimum 0.800"]
    assert check_thresholds(result, min_recall=0.8, min_mrr=0.6) == [
        "recall@3 0.750 is below the minimum 0.800",
        "MRR 0.500 is below the minimum 0.600",
    ]
    with pytest.raises(UsageError, match="between 0 and 1"):
        check_thresholds(result, min_mrr=1.5)
