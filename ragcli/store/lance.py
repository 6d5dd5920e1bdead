"""The LanceDB index: one chunks table plus a small metadata table.

Why it is shaped like this:
- A document is replaced with one `merge_insert` that upserts its new chunks and deletes its old ones in
  the same commit. LanceDB commits are atomic, so a reader (or a crash) sees the old or the new version of
  a document, never a mix and never both.
- The metadata table records the schema version, the embedder's name and dimension, and the last corpus
  generation (store/journal.py) whose full-text and vector indexes were refreshed. An index built with
  another embedder is refused instead of being queried with incomparable vectors.
- Filters are built only from values this module produced (hex ids) or quoted through `sql_literal`;
  user text is never pasted into SQL.

The ANN vector index (IVF partitions, HNSW graph per partition, 8-bit scalar quantisation):
- It is built at the end of the first ingest that leaves the table with `[store] ann_min_rows` rows or
  more; below that, search is exact (a flat scan is fast enough there and needs no upkeep).
- Each later ingest's `optimize` folds the new rows into it (unindexed rows are still searched, by a
  flat scan), so it is not rebuilt as the table grows. It is rebuilt (retrained) when the table has
  grown to ANN_RETRAIN_GROWTH times the rows it was trained on, because partitions trained on a tenth
  of the data no longer split it evenly.
- Its answers are kept exact-like by refining: the index proposes at least ANN_REFINE_CANDIDATES
  candidates (10 × k for a top 10, k for a deeper search) and they are re-ranked by their
  full-precision vectors. A query searches ANN_NPROBES partitions, or a
  third of them (ANN_PROBE_SHARE) when the index has more than 60: with 20 fixed probes, top-10
  agreement with exact search was 0.99–1.00 at 100K rows (24 partitions) but 0.93–0.97 at 300K (73,
  varying with the partitions' training) and 0.93 at 1M (244). Measured by benchmarks/scale.py
  (docs/benchmarks.md).

Old versions: every commit leaves a new table version. After an ingest, superseded versions are
removed, except the newest `[store] keep_versions` (rollback with `checkout`) and those current within
`[store] keep_versions_minutes` (0 by default: keeping the run's own versions for a minute held the
disk at 1.39x the live data right after a re-ingest instead of 1.10x). A reader still on a removed
version does not fail: its read is done again at the newest version (`_read_newest_on_vanish`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.errors import (
    EmbedderMismatchError,
    IndexUnreadableError,
    RagcliError,
    StoreError,
    state_write_error,
)
from ragcli.models import Chunk, Passage

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

logger = logging.getLogger(__name__)
T = TypeVar("T")

META_TABLE = "ragcli_meta"
SCHEMA_VERSION = 2
# How many ids go into one `IN (...)` list; keeps filter strings to a sane length.
_ID_BATCH = 500
# Query-time ANN settings, chosen with benchmarks/scale.py (see the module docstring).
ANN_NPROBES = 20
ANN_PROBE_SHARE = 1 / 3
ANN_REFINE_CANDIDATES = 100
ANN_EF = 64
# Retrain the vector index when the table has grown this many times past the rows it was trained on.
ANN_RETRAIN_GROWTH = 4.0


REINDEX_HINT = "Run `ragcli reindex` to rebuild it from the source files."


def short_error(exc: BaseException) -> str:
    """Lance's message without the Rust source locations it appends."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(", /")[0][:300]


@dataclass(frozen=True)
class EmbedderIdentity:
    name: str
    dimension: int


@dataclass(frozen=True)
class DocState:
    doc_id: str
    source: str
    doc_hash: str
    chunks: int


def sql_literal(value: str) -> str:
    """Quote a string for a LanceDB SQL filter: doubled single quotes, no way out of the literal."""
    if "\x00" in value:
        raise ValueError("NUL byte in filter value")
    return "'" + value.replace("'", "''") + "'"


def _hex_list(ids: Iterable[str]) -> str:
    checked = []
    for value in ids:
        if not value or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"not an id this store produced: {value!r}")
        checked.append(f"'{value}'")
    return ", ".join(checked)


def chunk_schema(dimension: int) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("title", pa.string()),
            pa.field("heading", pa.string()),
            pa.field("page", pa.int32()),
            pa.field("chunk_index", pa.int32()),
            pa.field("char_start", pa.int32()),
            pa.field("char_end", pa.int32()),
            pa.field("token_count", pa.int32()),
            pa.field("chunk_hash", pa.string()),
            pa.field("doc_hash", pa.string()),
            pa.field("doc_type", pa.string()),
            pa.field("mtime", pa.float64()),
            pa.field("ingested_at", pa.float64()),
            pa.field("text", pa.string()),
            # The chunk with its title and heading path: what was embedded, and what keyword search reads.
            pa.field("search_text", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
        ]
    )


# Numbered schema migrations: MIGRATIONS[n] takes an index at version n to n+1. Version 1 is the
# initial layout, created directly; later versions append functions here and never edit old ones.
MIGRATIONS: dict[int, Callable[[LanceStore], None]] = {}


def _add_search_text(store: LanceStore) -> None:
    """1 → 2: keyword search reads `search_text`. Rows written before it existed were embedded from their
    bare text, so that is their search text too; `ragcli reindex` gives them their context."""
    table = store.table
    if "search_text" not in table.schema.names:
        table.add_columns({"search_text": "text"})
    for index in table.list_indices():
        if tuple(index.columns) == ("text",):
            table.drop_index(index.name)
    store.refresh_indexes()


MIGRATIONS[1] = _add_search_text


class LanceStore:
    """Opened with `LanceStore.open(uri, table)`; `ensure_identity` before reading or writing vectors.

    Reads of a local index go through pylance (`lance`) directly: `import lancedb` costs about three
    times as much CPU (its generated namespace REST client alone is half of it), which is most of a
    cold `ragcli ask`. lancedb is imported only to write, and for remote URIs (s3://…)."""

    def __init__(
        self, db: Any, uri: str, table_name: str, storage_options: dict[str, str] | None = None
    ) -> None:
        self._db = db
        # Object-store options (ragcli/store/remote.py); None for a local index.
        self.storage_options = storage_options or None
        self.uri = uri
        self.table_name = table_name
        self._table: Any = None
        self._dataset: Any = None
        self._dataset_version: int | None = None
        self._meta_cache: dict[str, str] | None = None
        self._local = _local_dir(uri)

    # ----- opening -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, uri: str, table_name: str = "chunks", storage_options: dict[str, str] | None = None
    ) -> LanceStore:
        store = cls(None, uri, table_name, storage_options)
        if store._local is None:
            store.db  # noqa: B018  (a remote index: connect now, so a bad URI fails here)
        return store

    @property
    def db(self) -> Any:
        if self._db is None:
            try:
                import lancedb

                self._db = lancedb.connect(self.uri, storage_options=self.storage_options)
            except Exception as exc:
                raise StoreError(
                    f"Cannot open the index at {self.uri}: {exc}",
                    hint="Check [store] uri in the config and that the folder is readable.",
                ) from exc
        return self._db

    def _table_names(self) -> list[str]:
        if self._local is not None:
            if not self._local.is_dir():
                return []
            return sorted(p.name[: -len(".lance")] for p in self._local.glob("*.lance") if p.is_dir())
        result = self.db.list_tables()
        names = getattr(result, "tables", result)
        return list(names)

    def exists(self) -> bool:
        return self.table_name in self._table_names()

    @property
    def table(self) -> Any:
        """The lancedb table, for writing (and reading a remote index)."""
        if self._table is None:
            if not self.exists():
                raise StoreError(
                    f"There is no index at {self.uri} yet.",
                    hint="Run `ragcli ingest PATH` to build it.",
                )
            with self.reading():
                self._table = self.db.open_table(self.table_name)
        return self._table

    @property
    def dataset(self) -> Any:
        """The chunks as a pylance dataset: the writer's current version once this store has written,
        else the version current when it was first read (as a lancedb table would be)."""
        if self._local is None:
            # A remote dataset opened per query would re-read its manifest and its index files from
            # the object store every time (7x the local p50 in benchmarks/object_store.py): keep one
            # per table version.
            version = self.table.version
            if self._dataset is None or self._dataset_version != version:
                self._dataset, self._dataset_version = self.table.to_lance(), version
            return self._dataset
        if self._table is not None:
            return self.table.to_lance()
        if self._dataset is None:
            self._dataset = self._open_dataset(self.table_name)
        return self._dataset

    def _read_newest_on_vanish(self, read: Callable[[Any], T]) -> T:
        """`read(self.dataset)`, once more at the newest version if the version this store was on lost
        files: an ingest's cleanup removes superseded versions (`[store] keep_versions_minutes`), and a
        long-lived reader (`ragcli serve`, MCP) may still be on one. Any other error is raised as is."""
        try:
            return read(self.dataset)
        except Exception as exc:
            if "not found" not in str(exc).lower():  # local "Not found: …", object stores "… not found"
                raise
            logger.info("The index version this reader was on was cleaned up (%s); reading the newest one",
                        short_error(exc))
            self._table = self._dataset = self._dataset_version = self._meta_cache = None
            return read(self.dataset)

    def _open_dataset(self, name: str) -> Any:
        if not self.exists():
            raise StoreError(
                f"There is no index at {self.uri} yet.", hint="Run `ragcli ingest PATH` to build it."
            )
        with self.reading():
            import lance

            assert self._local is not None
            return lance.dataset(str(self._local / f"{name}.lance"))

    # ----- error boundaries ----------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Lance and Arrow errors while reading mean damaged files: IndexUnreadableError (exit 5)."""
        try:
            yield
        except RagcliError:
            raise
        except Exception as exc:
            raise IndexUnreadableError(
                f"The index at {self.uri} cannot be read: {short_error(exc)}", hint=REINDEX_HINT
            ) from exc

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A full or read-only disk is a StateWriteError (exit 7, nothing indexed was lost); any other
        failure to write means damaged files."""
        try:
            yield
        except RagcliError:
            raise
        except Exception as exc:
            mapped = state_write_error(exc, self.uri)
            if mapped is not None:
                raise mapped from exc
            raise IndexUnreadableError(
                f"The index at {self.uri} cannot be written: {short_error(exc)}", hint=REINDEX_HINT
            ) from exc

    # ----- metadata ------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        if self._meta_cache is None:
            if META_TABLE not in self._table_names():
                self._meta_cache = {}
            else:
                with self.reading():
                    if self._local is not None:
                        rows = self._open_dataset(META_TABLE).to_table().to_pylist()
                    else:
                        rows = self.db.open_table(META_TABLE).to_arrow().to_pylist()
                self._meta_cache = {r["key"]: r["value"] for r in rows}
        return dict(self._meta_cache)

    def _write_meta(self, updates: dict[str, str]) -> None:
        import pyarrow as pa

        data = pa.table({"key": list(updates), "value": list(updates.values())})
        with self.writing():
            if META_TABLE not in self._table_names():
                self.db.create_table(META_TABLE, data=data)
            else:
                table = self.db.open_table(META_TABLE)
                table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data)
        self._meta_cache = None

    def identity(self) -> EmbedderIdentity | None:
        meta = self.meta()
        if "embedder_name" not in meta:
            return None
        return EmbedderIdentity(meta["embedder_name"], int(meta["embedder_dim"]))

    def ensure_identity(self, wanted: EmbedderIdentity, *, create: bool) -> None:
        """Create the table for `wanted`, or check that the existing one was built with it."""
        stored = self.identity()
        if stored is not None and stored != wanted:
            raise EmbedderMismatchError(
                f"The index at {self.uri} was built with embedder '{stored.name}' ({stored.dimension}-d), "
                f"but the configuration uses '{wanted.name}' ({wanted.dimension}-d).",
                hint="Run `ragcli reindex` to rebuild the index with the configured embedder, "
                "or set [embedding] back to the model the index was built with.",
            )
        if self.exists():
            self._migrate()
            return
        if not create:
            raise StoreError(
                f"There is no index at {self.uri} yet.", hint="Run `ragcli ingest PATH` to build it."
            )
        with self.writing():
            self.db.create_table(self.table_name, schema=chunk_schema(wanted.dimension))
        self._write_meta(
            {
                "schema_version": str(SCHEMA_VERSION),
                "embedder_name": wanted.name,
                "embedder_dim": str(wanted.dimension),
                "created_at": str(time.time()),
            }
        )

    def _migrate(self) -> None:
        version = int(self.meta().get("schema_version", "1"))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The index at {self.uri} has schema version {version}; this ragcli knows up to "
                f"{SCHEMA_VERSION}.",
                hint="Upgrade ragcli, or run `ragcli reindex` to rebuild the index for this version.",
            )
        while version < SCHEMA_VERSION:
            logger.info("Migrating the index from schema version %d to %d", version, version + 1)
            with self.writing():
                MIGRATIONS[version](self)
            version += 1
            self._write_meta({"schema_version": str(version)})

    # ----- reading -------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """The table version this store reads. Asking the lancedb table instead would turn a local store
        into a writer's, which opens the dataset again for every query (~5 ms each in `ragcli serve`)."""
        with self.reading():
            return int(self.dataset.version)

    def count(self) -> int:
        if not self.exists():
            return 0
        with self.reading():
            return int(self._read_newest_on_vanish(lambda ds: ds.count_rows()))

    def document_states(self) -> dict[str, DocState]:
        if not self.exists():
            return {}
        with self.reading():
            columns = self._read_newest_on_vanish(
                lambda ds: ds.to_table(columns=["doc_id", "source", "doc_hash"]).to_pydict()
            )
        counts: dict[str, int] = {}
        first: dict[str, tuple[str, str]] = {}
        for doc_id, source, doc_hash in zip(
            columns["doc_id"], columns["source"], columns["doc_hash"], strict=True
        ):
            counts[doc_id] = counts.get(doc_id, 0) + 1
            first.setdefault(doc_id, (source, doc_hash))
        return {d: DocState(d, first[d][0], first[d][1], n) for d, n in counts.items()}

    def vectors_by_chunk_hash(self, doc_id: str) -> dict[str, np.ndarray]:
        """The stored vectors of one document, so unchanged chunks of a changed file are not re-embedded."""
        with self.reading():
            rows = (
                self.table.search()
                .where(f"doc_id IN ({_hex_list([doc_id])})")
                .select(["chunk_hash", "vector"])
                .limit(None)
                .to_arrow()
            )
        import numpy as np

        hashes = rows.column("chunk_hash").to_pylist()
        if not hashes:
            return {}
        vectors = np.asarray(rows.column("vector").to_pylist(), dtype=np.float32)
        return dict(zip(hashes, vectors, strict=True))

    def all_rows(self, columns: Sequence[str]) -> dict[str, list[Any]]:
        with self.reading():
            return dict(self._read_newest_on_vanish(lambda ds: ds.to_table(columns=list(columns)).to_pydict()))

    def vector_search(
        self, vector: np.ndarray, k: int, where: str | None = None, *, exact: bool = False
    ) -> list[Passage]:
        """The k nearest chunks; through the ANN index (refined) when there is one, unless `exact`."""
        nearest: dict[str, Any] = {
            "column": "vector",
            "q": vector.astype("float32"),
            "k": k,
            "metric": "cosine",
            "use_index": not exact,
        }
        if not exact:
            # At least ANN_REFINE_CANDIDATES candidates are re-ranked by their full vectors: 10 × k for the
            # top 10, the k themselves for the 100 a hybrid search fetches (1,000 would add only time).
            # HNSW's search list must hold that many.
            refine = max(1, math.ceil(ANN_REFINE_CANDIDATES / k))
            nearest.update(nprobes=self._nprobes(), refine_factor=refine, ef=max(ANN_EF, k * refine))
        rows = self._read_newest_on_vanish(
            lambda ds: ds.to_table(
                nearest=nearest, columns=[*_HIT_COLUMNS, "_distance"], filter=where, prefilter=bool(where)
            )
        )
        return [_hit(row, 1.0 - float(row["_distance"])) for row in rows.to_pylist()]

    def _nprobes(self) -> int:
        """IVF partitions searched per query: at least ANN_NPROBES, and a fixed share of the partitions
        the index was trained with, so recall does not fall as the table (and its partition count) grows."""
        trained = int(self.meta().get("ann_trained_rows", "0") or 0)
        return max(ANN_NPROBES, math.ceil(_partitions(trained) * ANN_PROBE_SHARE))

    def keyword_search(self, text: str, k: int, where: str | None = None) -> list[Passage]:
        from lance.query import MatchQuery

        if not text.strip():
            return []
        # A MatchQuery is matched as words; the question is never parsed as query syntax.
        rows = self._read_newest_on_vanish(
            lambda ds: ds.to_table(
                full_text_query=MatchQuery(text, FTS_COLUMN),
                columns=[*_HIT_COLUMNS, "_score"],
                filter=where,
                prefilter=bool(where),
                limit=k,
            )
        )
        return [_hit(row, float(row["_score"])) for row in rows.to_pylist()]

    def index_fields(self) -> list[list[str]]:
        """The columns of each index the table lists (from its manifest: the index may be unreadable)."""
        with self.reading():
            return [list(d.field_names) for d in self.dataset.describe_indices()]

    def has_vector_index_files(self) -> bool:
        """Whether the table lists an ANN index (readable or not): then an exact scan may still work."""
        try:
            return ["vector"] in self.index_fields()
        except Exception:
            return False

    def has_vector_index(self) -> bool:
        with self.reading():
            return any(tuple(cfg.columns) == ("vector",) for cfg in self.table.list_indices())

    # ----- writing -------------------------------------------------------------------------------
    def replace_documents(self, chunks: Sequence[Chunk], vectors: np.ndarray, doc_ids: Sequence[str]) -> None:
        """Atomically make `chunks` the full content of every document in `doc_ids`."""
        if not doc_ids:
            return
        data = _chunks_to_arrow(chunks, vectors, self.table.schema)
        with self.writing():
            (
                self.table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"doc_id IN ({_hex_list(doc_ids)})")
                .execute(data)
            )

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), _ID_BATCH):
            batch = doc_ids[start : start + _ID_BATCH]
            with self.writing():
                self.table.delete(f"doc_id IN ({_hex_list(batch)})")

    @property
    def refreshed_generation(self) -> int:
        return int(self.meta().get("refreshed_generation", "0"))

    def mark_refreshed(self, generation: int) -> None:
        self._write_meta({"refreshed_generation": str(generation), "updated_at": str(time.time())})

    def refresh_indexes(self) -> None:
        """Fold new rows into the full-text index (create it the first time) and compact small commits."""
        from lancedb.index import FTS

        table = self.table
        with self.writing():
            indexed = {tuple(cfg.columns) for cfg in table.list_indices()}
            if (FTS_COLUMN,) not in indexed:
                table.create_index(FTS_COLUMN, config=FTS(), replace=True)
            table.optimize()

    def rebuild_fulltext_index(self) -> None:
        """Build the full-text index afresh (for `ragcli doctor --repair`: a damaged one is replaced)."""
        from lancedb.index import FTS

        with self.writing():
            self.table.create_index(FTS_COLUMN, config=FTS(), replace=True)

    def rebuild_vector_index(self) -> None:
        """Train the ANN index afresh on the table as it is."""
        from lancedb.index import IvfHnswSq

        rows = self.count()
        with self.writing():
            self.table.create_index(
                "vector", config=IvfHnswSq(distance_type="cosine", num_partitions=_partitions(rows)), replace=True
            )
        self._write_meta({"ann_trained_rows": str(rows)})

    def ensure_vector_index(self, min_rows: int) -> bool:
        """Build the ANN index once the table has `min_rows` rows, and rebuild it once the table has
        outgrown the rows it was trained on (see the module docstring); True when it (re)built it."""
        rows = self.count()
        if rows < min_rows:
            return False
        trained = int(self.meta().get("ann_trained_rows", "0"))
        if self.has_vector_index() and trained and rows < trained * ANN_RETRAIN_GROWTH:
            return False
        if self.has_vector_index() and not trained:
            # An index built before its size was recorded: adopt it rather than retrain at once.
            self._write_meta({"ann_trained_rows": str(rows)})
            return False
        from lancedb.index import IvfHnswSq

        with self.writing():
            self.table.create_index(
                "vector", config=IvfHnswSq(distance_type="cosine", num_partitions=_partitions(rows)), replace=True
            )
        self._write_meta({"ann_trained_rows": str(rows)})
        return True

    def cleanup_versions(self, keep_versions: int, keep_minutes: float) -> int:
        """Remove superseded table versions, keeping the newest `keep_versions` and every version that
        was current within the last `keep_minutes` (a reader that opened one of those keeps working:
        its files stay until it is older than that); the number of versions removed."""
        from datetime import UTC, datetime, timedelta

        removed = 0
        for table in (self.table, self.db.open_table(META_TABLE)):
            versions = sorted(table.list_versions(), key=lambda v: v["version"])
            if len(versions) <= max(keep_versions, 1):
                continue
            now = datetime.now(UTC)
            # A version stops being current when the next one is committed; keep those replaced later
            # than the cutoff.
            replaced_at = [_utc(v["timestamp"]) for v in versions[1:]]
            cutoff = now - timedelta(minutes=keep_minutes)
            candidates = zip(versions[: -max(keep_versions, 1)], replaced_at, strict=False)
            doomed = [v for v, until in candidates if until < cutoff]
            if not doomed:
                continue
            # delete_unverified: the writer lock is held, so no half-finished commit can be deleted.
            stats = table.to_lance().cleanup_old_versions(
                versions=[v["version"] for v in doomed],
                delete_unverified=True,
                error_if_tagged_old_versions=False,
            )
            removed += int(getattr(stats, "old_versions", 0))
        return removed


def _utc(moment: Any) -> Any:
    """lancedb reports version times as naive local times."""
    from datetime import UTC

    return moment.astimezone(UTC)


def _local_dir(uri: str) -> Path | None:
    """The folder of a local index; None for a remote one (s3://, gs://, az://, db://, …)."""
    from ragcli.store.remote import is_remote

    return None if is_remote(uri) else Path(uri.removeprefix("file://"))


def _partitions(rows: int) -> int:
    """IVF partitions: about one per 4,096 rows (lancedb's own rule of thumb is sqrt(rows) for
    IVF_PQ; HNSW within a partition works best with a few thousand rows per partition)."""
    return max(1, rows // 4096)


FTS_COLUMN = "search_text"
_HIT_COLUMNS = ["id", "doc_id", "source", "title", "heading", "page", "chunk_index", "text", "token_count"]


def _hit(row: dict[str, Any], score: float) -> Passage:
    return Passage(
        chunk_id=row["id"],
        doc_id=row["doc_id"],
        source=row["source"],
        title=row["title"] or "",
        heading=row["heading"],
        page=row["page"],
        chunk_index=row["chunk_index"],
        text=row["text"],
        score=score,
        token_count=row.get("token_count"),
    )


def _chunks_to_arrow(chunks: Sequence[Chunk], vectors: np.ndarray, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    dim = schema.field("vector").type.list_size
    if len(chunks) and vectors.shape != (len(chunks), dim):
        raise StoreError(f"vector shape {vectors.shape} does not fit {len(chunks)} chunks of dimension {dim}")
    flat = pa.array(vectors.astype("float32").reshape(-1), type=pa.float32())
    columns = {
        "id": [c.chunk_id for c in chunks],
        "doc_id": [c.doc_id for c in chunks],
        "source": [c.source for c in chunks],
        "title": [c.title for c in chunks],
        "heading": [c.heading for c in chunks],
        "page": [c.page for c in chunks],
        "chunk_index": [c.chunk_index for c in chunks],
        "char_start": [c.char_start for c in chunks],
        "char_end": [c.char_end for c in chunks],
        "token_count": [c.token_count for c in chunks],
        "chunk_hash": [c.chunk_hash for c in chunks],
        "doc_hash": [c.doc_hash for c in chunks],
        "doc_type": [_doc_type(c.source) for c in chunks],
        "mtime": [c.mtime for c in chunks],
        "ingested_at": [c.ingested_at for c in chunks],
        "text": [c.text for c in chunks],
        "search_text": [c.indexed_text for c in chunks],
    }
    # In the table's own column order: a migrated table has its added columns after the vector.
    arrays = [
        pa.FixedSizeListArray.from_arrays(flat, dim) if f.name == "vector" else pa.array(columns[f.name], type=f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _doc_type(source: str) -> str:
    name = source.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""
