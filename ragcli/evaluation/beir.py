"""Readers for BEIR-format folders, and the bridge from corpus documents to files the ingester reads.

A BEIR folder holds corpus.jsonl ({"_id", "title", "text", ...}), queries.jsonl ({"_id", "text"}) and
qrels/<split>.tsv (query-id, corpus-id, score). Files published in the wild vary: some qrels have no
header line, some use TREC's four columns, some files start with a BOM or end with blank lines. The
readers accept all of that and stop with a UsageError naming the file and line for anything else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from ragcli.errors import UsageError

logger = logging.getLogger(__name__)

BEIR_LAYOUT_HINT = (
    "A BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv "
    "(the layout of the published BEIR data sets)."
)
CORPUS_FILE_SUFFIX = ".txt"


@dataclass(frozen=True)
class CorpusDoc:
    """One document of an evaluation corpus; `doc_id` is what qrels and hit rates refer to."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class BeirDataset:
    corpus: dict[str, CorpusDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    return BeirDataset(
        corpus=load_corpus(directory),
        queries=load_queries(directory),
        qrels=load_qrels(directory, split),
    )


def load_corpus(directory: str | Path) -> dict[str, CorpusDoc]:
    path = _required_file(Path(directory), "corpus.jsonl")
    corpus: dict[str, CorpusDoc] = {}
    for line_no, record in _json_lines(path):
        doc_id = _record_id(record, path, line_no)
        if doc_id in corpus:
            logger.warning("%s line %d: duplicate _id %r; keeping the first", path, line_no, doc_id)
            continue
        corpus[doc_id] = CorpusDoc(
            doc_id=doc_id,
            title=_optional_text(record, "title", path, line_no),
            text=_optional_text(record, "text", path, line_no),
        )
    return corpus


def load_queries(directory: str | Path) -> dict[str, str]:
    path = _required_file(Path(directory), "queries.jsonl")
    queries: dict[str, str] = {}
    for line_no, record in _json_lines(path):
        query_id = _record_id(record, path, line_no)
        text = _optional_text(record, "text", path, line_no).strip()
        if not text:
            raise UsageError(f"{path} line {line_no}: query {query_id!r} has no text.")
        queries.setdefault(query_id, text)
    return queries


def load_qrels(directory: str | Path, split: str = "test") -> dict[str, dict[str, int]]:
    """{query id: {corpus id: graded relevance}}; a header line is skipped when there is one."""
    folder = Path(directory)
    path = folder / "qrels" / f"{split}.tsv"
    if not path.is_file():
        _required_dir(folder)
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        hint = f"Splits in this folder: {', '.join(available)}." if available else BEIR_LAYOUT_HINT
        raise UsageError(f"There is no qrels file for split {split!r} ({path}).", hint=hint)
    qrels: dict[str, dict[str, int]] = {}
    for row_no, (line_no, fields) in enumerate(_tsv_rows(path)):
        query_id, corpus_id, raw_score = _qrel_fields(fields, path, line_no)
        try:
            score = int(float(raw_score))
        except (ValueError, OverflowError):
            if row_no == 0:
                continue  # the header line: "query-id corpus-id score"
            raise UsageError(
                f"{path} line {line_no}: the score {raw_score!r} is not a number.",
                hint="Each line is: query-id <TAB> corpus-id <TAB> score.",
            ) from None
        qrels.setdefault(query_id, {})[corpus_id] = score
    if not qrels:
        raise UsageError(f"{path} holds no relevance judgments.", hint=BEIR_LAYOUT_HINT)
    return qrels


# ----- corpus documents as files ------------------------------------------------------------------
def corpus_file_name(doc_id: str) -> str:
    """A file name that maps back to `doc_id` exactly (see `corpus_id_for_source`)."""
    name = quote(doc_id, safe="")
    if name.startswith("."):
        # A leading dot would make a hidden file (or "." / ".."), which walkers skip or cannot write.
        name = "%2E" + name[1:]
    return name + CORPUS_FILE_SUFFIX


def corpus_id_for_source(source: str) -> str:
    """The corpus id of a file written by `write_corpus_files`, given its path as the index stores it."""
    name = Path(source).name
    if name.endswith(CORPUS_FILE_SUFFIX):
        name = name[: -len(CORPUS_FILE_SUFFIX)]
    return unquote(name)


def write_corpus_files(docs: Iterable[CorpusDoc], directory: str | Path) -> int:
    """Write one text file per document (title on the first line, so it becomes the indexed title).

    Files whose content is already right are left untouched, so re-ingesting the folder costs one hash
    per file. Returns the number of files written or rewritten.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for doc in docs:
        path = folder / corpus_file_name(doc.doc_id)
        content = f"{doc.title}\n\n{doc.text}\n" if doc.title.strip() else f"{doc.text}\n"
        data = content.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            continue
        path.write_bytes(data)
        written += 1
    return written


# ----- parsing helpers ----------------------------------------------------------------------------
def _required_dir(folder: Path) -> None:
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder.", hint=BEIR_LAYOUT_HINT)


def _required_file(folder: Path, name: str) -> Path:
    _required_dir(folder)
    path = folder / name
    if not path.is_file():
        raise UsageError(f"{name} is missing from {folder}.", hint=BEIR_LAYOUT_HINT)
    return path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; utf-8-sig drops a leading BOM."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    yield line_no, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text ({exc.reason}).") from None


def _json_lines(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for line_no, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{path} line {line_no}: not valid JSON ({exc.msg}).",
                hint="Each line of a .jsonl file is one JSON object.",
            ) from None
        if not isinstance(record, dict):
            raise UsageError(f"{path} line {line_no}: expected a JSON object, got {type(record).__name__}.")
        yield line_no, record


def _record_id(record: Mapping[str, Any], path: Path, line_no: int) -> str:
    value = record.get("_id")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UsageError(f'{path} line {line_no}: the record has no "_id".', hint=BEIR_LAYOUT_HINT)
    return str(value)


def _optional_text(record: Mapping[str, Any], key: str, path: Path, line_no: int) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UsageError(f'{path} line {line_no}: "{key}" must be a string.')
    return value


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    for line_no, line in _lines(path):
        fields = line.split("\t") if "\t" in line else line.split()
        yield line_no, [field.strip() for field in fields]


def _qrel_fields(fields: list[str], path: Path, line_no: int) -> tuple[str, str, str]:
    if len(fields) == 3:
        return fields[0], fields[1], fields[2]
    if len(fields) == 4:
        # TREC qrels: query-id, iteration (unused), corpus-id, score.
        return fields[0], fields[2], fields[3]
    raise UsageError(
        f"{path} line {line_no}: expected 3 columns (query-id, corpus-id, score), found {len(fields)}.",
        hint="Each line is: query-id <TAB> corpus-id <TAB> score.",
    )
