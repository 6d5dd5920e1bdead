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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcli.errors import EmbedderMismatchError, StoreError
from ragcli.models import Chunk, Passage

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

logger = logging.getLogger(__name__)

META_TABLE = "ragcli_meta"
SCHEMA_VERSION = 2
# How many ids go into one `IN (...)` list; keeps filter strings to a sane length.
_ID_BATCH = 500


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
    """Opened with `LanceStore.open(uri, table)`; `ensure_identity` before reading or writing vectors."""

    def __init__(self, db: Any, uri: str, table_name: str) -> None:
        self._db = db
        self.uri = uri
        self.table_name = table_name
        self._table: Any = None
        self._meta_cache: dict[str, str] | None = None

    # ----- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, uri: str, table_name: str = "chunks") -> LanceStore:
        try:
            import lancedb

            db = lancedb.connect(uri)
        except Exception as exc:
            raise StoreError(
                f"Cannot open the index at {uri}: {exc}",
                hint="Check [store] uri in the config and that the folder is readable.",
            ) from exc
        return cls(db, uri, table_name)

    def _table_names(self) -> list[str]:
        result = self._db.list_tables()
        names = getattr(result, "tables", result)
        return list(names)

    def exists(self) -> bool:
        return self.table_name in self._table_names()

    @property
    def table(self) -> Any:
        if self._table is None:
            if not self.exists():
                raise StoreError(
                    f"There is no index at {self.uri} yet.",
                    hint="Run `ragcli ingest PATH` to build it.",
                )
            try:
                self._table = self._db.open_table(self.table_name)
            except Exception as exc:
                raise StoreError(
                    f"The index at {self.uri} cannot be read: {exc}",
                    hint="Run `ragcli reindex` to rebuild it from the source files.",
                ) from exc
        return self._table

    # ----- metadata ------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        if self._meta_cache is None:
            if META_TABLE not in self._table_names():
                self._meta_cache = {}
            else:
                rows = self._db.open_table(META_TABLE).to_arrow().to_pylist()
                self._meta_cache = {r["key"]: r["value"] for r in rows}
        return dict(self._meta_cache)

    def _write_meta(self, updates: dict[str, str]) -> None:
        import pyarrow as pa

        data = pa.table({"key": list(updates), "value": list(updates.values())})
        if META_TABLE not in self._table_names():
            self._db.create_table(META_TABLE, data=data)
        else:
            table = self._db.open_table(META_TABLE)
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
        self._db.create_table(self.table_name, schema=chunk_schema(wanted.dimension))
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
            MIGRATIONS[version](self)
            version += 1
            self._write_meta({"schema_version": str(version)})

    # ----- reading -------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.table.count_rows()) if self.exists() else 0

    def document_states(self) -> dict[str, DocState]:
        if not self.exists():
            return {}
        columns = self.table.to_lance().to_table(columns=["doc_id", "source", "doc_hash"]).to_pydict()
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
        return dict(self.table.to_lance().to_table(columns=list(columns)).to_pydict())

    def vector_search(self, vector: np.ndarray, k: int, where: str | None = None) -> list[Passage]:
        query = (
            self.table.search(vector.astype("float32"), vector_column_name="vector")
            .metric("cosine")
            .select([*_HIT_COLUMNS, "_distance"])
            .limit(k)
        )
        if where:
            query = query.where(where, prefilter=True)
        return [_hit(row, 1.0 - float(row["_distance"])) for row in query.to_list()]

    def keyword_search(self, text: str, k: int, where: str | None = None) -> list[Passage]:
        from lancedb.query import MatchQuery

        if not text.strip():
            return []
        # A MatchQuery is matched as words; the question is never parsed as query syntax.
        query = self.table.search(MatchQuery(text, FTS_COLUMN), query_type="fts")
        query = query.select([*_HIT_COLUMNS, "_score"]).limit(k)
        if where:
            query = query.where(where, prefilter=True)
        return [_hit(row, float(row["_score"])) for row in query.to_list()]

    def has_vector_index(self) -> bool:
        return any(tuple(cfg.columns) == ("vector",) for cfg in self.table.list_indices())

    # ----- writing -------------------------------------------------------------------------------
    def replace_documents(self, chunks: Sequence[Chunk], vectors: np.ndarray, doc_ids: Sequence[str]) -> None:
        """Atomically make `chunks` the full content of every document in `doc_ids`."""
        if not doc_ids:
            return
        data = _chunks_to_arrow(chunks, vectors, self.table.schema)
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
        indexed = {tuple(cfg.columns) for cfg in table.list_indices()}
        if (FTS_COLUMN,) not in indexed:
            table.create_index(FTS_COLUMN, config=FTS(), replace=True)
        table.optimize()

    def ensure_vector_index(self, min_rows: int) -> bool:
        """Build an ANN index once the table is large enough that exact search stops being flat in
        latency; below that, exact search is both faster and exact. `optimize` keeps it up to date."""
        if self.has_vector_index() or self.count() < min_rows:
            return False
        from lancedb.index import IvfHnswSq

        self.table.create_index("vector", config=IvfHnswSq(distance_type="cosine"))
        return True


FTS_COLUMN = "search_text"
_HIT_COLUMNS = ["id", "doc_id", "source", "title", "heading", "page", "chunk_index", "text"]


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
