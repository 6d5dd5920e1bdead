"""Our sentence splitter and stemmers against well-kept libraries: fidelity, speed, weight.

    python benchmarks/text_tools_compare.py [--squad ../shared/eval/squad-v2-part/dev-v2.0-part.json]

Contenders, each measured only if installed (none is a dependency of ragcli):
- sentence splitting: ragcli.retrieval.sentences (ours), pysbd (rule-based, the "Golden Rules"),
  blingfire (Microsoft's finite-state tokenizer, a C++ library in the wheel);
- stemming: the two suffix strippers ragcli had until 2026-12-03 (one for answers, one for context
  compression; copied below), PyStemmer (Snowball English in C, what ragcli.retrieval.stemming uses now),
  snowballstemmer (the same rules in Python; it runs PyStemmer when that is installed).

Fidelity of splitting: cases in the style of pysbd's English Golden Rules, written for this script
(abbreviations, initials, numbers, money, URLs, e-mail addresses, quotes, parentheses, "?!", wrapped
lines); a case counts when the splitter returns exactly the expected sentences. Fidelity of stemming:
word families whose forms should meet (recall over pairs) and look-alikes that should not (kept
apart). Speed: every paragraph of the SQuAD part, split or stemmed 3 times, median.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import itertools
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

SQUAD = Path(__file__).resolve().parents[2] / "shared/eval/squad-v2-part/dev-v2.0-part.json"

SPLIT_CASES: list[tuple[str, list[str]]] = [
    ("Hello World. My name is Jonas.", ["Hello World.", "My name is Jonas."]),
    ("What is your name? My name is Jonas.", ["What is your name?", "My name is Jonas."]),
    ("There it is! I found it.", ["There it is!", "I found it."]),
    ("My name is Jonas E. Smith.", ["My name is Jonas E. Smith."]),
    ("Please turn to p. 55.", ["Please turn to p. 55."]),
    ("Were Jane and co. at the party?", ["Were Jane and co. at the party?"]),
    ("They closed the deal with Pitt, Briggs & Co. at noon.", ["They closed the deal with Pitt, Briggs & Co. at noon."]),
    ("Let's ask Jane and co. They should know.", ["Let's ask Jane and co.", "They should know."]),
    ("I can see Mt. Fuji from here.", ["I can see Mt. Fuji from here."]),
    ("St. Michael's Church is on 5th st. near the light.", ["St. Michael's Church is on 5th st. near the light."]),
    ("That is JFK Jr.'s book.", ["That is JFK Jr.'s book."]),
    ("I visited the U.S.A. last year.", ["I visited the U.S.A. last year."]),
    ("I live in the E.U. How about you?", ["I live in the E.U.", "How about you?"]),
    ("I work for the U.S. Government in Virginia.", ["I work for the U.S. Government in Virginia."]),
    ("I have lived in the U.S. for 20 years.", ["I have lived in the U.S. for 20 years."]),
    ("She has $100.00 in her bag.", ["She has $100.00 in her bag."]),
    ("She has $100.00. It is in her bag.", ["She has $100.00.", "It is in her bag."]),
    (
        "He teaches science (He previously worked for 5 years as an engineer.) at the local University.",
        ["He teaches science (He previously worked for 5 years as an engineer.) at the local University."],
    ),
    ("Her email is Jane.Doe@example.com. I sent her an email.", ["Her email is Jane.Doe@example.com.", "I sent her an email."]),
    (
        "The site is: https://www.example.com/new-site/awesome_content.html. Please check it out.",
        ["The site is: https://www.example.com/new-site/awesome_content.html.", "Please check it out."],
    ),
    ('She turned to him, "This is great." she said.', ['She turned to him, "This is great." she said.']),
    (
        'She turned to him, "This is great." She held the book out to show him.',
        ['She turned to him, "This is great."', "She held the book out to show him."],
    ),
    ("Hello!! Long time no see.", ["Hello!!", "Long time no see."]),
    ("Hello?? Who is there?", ["Hello??", "Who is there?"]),
    ("Hello!? Is that you?", ["Hello!?", "Is that you?"]),
    ("The temperature was 3.5 degrees. It rose to 4.2 later.", ["The temperature was 3.5 degrees.", "It rose to 4.2 later."]),
    ("Version 3.2.0 was released. It fixed bugs.", ["Version 3.2.0 was released.", "It fixed bugs."]),
    ("See Fig. 3 for details.", ["See Fig. 3 for details."]),
    ("Prof. Jones and Dr. Lee met at 3 p.m. yesterday.", ["Prof. Jones and Dr. Lee met at 3 p.m. yesterday."]),
    ("The vote was 5 vs. 4. The motion passed.", ["The vote was 5 vs. 4.", "The motion passed."]),
    ("This is a sentence\ncut off in the middle by a line break.", ["This is a sentence\ncut off in the middle by a line break."]),
    ("Call `foo.bar()` first. It returns 3.", ["Call `foo.bar()` first.", "It returns 3."]),
    (
        "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who gave their name "
        "to Normandy, a region in France. They were descended from Norse raiders.",
        [
            "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who gave their "
            "name to Normandy, a region in France.",
            "They were descended from Norse raiders.",
        ],
    ),
    ("He left at 5 a.m. The sun was not up yet.", ["He left at 5 a.m.", "The sun was not up yet."]),
    ("I wonder… Is it true? Yes.", ["I wonder…", "Is it true?", "Yes."]),
    ("It cost approx. 300 EUR. We paid it.", ["It cost approx. 300 EUR.", "We paid it."]),
    ("The result (see Sec. 4.2) holds. It is proven.", ["The result (see Sec. 4.2) holds.", "It is proven."]),
    ("Mix 2 tbsp. of oil with the flour.", ["Mix 2 tbsp. of oil with the flour."]),
    ("Rust 1.85 was released in Feb. 2025. It added async closures.", ["Rust 1.85 was released in Feb. 2025.", "It added async closures."]),
    ("“Stop,” he said. “Now.”", ["“Stop,” he said.", "“Now.”"]),
]  # fmt: skip

# Forms that should meet, and look-alikes that should not.
STEM_FAMILIES = [
    "run runs running", "owner owners", "variable variables", "borrow borrows borrowed borrowing",
    "compile compiles compiled compiling", "study studies studied studying", "city cities",
    "connect connects connected connecting", "generate generates generated generating",
    "index indexes indexed", "thread threads threaded", "argue argues argued arguing",
    "configure configures configured configuring", "install installs installed installing",
    "query queries queried", "match matches matched matching", "box boxes", "stop stops stopped stopping",
    "refer refers referred referring", "connection connections", "installation installations",
    "allocate allocated allocation", "iterate iterator iteration iterating", "mutable mutability",
    "dependency dependencies depend", "happy happily", "decide decided decision",
]  # fmt: skip
STEM_APART = [
    ("universe", "university"), ("general", "generous"), ("new", "news"), ("organ", "organization"),
    ("policy", "police"), ("arm", "army"), ("past", "pasta"), ("wind", "window"), ("sing", "single"),
    ("item", "iterate"), ("state", "statement"), ("port", "portable"), ("car", "care"), ("cover", "covert"),
    ("product", "production"), ("process", "procession"), ("execute", "executive"), ("part", "party"),
]  # fmt: skip


def _ours_split(text: str) -> list[str]:
    from ragcli.retrieval.sentences import split_sentences

    return [s.strip() for s in split_sentences(text)]


def splitters() -> dict[str, Callable[[str], list[str]]]:
    found: dict[str, Callable[[str], list[str]]] = {"ours": _ours_split}
    if importlib.util.find_spec("pysbd"):
        import pysbd

        segmenter = pysbd.Segmenter(language="en", clean=False)
        found["pysbd"] = lambda text: [s.strip() for s in segmenter.segment(text) if s.strip()]
    if importlib.util.find_spec("blingfire"):
        import blingfire

        found["blingfire"] = lambda text: [
            s.strip() for s in blingfire.text_to_sentences(text).split("\n") if s.strip()
        ]
    return found


def stemmers() -> dict[str, Callable[[str], str]]:
    found: dict[str, Callable[[str], str]] = {
        "ours before (answers)": _suffix_stripper,
        "ours before (compression)": _four_suffixes,
    }
    if importlib.util.find_spec("Stemmer"):
        import Stemmer

        found["PyStemmer"] = Stemmer.Stemmer("english").stemWord
    if importlib.util.find_spec("snowballstemmer"):
        import snowballstemmer

        found["snowballstemmer"] = snowballstemmer.stemmer("english").stemWord
    return found


def _suffix_stripper(word: str) -> str:
    """ragcli.generation.extractive.stem until 2026-12-03."""
    if word.isdigit() or len(word) <= 3:
        return word
    word = word.removesuffix("'s")
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return _undouble(word[: -len(suffix)] + replacement)
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 4:
        word = word[:-1]
    for suffix in ("ingly", "edly", "ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = _undouble(word[: -len(suffix)])
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _undouble(word: str) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        return word[:-1]
    return word


def _four_suffixes(word: str) -> str:
    """ragcli.retrieval.compress._stem until 2026-12-03."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def _normalise(sentence: str) -> str:
    return " ".join(sentence.split())


def split_fidelity(split: Callable[[str], list[str]]) -> tuple[int, list[str]]:
    right, wrong = 0, []
    for text, expected in SPLIT_CASES:
        got = [_normalise(s) for s in split(text)]
        if got == [_normalise(s) for s in expected]:
            right += 1
        else:
            wrong.append(text[:50])
    return right, wrong


def stem_fidelity(stem: Callable[[str], str]) -> tuple[float, float]:
    pairs = [pair for family in STEM_FAMILIES for pair in itertools.combinations(family.split(), 2)]
    met = sum(stem(a) == stem(b) for a, b in pairs) / len(pairs)
    apart = sum(stem(a) != stem(b) for a, b in STEM_APART) / len(STEM_APART)
    return met, apart


def _split_all(split: Callable[[str], list[str]], texts: list[str]) -> None:
    for text in texts:
        split(text)


def _stem_all(stem: Callable[[str], str], words: list[str]) -> None:
    for word in words:
        stem(word)


def _median_seconds(work: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--squad", default=str(SQUAD))
    args = parser.parse_args()
    data = json.loads(Path(args.squad).read_text(encoding="utf-8"))["data"]
    paragraphs = [p["context"] for article in data for p in article["paragraphs"]]
    words = [w for text in paragraphs for w in re.findall(r"[a-z]+", text.lower())]
    chars = sum(len(p) for p in paragraphs)
    result: dict[str, dict[str, object]] = {}
    for name, split in splitters().items():
        right, wrong = split_fidelity(split)
        seconds = _median_seconds(functools.partial(_split_all, split, paragraphs))
        result[f"split: {name}"] = {
            "cases_right": f"{right}/{len(SPLIT_CASES)}",
            "wrong": wrong,
            "mb_per_s": round(chars / seconds / 1e6, 2),
        }
    for name, stem in stemmers().items():
        met, apart = stem_fidelity(stem)
        seconds = _median_seconds(functools.partial(_stem_all, stem, words))
        result[f"stem: {name}"] = {
            "families_met": round(met, 3),
            "look_alikes_apart": round(apart, 3),
            "million_words_per_s": round(len(words) / seconds / 1e6, 2),
        }
    print(
        json.dumps(
            {"paragraphs": len(paragraphs), "words": len(words), "results": result},
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
