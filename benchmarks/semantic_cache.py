"""Semantic cache: hit rate on paraphrases and false-hit rate on near misses, per threshold.

    .venv/bin/python benchmarks/semantic_cache.py [QUERIES_JSONL] [--limit 400]

Pairs are built from SciFact claims (../shared/eval/scifact/queries.jsonl by default):
- paraphrases: the claim asked as a question ("Is it true that …?") and with lower case and no
  final full stop — the same question, so a hit is right;
- near misses: the claim negated, the claim with its first number changed, and the most similar other
  claim in the set — different questions, so a hit is wrong.
For thresholds 0.90 … 0.99 it reports the rates with the guards on (what ragcli does) and off (the bare
similarity test), so the guards' share of the protection is visible.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ragcli.cache.guards import semantic_match_refused  # noqa: E402

AUX = re.compile(r"\b(is|are|was|were|can|does|do|did|has|have|will|may|could|should)\b", re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def as_question(claim: str) -> str:
    body = claim.rstrip(".")
    return f"Is it true that {body[0].lower() + body[1:]}?"


def lowered(claim: str) -> str:
    return claim.rstrip(".").lower()


def negated(claim: str) -> str:
    match = AUX.search(claim)
    if match:
        return claim[: match.end()] + " not" + claim[match.end() :]
    return "It is not true that " + claim[0].lower() + claim[1:]


def renumbered(claim: str) -> str | None:
    match = NUMBER.search(claim)
    if not match:
        return None
    value = match.group(0)
    changed = str(int(value) + 1) if value.isdigit() else str(round(float(value) * 2, 3))
    return claim[: match.start()] + changed + claim[match.end() :]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queries", nargs="?", default=str(REPO.parent / "shared/eval/scifact/queries.jsonl"))
    parser.add_argument("--limit", type=int, default=400)
    args = parser.parse_args()
    path = Path(args.queries)
    if not path.exists():
        sys.exit(f"{path} is not there: this benchmark needs ../shared")
    claims = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    claims = claims[: args.limit]

    import numpy as np

    from ragcli.config import EmbeddingConfig
    from ragcli.embedding import get_embedder

    embedder = get_embedder(EmbeddingConfig())  # type: ignore[call-arg]

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([embedder.embed_query(t) for t in texts])  # one by one, as questions arrive

    base = embed(claims)
    pairs: dict[str, list[tuple[str, str, float]]] = {"paraphrase": [], "negation": [], "number": [], "neighbour": []}
    for kind, make in (("paraphrase", as_question), ("paraphrase", lowered), ("negation", negated)):
        variants = [make(c) for c in claims]
        sims = np.einsum("ij,ij->i", base, embed(variants))
        pairs[kind].extend(zip(claims, variants, sims.tolist(), strict=True))
    numbered = [(c, renumbered(c)) for c in claims]
    numbered = [(c, v) for c, v in numbered if v]
    if numbered:
        sims = np.einsum("ij,ij->i", embed([c for c, _ in numbered]), embed([v for _, v in numbered]))
        pairs["number"].extend((c, v, s) for (c, v), s in zip(numbered, sims.tolist(), strict=True))
    gram = base @ base.T
    np.fill_diagonal(gram, -1)
    for i, j in enumerate(gram.argmax(axis=1)):
        if lowered(claims[i]) == lowered(claims[int(j)]):
            continue  # the same claim twice in the data set: a hit there is right, not a near miss
        pairs["neighbour"].append((claims[i], claims[int(j)], float(gram[i, j])))

    rows = []
    for threshold in (0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99):
        row: dict[str, object] = {"threshold": threshold}
        for kind, items in pairs.items():
            bare = [s >= threshold for _, _, s in items]
            guarded = [s >= threshold and semantic_match_refused(a, b) is None for a, b, s in items]
            row[f"{kind}_hit_bare"] = round(sum(bare) / len(items), 4)
            row[f"{kind}_hit_guarded"] = round(sum(guarded) / len(items), 4)
        rows.append(row)
    summary = {kind: len(items) for kind, items in pairs.items()}
    default_hits = [
        (round(sim, 3), a, b)
        for a, b, sim in pairs["neighbour"]
        if sim >= 0.97 and semantic_match_refused(a, b) is None
    ]
    print(json.dumps({"pairs": summary, "rows": rows, "neighbour_hits_at_0.97": default_hits}, indent=1))


if __name__ == "__main__":
    main()
