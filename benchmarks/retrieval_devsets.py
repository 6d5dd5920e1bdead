"""Build the BEIR-format development sets the retrieval study uses (docs/benchmarks.md, "Retrieval").

    .venv/bin/python benchmarks/retrieval_devsets.py --out /tmp/devsets

- scifact-1500: the SciFact train split (809 claims) over a 1,500-abstract subsample of the corpus: every
  abstract a train claim is judged against (565) plus distractors drawn uniformly (seed 14) from the
  rest. A subsample because a full-corpus ingest costs ~40 CPU-minutes per chunking variant here.
  With --scifact-keep N (the study used 448, all the shared machine could embed in time), only the first
  N of those abstracts by corpus file name are kept, with the train claims whose judged abstracts are
  all among them: distractors and judged abstracts stay mixed as before, the claims are a subset.
- squad-graded: SQuAD 2.0 dev part (../shared/eval/squad-v2-part): each paragraph is a document titled
  with its article, each answerable question a query. Graded judgements: 2 for the paragraph the
  question was written on, 1 for another paragraph of the same article that contains one of the gold
  answers verbatim (it answers the question too, less surely). An entity/Wikipedia-like set with graded
  passages, the closest to the held-out kinds that the data here allows.
- postgres-passages: the web-passage kind as near as the data here allows: short passages (paragraphs
  joined to 40-150 words, as MS MARCO's are short) cut from the PostgreSQL 15 manual, and natural
  questions an engineer would type, which share few words with the passage that answers them (the 45 of
  benchmarks/data/postgres_questions.jsonl, written by hand for the answer sets). The corpus is the 78
  pages those questions come from and 250 other pages of the manual (seed 14). Graded: 2 for a passage of
  the question's page that holds one of its gold strings, 1 for the passages right before and after one.
All write qrels/train.tsv (the split `ragcli eval retrieval --split train` reads).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

SHARED = Path("/work/shared/eval")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def write_beir(out: Path, corpus: list[dict[str, str]], queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w") as handle:
        for doc in corpus:
            handle.write(json.dumps(doc) + "\n")
    with (out / "queries.jsonl").open("w") as handle:
        for qid, text in queries.items():
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (out / "qrels" / "train.tsv").open("w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in qrels.items():
            for doc_id, grade in docs.items():
                handle.write(f"{qid}\t{doc_id}\t{grade}\n")
    print(f"{out}: {len(corpus)} documents, {len(queries)} queries, {sum(map(len, qrels.values()))} judgements")


def scifact_subsample(source: Path, out: Path, size: int, seed: int, keep: int | None = None) -> None:
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").open()]
    rows = [line.rstrip("\n").split("\t") for line in (source / "qrels" / "train.tsv").open()][1:]
    qrels: dict[str, dict[str, int]] = {}
    for qid, doc_id, score in rows:
        qrels.setdefault(qid, {})[doc_id] = int(score)
    judged = {doc_id for docs in qrels.values() for doc_id in docs}
    rest = [doc for doc in corpus if doc["_id"] not in judged]
    random.Random(seed).shuffle(rest)
    kept = [doc for doc in corpus if doc["_id"] in judged] + rest[: max(0, size - len(judged))]
    if keep is not None:
        from ragcli.evaluation.beir import corpus_file_name

        kept = sorted(kept, key=lambda d: corpus_file_name(d["_id"]))[:keep]
        ids = {d["_id"] for d in kept}
        qrels = {q: docs for q, docs in qrels.items() if set(docs) <= ids}
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (source / "queries.jsonl").open()}
    corpus_out = [{"_id": d["_id"], "title": d["title"], "text": d["text"]} for d in kept]
    write_beir(out, corpus_out, {q: queries[q] for q in qrels if q in queries}, qrels)


def squad_graded(source: Path, out: Path) -> None:
    data = json.loads(source.read_text())["data"]
    corpus: list[dict[str, str]] = []
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for a, article in enumerate(data):
        title = article["title"].replace("_", " ")
        paragraphs = [(f"a{a}p{p}", para) for p, para in enumerate(article["paragraphs"])]
        for doc_id, para in paragraphs:
            corpus.append({"_id": doc_id, "title": title, "text": para["context"]})
        for doc_id, para in paragraphs:
            for qa in para["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                answers = {ans["text"] for ans in qa["answers"] if len(ans["text"]) >= 4}
                judged = {doc_id: 2}
                for other_id, other in paragraphs:
                    if other_id != doc_id and any(ans in other["context"] for ans in answers):
                        judged[other_id] = 1
                queries[qa["id"]] = qa["question"]
                qrels[qa["id"]] = judged
    write_beir(out, corpus, queries, qrels)


PASSAGE_MIN_WORDS = 40
PASSAGE_MAX_WORDS = 150


def postgres_passages(html: Path, out: Path, distractors: int, seed: int) -> None:
    from build_answer_devsets import POSTGRES_PAGES, POSTGRES_QUESTIONS

    from ragcli.loaders.html import HtmlLoader

    answering = sorted({path for glob in POSTGRES_PAGES for path in html.glob(glob)})
    others = sorted(set(html.glob("*.html")) - set(answering))
    random.Random(seed).shuffle(others)
    corpus: list[dict[str, str]] = []
    by_page: dict[str, list[dict[str, str]]] = {}
    for path in answering + others[:distractors]:
        document = HtmlLoader().load(path, path.read_bytes())
        for n, text in enumerate(_passages(document.text)):
            doc = {"_id": f"{path.stem}#{n}", "title": document.title, "text": text}
            corpus.append(doc)
            by_page.setdefault(path.name, []).append(doc)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    rows = [json.loads(line) for line in POSTGRES_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows):
        passages = by_page.get(row["source"], [])
        golds = [" ".join(answer.lower().split()) for answer in row["answers"]]
        hits = [n for n, doc in enumerate(passages) if any(g in " ".join(doc["text"].lower().split()) for g in golds)]
        if not hits:
            continue
        judged = {passages[n]["_id"]: 2 for n in hits}
        for n in hits:
            for near in (n - 1, n + 1):
                if 0 <= near < len(passages):
                    judged.setdefault(passages[near]["_id"], 1)
        queries[f"pg{i:03d}"] = row["question"]
        qrels[f"pg{i:03d}"] = judged
    write_beir(out, corpus, queries, qrels)


def _passages(text: str) -> list[str]:
    """Paragraphs joined in order into passages of PASSAGE_MIN_WORDS to PASSAGE_MAX_WORDS words (a longer
    paragraph stays whole); code fences are dropped, as a web page's passage is prose."""
    prose = re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.M | re.S)
    passages: list[str] = []
    current: list[str] = []
    for paragraph in (" ".join(p.split()) for p in prose.split("\n\n")):
        if not paragraph:
            continue
        if current and len(" ".join([*current, paragraph]).split()) > PASSAGE_MAX_WORDS:
            passages.append(" ".join(current))
            current = []
        current.append(paragraph)
        if len(" ".join(current).split()) >= PASSAGE_MIN_WORDS:
            passages.append(" ".join(current))
            current = []
    if current:
        passages.append(" ".join(current))
    return passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/devsets"))
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--scifact-size", type=int, default=1500)
    parser.add_argument("--scifact-keep", type=int)
    args = parser.parse_args()
    if not args.shared.is_dir():
        raise SystemExit(f"{args.shared} is missing: these sets are built from ../shared/eval")
    scifact_subsample(args.shared / "scifact", args.out / "scifact-1500", args.scifact_size, seed=14, keep=args.scifact_keep)
    squad_graded(args.shared / "squad-v2-part" / "dev-v2.0-part.json", args.out / "squad-graded")
    postgres_passages(
        args.shared.parent / "corpora/postgresql-15-docs/html", args.out / "postgres-passages", 250, seed=14
    )


if __name__ == "__main__":
    main()
