"""Every file under the given folders through its loader (no chunking or embedding): per format, files
read / failed / unsupported and seconds. Run from the repo root:

    python benchmarks/formats_load.py ../shared/corpora/mixed-formats ../shared/corpora/pdfs [--ocr off]

Prints one row per suffix, then each failure and unsupported file with its reason.
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

from ragcli.errors import PermanentError, RagcliError, UnsupportedError
from ragcli.loaders import get_loader
from ragcli.loaders.walk import iter_files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--ocr", default="auto")
    parser.add_argument("--max-mb", type=float, default=100.0)
    args = parser.parse_args()
    stats: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    seconds: dict[str, float] = collections.defaultdict(float)
    notes: list[str] = []
    started_all = time.perf_counter()
    for root in args.roots:
        for path in iter_files(root, ["**/*"], []):
            suffix = path.suffix.lower() or "(none)"
            loader = get_loader(path, args.ocr)
            if loader is None:
                stats[suffix]["unsupported"] += 1
                notes.append(f"unsupported  {path}")
                continue
            started = time.perf_counter()
            try:
                if path.stat().st_size > args.max_mb * 1e6:
                    raise PermanentError("over max_file_mb")
                document = loader.load(path, path.read_bytes())
                stats[suffix]["read"] += 1
                stats[suffix]["attachments"] += len(document.attachments)
                if document.metadata.get("ocr"):
                    stats[suffix]["ocr"] += 1
            except UnsupportedError as exc:
                stats[suffix]["unsupported"] += 1
                notes.append(f"unsupported  {path}: {exc.message}")
            except RagcliError as exc:
                stats[suffix]["failed"] += 1
                notes.append(f"failed       {path}: {exc.message[:160]}")
            except Exception as exc:
                stats[suffix]["CRASH"] += 1
                notes.append(f"CRASH        {path}: {type(exc).__name__}: {exc}")
            seconds[suffix] += time.perf_counter() - started
    print(
        f"{'suffix':10s} {'files':>5s} {'read':>5s} {'failed':>6s} {'unsup':>5s} {'ocr':>4s} {'attach':>6s} {'crash':>5s} {'s':>8s}"
    )
    for suffix in sorted(stats, key=lambda s: -sum(stats[s][k] for k in ("read", "failed", "unsupported"))):
        c = stats[suffix]
        files = c["read"] + c["failed"] + c["unsupported"] + c["CRASH"]
        print(
            f"{suffix:10s} {files:5d} {c['read']:5d} {c['failed']:6d} {c['unsupported']:5d} {c['ocr']:4d} "
            f"{c['attachments']:6d} {c['CRASH']:5d} {seconds[suffix]:8.2f}"
        )
    total = collections.Counter()
    for c in stats.values():
        total.update(c)
    print(
        f"TOTAL read {total['read']} failed {total['failed']} unsupported {total['unsupported']} "
        f"crashes {total['CRASH']} in {time.perf_counter() - started_all:.1f} s"
    )
    print()
    print("\n".join(sorted(notes)))


if __name__ == "__main__":
    main()
