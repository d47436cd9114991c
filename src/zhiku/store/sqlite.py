"""The embedded default store: one SQLite database per knowledge base (WAL, FTS5, migrations)."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import StoreError
from ..types import Chunk, SourceRecord, StoredChunk
from . import migrations
from .base import Store
from .vectors import ExactIndex, HnswIndex

_SOURCE_COLS = "path, source, content_hash, chunker, format, size, added_at"
_CHUNK_COLS = "c.id, c.chunk_id, s.source, s.path, c.ordinal, c.text, c.heading_path, c.start, c.end"


class SqliteStore(Store):
    """Thread-safe through one lock; readers in other processes see committed state only (WAL)."""

    def __init__(self, path: Path, dim: int, hnsw_min_chunks: int = 50_000) -> None:
        self.path = Path(path)
        self.dim = dim
        self.hnsw_min_chunks = hnsw_min_chunks
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            migrations.apply(self._db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open knowledge base database {self.path}: {exc}",
                             "if the file is damaged, restore it from a backup or delete the folder and re-add your files") from exc
        self._exact: tuple[int, ExactIndex] | None = None
        self._count: tuple[int, int] | None = None
        self._hnsw = HnswIndex(self.path.with_name("vectors.usearch"), dim)
        self._hnsw_generation = -1

    # -- meta -----------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._tx():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _generation(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def _bump_generation(self) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(self._generation() + 1),))

    # -- sources --------------------------------------------------------------
    def get_source(self, path: str) -> SourceRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_SOURCE_COLS}, (SELECT count(*) FROM chunks WHERE source_id = sources.id) "
                "FROM sources WHERE path = ?", (path,)).fetchone()
        return _source(row) if row else None

    def list_sources(self) -> list[SourceRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_SOURCE_COLS}, count(c.id) FROM sources LEFT JOIN chunks c ON c.source_id = sources.id "
                "GROUP BY sources.id ORDER BY source, path").fetchall()
        return [_source(r) for r in rows]

    def source_text(self, path: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT text FROM sources WHERE path = ?", (path,)).fetchone()
        if row is None:
            raise StoreError(f"no source {path!r} in this knowledge base", "list sources with: zhiku docs")
        return row[0]

    def replace_source(self, record: SourceRecord, text: str, chunks: Sequence[Chunk],
                       terms: Sequence[str], vectors: np.ndarray) -> None:
        if not (len(chunks) == len(terms) == len(vectors)):
            raise ValueError("chunks, terms and vectors must have the same length")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(chunks) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, store expects {self.dim}")
        with self._lock, self._tx():
            self._delete_source(record.path)
            cur = self._db.execute(
                f"INSERT INTO sources ({_SOURCE_COLS}, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.path, record.source, record.content_hash, record.chunker, record.format,
                 record.size, record.added_at, text))
            source_id = cur.lastrowid
            for chunk, term_text, vec in zip(chunks, terms, vectors):
                cur = self._db.execute(
                    "INSERT INTO chunks (chunk_id, source_id, ordinal, text, heading_path, start, end, embedding) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (chunk.chunk_id, source_id, chunk.ordinal, chunk.text,
                     json.dumps(list(chunk.heading_path), ensure_ascii=False), chunk.start, chunk.end,
                     vec.tobytes()))
                self._db.execute("INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)", (cur.lastrowid, term_text))
            self._bump_generation()

    def remove_source(self, path: str) -> int:
        with self._lock, self._tx():
            removed = self._delete_source(path)
            if removed is not None:
                self._bump_generation()
        return removed or 0

    def _delete_source(self, path: str) -> int | None:
        row = self._db.execute("SELECT id FROM sources WHERE path = ?", (path,)).fetchone()
        if row is None:
            return None
        (source_id,) = row
        n = self._db.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE source_id = ?)",
            (source_id,)).rowcount
        self._db.execute("DELETE FROM chunks WHERE source_id = ?", (source_id,))
        self._db.execute("DELETE FROM sources WHERE id = ?", (source_id,))
        return n

    # -- chunks ---------------------------------------------------------------
    def get_chunks(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        rows = list(rows)
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        with self._lock:
            found = self._db.execute(
                f"SELECT {_CHUNK_COLS} FROM chunks c JOIN sources s ON s.id = c.source_id WHERE c.id IN ({marks})",
                rows).fetchall()
        return {r[0]: _chunk(r) for r in found}

    def chunk_by_id(self, chunk_id: str) -> StoredChunk | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_CHUNK_COLS} FROM chunks c JOIN sources s ON s.id = c.source_id "
                                   "WHERE c.chunk_id = ?", (chunk_id,)).fetchone()
        return _chunk(row) if row else None

    def iter_chunks(self) -> Iterator[StoredChunk]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_CHUNK_COLS} FROM chunks c JOIN sources s ON s.id = c.source_id ORDER BY c.id").fetchall()
        return (_chunk(r) for r in rows)

    def set_embeddings(self, rows: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock, self._tx():
            self._db.executemany("UPDATE chunks SET embedding = ? WHERE id = ?",
                                 [(v.tobytes(), int(r)) for r, v in zip(rows, vectors)])
            self._bump_generation()
        self._hnsw.drop()  # rows kept their ids but changed vectors: the HNSW file must be rebuilt

    def chunk_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    # -- search ---------------------------------------------------------------
    def lexical_search(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, bm25(chunks_fts) AS r FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY r LIMIT ?",
                (match, limit)).fetchall()
        return [(row, -score) for row, score in rows]

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        terms = list(dict.fromkeys(terms))
        if not terms:
            return {}
        marks = ",".join("?" * len(terms))
        with self._lock:
            rows = self._db.execute(f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", terms).fetchall()
        return dict(rows)

    def vector_search(self, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        with self._lock:
            generation = self._generation()
            if self._count is None or self._count[0] != generation:  # count(*) is a scan: once per write
                self._count = (generation, self.chunk_count())
            if self._count[1] < self.hnsw_min_chunks:
                return self._exact_index(generation).search(vector, limit)
            hits = self._synced_hnsw(generation).search(vector, limit * 2 + 10)  # oversample: see below
            live = self._live_rows([r for r, _ in hits])  # rows deleted since the HNSW build drop out
            return [(r, s) for r, s in hits if r in live][:limit]

    def _exact_index(self, generation: int) -> ExactIndex:
        if self._exact is None or self._exact[0] != generation:
            ids, vectors = self._rows_after(0)
            self._exact = (generation, ExactIndex(ids, vectors))
        return self._exact[1]

    def _synced_hnsw(self, generation: int) -> HnswIndex:
        if generation != self._hnsw_generation:
            self._exact = None  # free the brute-force matrix once the HNSW index takes over
            self._hnsw.sync(self._rows_after, self._count_live)
            self._hnsw_generation = generation
        return self._hnsw

    def _rows_after(self, after: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._db.execute("SELECT id, embedding FROM chunks WHERE id > ? ORDER BY id", (after,)).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
        return ids, vectors

    def _count_live(self, up_to: int) -> int:
        return self._db.execute("SELECT count(*) FROM chunks WHERE id <= ?", (up_to,)).fetchone()[0]

    def _live_rows(self, rows: list[int]) -> set[int]:
        if not rows:
            return set()
        marks = ",".join("?" * len(rows))
        return {r[0] for r in self._db.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", rows)}

    # -- plumbing -------------------------------------------------------------
    def _tx(self):
        return _Transaction(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _source(row) -> SourceRecord:
    path, source, content_hash, chunker, fmt, size, added_at, count = row
    return SourceRecord(path=path, source=source, content_hash=content_hash, chunker=chunker, format=fmt,
                        size=size, chunk_count=count, added_at=added_at)


def _chunk(row) -> StoredChunk:
    row_id, chunk_id, source, path, ordinal, text, heading, start, end = row
    return StoredChunk(row=row_id, chunk_id=chunk_id, source=source, path=path, ordinal=ordinal, text=text,
                       heading_path=tuple(json.loads(heading)), start=start, end=end)
