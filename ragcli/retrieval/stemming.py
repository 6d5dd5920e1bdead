"""One stemmer for every place that asks whether a text holds a question's words.

Snowball English through PyStemmer (C): answers, the answer gate, the polarity checks, the semantic
cache's guard, the LLM citation check and context compression. It replaced two suffix strippers of ours
after a comparison of fidelity, speed and answers (docs/benchmarks.md, "Sentence splitter, stemmer and
stopwords against libraries"). Keyword retrieval does not use it: LanceDB's full-text index stems with
tantivy's own Snowball.
"""

from __future__ import annotations

import functools
from typing import Any


def stem(word: str) -> str:
    """The Snowball stem of a lowercased word: its forms meet ("iterator", "iterating" → "iter")."""
    return _snowball().stemWord(word.removesuffix("'s"))


@functools.cache
def _snowball() -> Any:
    import Stemmer  # loaded with the first question, not with the CLI

    return Stemmer.Stemmer("english")
