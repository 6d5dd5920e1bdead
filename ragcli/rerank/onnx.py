"""The default reranker: a BERT-style cross-encoder run with onnxruntime, tokenised with `tokenizers`.

Default model: the bundled ms-marco-MiniLM-L-12-v2 (int8). Any folder holding `model.onnx` (or
`onnx/model.onnx`) and `tokenizer.json` of a sequence-classification model works through
`rerank.model_path`. Scores are the model's raw relevance logits: higher is better, no fixed range.

Cost: the answer gate's 8 pairs (~410 tokens) take ~40 ms on 2 cores; a long pair costs more per token
(attention grows with the square of its length). Each pair is cut to `rerank.max_tokens` (the passage is
shortened, never the question), which bounds that cost.

Pairs are scored one per run by default (`rerank.batch_size = 1`), the runs spread over `rerank.threads`
workers (one per core), each run on one thread. The bundled model is dynamically quantised: each layer's
int8 scale is computed over the whole batch, so in a batch a pair's score moved with its batch-mates and
their padding (by 0.05–0.1 on SciFact abstracts, up to ~0.8 on odd inputs, against logits spanning about
−11 to +9); alone, a pair always gets the same score. And it is cheaper: the answer gate's 8 pairs of
~50 tokens took 74 ms wall and 126 CPU-ms as one batch on a two-thread session (padding to the longest,
and threads waiting for each other on small matrices), 40 ms and 73 CPU-ms as single-pair runs on two
one-thread workers (docs/benchmarks.md). With a larger `batch_size`, pairs are sorted by token length
before batching so each batch pads to a similar length; scores are always put back in the input order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcli.errors import ModelError
from ragcli.models_path import RERANKER_EN
from ragcli.onnx_models import (
    ParallelRuns,
    clamp_max_tokens,
    find_model_file,
    load_session,
    load_tokenizer,
    pad,
    pad_id,
)
from ragcli.onnx_models import resolve_model_dir as shared_resolve_model_dir

if TYPE_CHECKING:
    from ragcli.config import RerankConfig

logger = logging.getLogger(__name__)

BUNDLED_RERANK_MODELS = {
    "ms-marco-MiniLM-L-12-v2": RERANKER_EN,
    "cross-encoder/ms-marco-MiniLM-L-12-v2": RERANKER_EN,
}


class OnnxCrossEncoder:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str,
        max_tokens: int = 256,
        batch_size: int = 1,
        threads: int = 0,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.name = name
        self.batch_size = batch_size
        self._runs = ParallelRuns(threads)
        self.workers = self._runs.workers
        self._session = load_session(find_model_file(self.model_dir, "rerank"), 1, "rerank")
        self._input_names = {i.name for i in self._session.get_inputs()}
        self.max_tokens = clamp_max_tokens(max_tokens, self.model_dir, "rerank")
        self._tokenizer = load_tokenizer(self.model_dir, self.max_tokens, pairs=True)
        self._query_tokenizer = load_tokenizer(self.model_dir, None)
        self._pad_id = pad_id(self._tokenizer)
        # Counters for benchmarks and `--stats`; a lock because a server may rerank from several threads.
        self._lock = threading.Lock()
        self.calls = 0
        self.pairs_scored = 0
        self.tokens_processed = 0
        self.batches_run = 0

    @classmethod
    def from_config(cls, config: RerankConfig) -> OnnxCrossEncoder:
        return cls(
            resolve_model_dir(config.model, config.model_path),
            name=config.model,
            max_tokens=config.max_tokens,
            batch_size=config.batch_size,
            threads=config.threads,
        )

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        encodings = self._encode_pairs(query, passages)
        scores = self._runs.fill(
            np.zeros(len(encodings), dtype=np.float32),
            _length_sorted_batches(encodings, self.batch_size),
            lambda rows: self._run_batch([encodings[i] for i in rows]),
        )
        with self._lock:
            self.calls += 1
            self.pairs_scored += len(encodings)
            self.tokens_processed += sum(len(e.ids) for e in encodings)
        return [float(s) for s in scores]

    def reset_counters(self) -> None:
        with self._lock:
            self.calls = self.pairs_scored = self.tokens_processed = self.batches_run = 0

    def _encode_pairs(self, query: str, passages: Sequence[str]) -> list[Any]:
        query = self._cap_query(query)
        return list(self._tokenizer.encode_batch([(query, passage) for passage in passages]))

    def _cap_query(self, query: str) -> str:
        """Shorten a question that would leave the passage too little room.

        Truncation only ever shortens the passage (the question is what the score is about), so a
        question longer than the whole budget would make the tokenizer fail; it keeps half instead.
        """
        limit = self.max_tokens // 2
        encoding = self._query_tokenizer.encode(query, add_special_tokens=False)
        if len(encoding.ids) <= limit:
            return query
        logger.debug("rerank: question of %d tokens cut to %d", len(encoding.ids), limit)
        return query[: encoding.offsets[limit - 1][1]]

    def _run_batch(self, encodings: list[Any]) -> np.ndarray:
        ids, mask, types = pad(encodings, self._pad_id)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        logits = self._session.run(None, {k: v for k, v in feeds.items() if k in self._input_names})[0]
        with self._lock:
            self.batches_run += 1
        return relevance_from_logits(np.asarray(logits, dtype=np.float32))


def resolve_model_dir(model: str, model_path: str | None) -> Path:
    """The folder for `rerank.model` / `rerank.model_path`; the bundled cross-encoder when no path is set."""
    return shared_resolve_model_dir(
        model, model_path, BUNDLED_RERANK_MODELS, "rerank", "ms-marco-MiniLM-L-12-v2"
    )


def relevance_from_logits(logits: np.ndarray) -> np.ndarray:
    """One score per pair from a cross-encoder's logits, (batch,), (batch, 1) or (batch, 2)."""
    if logits.ndim == 1:
        return logits
    if logits.shape[-1] == 1:
        return logits[:, 0]
    if logits.shape[-1] == 2:
        # Two-class heads ([irrelevant, relevant]): the log-odds of "relevant" keeps one score per pair.
        return logits[:, 1] - logits[:, 0]
    raise ModelError(
        f"The rerank model returns {logits.shape[-1]} scores per pair; a cross-encoder returns 1 (or 2).",
        hint="Point rerank.model_path at a cross-encoder (sequence classification) model.",
    )


def _length_sorted_batches(encodings: Sequence[Any], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
