"""Optional reranker backend: any local sentence-transformers CrossEncoder folder, run with torch.

Needs the `st` extra (`pip install 'ragcli[st]'`) and `rerank.model_path`; it never downloads a model.
Scores are raw logits, as the ONNX backend returns, so a switch of backend keeps the same scale for the
same model. Pairs longer than `rerank.max_tokens` are cut by the model's own tokenizer (longest first).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import ModelError
from ragcli.st_runtime import prepare_offline_runtime

if TYPE_CHECKING:
    from ragcli.config import RerankConfig

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'ragcli[st]'"


class SentenceTransformerCrossEncoder:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str,
        max_tokens: int = 256,
        batch_size: int = 16,
        threads: int = 0,
    ) -> None:
        self.model_dir = _existing_folder(model_dir)
        self.name = name
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._model = _load_cross_encoder(self.model_dir, max_tokens, threads)
        self._lock = threading.Lock()
        self.calls = 0
        self.pairs_scored = 0

    @classmethod
    def from_config(cls, config: RerankConfig) -> SentenceTransformerCrossEncoder:
        if not config.model_path:
            raise ModelError(
                "The sentence-transformers reranker needs a local model folder.",
                hint="Set rerank.model_path to a CrossEncoder folder (config.json, weights, tokenizer).",
            )
        return cls(
            config.model_path,
            name=config.model,
            max_tokens=config.max_tokens,
            batch_size=config.batch_size,
            threads=config.threads,
        )

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        import numpy as np
        import torch

        from ragcli.rerank.onnx import relevance_from_logits

        logits = self._model.predict(
            [(query, passage) for passage in passages],
            batch_size=self.batch_size,
            show_progress_bar=False,
            activation_fn=torch.nn.Identity(),
            convert_to_numpy=True,
        )
        with self._lock:
            self.calls += 1
            self.pairs_scored += len(passages)
        return [float(s) for s in relevance_from_logits(np.asarray(logits, dtype=np.float32))]


def _existing_folder(model_dir: str | Path) -> Path:
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"Rerank model folder {path} does not exist.",
            hint="Set rerank.model_path to a local CrossEncoder folder; ragcli never downloads models.",
        )
    return path


def _load_cross_encoder(model_dir: Path, max_tokens: int, threads: int) -> Any:
    prepare_offline_runtime(threads)
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:
        raise ModelError("The sentence-transformers reranker is not installed.", hint=INSTALL_HINT) from exc
    try:
        return CrossEncoder(str(model_dir), local_files_only=True, max_length=max_tokens, device="cpu")
    except Exception as exc:  # transformers raises OSError, ValueError, … for incomplete or foreign folders
        raise ModelError(
            f"Cannot load a CrossEncoder from {model_dir}: {exc}",
            hint="Point rerank.model_path at a sentence-transformers or Hugging Face cross-encoder folder.",
        ) from exc
