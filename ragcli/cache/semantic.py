"""A flat (exact) vector index of cached questions in one append-only file.

Why flat: an HNSW graph (usearch) took 516 s to build for 100,000 vectors on this 2-core machine, while a
single matrix-vector product over 100,000 × 384 float32 rows memory-mapped from disk takes tens of
milliseconds, is exact, and needs no rebuild. Records are fixed-size (key, vector) and appended under an
exclusive flock, so concurrent writers never interleave; a torn last record from a crash is ignored.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class FlatVectorFile:
    def __init__(self, path: Path, dimension: int) -> None:
        self.path = path
        self.dimension = dimension

    def _dtype(self) -> np.dtype:
        import numpy as np

        return np.dtype([("key", "<i8"), ("vec", "<f4", (self.dimension,))])

    def append(self, key: int, vector: np.ndarray) -> None:
        import numpy as np

        record = np.zeros(1, dtype=self._dtype())
        record["key"] = key
        record["vec"] = vector.astype("float32")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            torn = size % self._dtype().itemsize
            if torn:  # a crash left half a record: cut it so that every record stays aligned
                os.ftruncate(fd, size - torn)
            os.write(fd, record.tobytes())
        finally:
            os.close(fd)

    def search(self, vector: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        """(key, cosine similarity) of the k most similar vectors; vectors are unit length."""
        import numpy as np

        if not self.path.exists():
            return []
        itemsize = self._dtype().itemsize
        count = self.path.stat().st_size // itemsize
        if count == 0:
            return []
        records = np.memmap(self.path, dtype=self._dtype(), mode="r", shape=(count,))
        scores = records["vec"] @ vector.astype("float32")
        top = np.argsort(-scores)[:k] if count > k else np.argsort(-scores)
        return [(int(records["key"][i]), float(scores[i])) for i in top]

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        return self.path.stat().st_size // self._dtype().itemsize

    def rewrite(self, keep: set[int]) -> None:
        """Drop the vectors of entries that expired or were evicted."""
        import numpy as np

        if not self.path.exists():
            return
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            count = os.fstat(fd).st_size // self._dtype().itemsize
            records = np.fromfile(self.path, dtype=self._dtype(), count=count)
            kept = records[np.isin(records["key"], np.fromiter(keep, dtype="<i8", count=len(keep)))]
            tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
            kept.tofile(tmp)
            os.replace(tmp, self.path)
        finally:
            os.close(fd)
