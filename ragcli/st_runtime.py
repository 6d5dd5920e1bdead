"""Setting up sentence-transformers (and torch) for offline, quiet use; shared by the embedder and the
cross-encoder backends. Call it before the first sentence_transformers import."""

from __future__ import annotations

import os


def prepare_offline_runtime(threads: int) -> None:
    # huggingface_hub reads these once, at its first import: never download, never draw progress bars.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        pass
    else:
        # transformers draws a "Loading weights" progress bar on stderr, which garbles the CLI's output.
        hf_logging.disable_progress_bar()
    if threads > 0:
        import torch

        # torch's thread pool is process-wide: the setting applies to every torch model in the process.
        torch.set_num_threads(threads)
