"""Shared plumbing for the BERT-style ONNX models (embedder and cross-encoder): finding the files,
opening an onnxruntime session, a tokenizer that pads per batch, and batch padding itself.

`config_key` ("embedding" or "rerank") only shapes the error hints, so they name the setting to fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


def resolve_model_dir(
    model: str, model_path: str | None, bundled: Mapping[str, str], config_key: str, default: str
) -> Path:
    """`<config_key>.model_path` when set, else the bundled folder registered for `<config_key>.model`."""
    from ragcli.models_path import bundled_model_dir

    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ModelError(
                f"Model folder {path} ({config_key}.model_path) does not exist.",
                hint=f"Set {config_key}.model_path to a folder with model.onnx and tokenizer.json.",
            )
        return path
    folder = bundled.get(model)
    if folder is None:
        raise ModelError(
            f"No bundled ONNX model is named {model!r} ({config_key}.model).",
            hint=f'Set {config_key}.model_path to the model\'s folder, or use model = "{default}".',
        )
    return bundled_model_dir(folder)


def find_model_file(model_dir: Path, config_key: str) -> Path:
    for candidate in (model_dir / "model.onnx", model_dir / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"No model.onnx in {model_dir}.",
        hint=f"Point {config_key}.model_path at a model exported to ONNX (model.onnx + tokenizer.json).",
    )


def load_session(model_file: Path, threads: int, config_key: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT prints initializer/provider warnings straight to the console; errors still raise.
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own untyped errors for corrupt or incompatible files
        raise ModelError(
            f"Cannot load ONNX model {model_file}: {exc}",
            hint=f"Reinstall the model package, or check {config_key}.model_path.",
        ) from exc


def load_tokenizer(model_dir: Path, max_tokens: int | None, *, pairs: bool = False) -> Any:
    """A tokenizer without padding (`pad` pads per batch: the bundled files pad everything to 512,
    which is ten times slower) and truncating to `max_tokens`; for pairs only the second text is cut."""
    from tokenizers import Tokenizer

    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"No tokenizer.json in {model_dir}.", hint="The model folder is incomplete.")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for malformed files
        raise ModelError(f"Cannot read {path}: {exc}") from exc
    tok.no_padding()
    if max_tokens is None:
        tok.no_truncation()
    elif pairs:
        tok.enable_truncation(max_length=max_tokens, strategy="only_second")
    else:
        tok.enable_truncation(max_length=max_tokens)
    return tok


def pad_id(tokenizer: Any) -> int:
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


def clamp_max_tokens(requested: int, model_dir: Path, config_key: str) -> int:
    limit = model_max_length(model_dir)
    if limit is not None and requested > limit:
        # Position embeddings end at the model's limit; a longer input would crash the graph.
        logger.warning(
            "%s.max_tokens=%d exceeds the model's %d; using %d", config_key, requested, limit, limit
        )
        return limit
    return requested


def model_max_length(model_dir: Path) -> int | None:
    for name, key in (
        ("config.json", "max_position_embeddings"),
        ("vectrix_config.json", "max_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        value = read_json(model_dir / name).get(key)
        # tokenizer_config uses a huge sentinel for "no limit".
        if isinstance(value, int) and 0 < value < 100_000:
            return value
    return None


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pad(encodings: Sequence[Any], pad_token_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    for row, enc in enumerate(encodings):
        n = len(enc.ids)
        ids[row, :n] = enc.ids
        mask[row, :n] = 1
        types[row, :n] = enc.type_ids
    return ids, mask, types
