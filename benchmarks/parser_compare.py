"""Hand-written parsers against well-kept libraries, side by side in one run (from the repo root):

    python benchmarks/parser_compare.py --markdown ../shared/corpora/rust-book-md \
        --html ../shared/corpora/postgresql-15-docs/html --rst ../shared/corpora/mixed-formats

Markdown: the regex loader as it is on `main` (read with `git show`) against the markdown-it-py loader
of this tree. HTML: ragcli's extractor against selectolax (lexbor) and jusText. reST: ragcli's loader
against docutils. Per contender: seconds, characters kept, and fidelity counters (markup that leaks
into the text, navigation boilerplate kept, code blocks lost). Numbers are medians of 3 runs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
import types
from collections.abc import Callable
from pathlib import Path

from ragcli.loaders.html import HtmlLoader
from ragcli.loaders.markdown import MarkdownLoader
from ragcli.loaders.rst import RstLoader

_HTML_TAG = re.compile(
    r"</?(?:Listing|span|div|img|a|br|sup|sub|p|table|tr|td|th|pre|em|strong|figure|"
    r"figcaption|details|summary|kbd)\b[^>]*>"
)
_MD_MARKUP = {
    "html tags": _HTML_TAG,
    "heading markers": re.compile(r"^#{1,6} ", re.MULTILINE),
    "quote markers": re.compile(r"^> ?", re.MULTILINE),
    "link syntax": re.compile(r"\]\([^)]*\)|\]\[[^\]]*\]"),
    "emphasis": re.compile(r"\*\*|__"),
}
_RST_MARKUP = {
    "directives": re.compile(r"^\s*\.\. [\w-]+::", re.MULTILINE),
    "roles": re.compile(r":\w+:`"),
    "literal markers": re.compile(r"``"),
    "adornment lines": re.compile(r"^([=\-~^*#+`'\"_.:])\1{3,}\s*$", re.MULTILINE),
}


def timed(runs: int, fn: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main_markdown_loader() -> object:
    source = subprocess.run(
        ["git", "show", "main:ragcli/loaders/markdown.py"], capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("markdown_main")
    exec(compile(source, "main:markdown.py", "exec"), module.__dict__)
    return module.MarkdownLoader()


def count(patterns: dict[str, re.Pattern[str]], text: str) -> dict[str, int]:
    return {name: len(p.findall(text)) for name, p in patterns.items()}


def report(
    name: str, seconds: float, texts: list[str], patterns: dict[str, re.Pattern[str]], extra: str = ""
) -> None:
    totals: dict[str, int] = {}
    for text in texts:
        for key, value in count(patterns, text).items():
            totals[key] = totals.get(key, 0) + value
    chars = sum(len(t) for t in texts)
    print(
        f"  {name:26s} {seconds:7.2f} s  {chars:9d} chars  "
        + "  ".join(f"{k}={v}" for k, v in totals.items())
        + extra
    )


def markdown(root: Path, runs: int) -> None:
    files = sorted(root.rglob("*.md"))
    data = [(p, p.read_bytes()) for p in files]
    print(f"Markdown: {len(files)} files of {root}")
    for name, loader in (
        ("regex loader (main)", main_markdown_loader()),
        ("markdown-it-py loader", MarkdownLoader()),
    ):
        seconds, docs = timed(runs, lambda loader=loader: [loader.load(p, d) for p, d in data])
        texts = [d.text for d in docs]
        sections = sum(len(d.sections) for d in docs)
        report(name, seconds, texts, _MD_MARKUP, f"  sections={sections}")


def _pre_blocks(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", m).strip().split("\n")[0].strip()
        for m in re.findall(r"<pre[^>]*>(.*?)</pre>", html, re.S)
    ]


def html(root: Path, runs: int) -> None:
    import justext
    from selectolax.lexbor import LexborHTMLParser

    files = sorted(root.rglob("*.html"))
    data = [(p, p.read_bytes()) for p in files]
    sources = [d.decode("utf-8", "replace") for _, d in data]
    print(f"HTML: {len(files)} pages of {root}")

    def ours() -> list[str]:
        loader = HtmlLoader()
        return [loader.load(p, d).text for p, d in data]

    def lexbor() -> list[str]:
        texts = []
        for source in sources:
            tree = LexborHTMLParser(source)
            tree.strip_tags(["script", "style", "nav", "head"])
            for node in tree.css(".navheader, .navfooter"):
                node.decompose()
            body = tree.body
            texts.append(body.text(separator="\n") if body is not None else "")
        return texts

    stoplist = justext.get_stoplist("English")

    def jt() -> list[str]:
        return [
            "\n\n".join(p.text for p in justext.justext(d, stoplist) if not p.is_boilerplate) for _, d in data
        ]

    nav = re.compile(r"^(?:Prev|Next|Up|Home)\s*$", re.MULTILINE)
    for name, fn in (("ragcli extractor", ours), ("selectolax/lexbor", lexbor), ("jusText", jt)):
        seconds, texts = timed(runs, fn)
        kept = lost = 0
        for source, text in zip(sources, texts, strict=True):
            for first_line in _pre_blocks(source):
                if first_line:
                    if first_line in text:
                        kept += 1
                    else:
                        lost += 1
        navs = sum(len(nav.findall(t)) for t in texts)
        empty = sum(1 for t in texts if not t.strip())
        print(
            f"  {name:26s} {seconds:7.2f} s  {sum(map(len, texts)):9d} chars  nav lines kept={navs}  "
            f"code blocks kept={kept} lost={lost}  empty pages={empty}"
        )


def rst(root: Path, runs: int) -> None:
    from docutils.core import publish_doctree

    files = sorted(root.rglob("*.rst"))
    data = [(p, p.read_bytes()) for p in files]
    print(f"reST: {len(files)} files of {root}")
    loader = RstLoader()
    seconds, docs = timed(runs, lambda: [loader.load(p, d) for p, d in data])
    report("ragcli loader", seconds, [d.text for d in docs], _RST_MARKUP)
    settings = {"report_level": 5, "halt_level": 5, "file_insertion_enabled": False, "raw_enabled": False}

    def du() -> list[str]:
        texts = []
        for _, d in data:
            texts.append(publish_doctree(d.decode("utf-8", "replace"), settings_overrides=settings).astext())
        return texts

    seconds, texts = timed(runs, du)
    report("docutils", seconds, texts, _RST_MARKUP)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--html", type=Path)
    parser.add_argument("--rst", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.markdown:
        markdown(args.markdown, args.runs)
    if args.html:
        html(args.html, args.runs)
    if args.rst:
        rst(args.rst, args.runs)


if __name__ == "__main__":
    main()
