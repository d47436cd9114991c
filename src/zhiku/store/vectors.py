"""Vector search over a knowledge base's embeddings.

The SQLite store is the system of record; these indexes are derived and rebuildable:
- ``ExactIndex``: brute-force cosine with numpy; exact, fast below tens of thousands of chunks.
- ``HnswIndex``: usearch HNSW kept in a file beside the database. It is extended with new rows
  (row ids only grow) and rebuilt when too many indexed rows were deleted. Hits for deleted rows
  are dropped by the caller's join with the chunks table.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

RowsLoader = Callable[[int], tuple[np.ndarray, np.ndarray]]  # after_row -> (ids int64, vectors float32)
LiveCounter = Callable[[int], int]  # up_to_row -> live rows with id <= up_to_row

HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 256  # recall@10 0.994 vs 0.974 at 96 on 100k e5 vectors, +1 ms (bench/search_latency.py)
REBUILD_DEAD_SHARE = 0.2  # rebuild the HNSW file when over 20% of its rows were deleted


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


class ExactIndex:
    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = ids
        self.vectors = vectors

    def search(self, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        if self.ids.size == 0:
            return []
        # einsum, not `@`: the matrix-vector product is memory-bound, and OpenBLAS's threads keep
        # spinning after `@`, which made the next query embedding (OpenMP, all cores) 2-4x slower
        # (bench/search_latency.py: p95 101 ms vs 15 ms). einsum runs single-threaded numpy loops.
        scores = np.einsum("ij,j->i", self.vectors, vector.astype(np.float32))
        best = top_k(scores, limit)
        return [(int(self.ids[i]), float(scores[i])) for i in best]


class HnswIndex:
    """A usearch index file; the rows it covers are its own keys (no sidecar to go stale)."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self._index = None
        self.max_row = 0

    def _new(self):
        from usearch.index import Index

        return Index(ndim=self.dim, metric="cos", dtype="f32", connectivity=HNSW_CONNECTIVITY,
                     expansion_add=HNSW_EXPANSION_ADD, expansion_search=HNSW_EXPANSION_SEARCH)

    def sync(self, load_rows: RowsLoader, count_live: LiveCounter) -> None:
        """Bring the index up to date with the store: load, extend with new rows, or rebuild."""
        if self._index is None:
            self._open()
        dead = len(self._index) - count_live(self.max_row) if self._index is not None else 0
        if self._index is None or dead > REBUILD_DEAD_SHARE * max(len(self._index), 1):
            self._index, self.max_row = self._new(), 0
        ids, vectors = load_rows(self.max_row)
        if ids.size:
            # threads=1: usearch's concurrent insertion left nodes unreachable (a vector could not
            # find itself in 26 of 40 trials of 300 points; 0 of 40 single-threaded)
            self._index.add(ids, vectors, threads=1)
            self.max_row = int(ids.max())
            self._save()

    def search(self, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        if self._index is None or len(self._index) == 0:
            return []
        matches = self._index.search(vector.astype(np.float32), min(limit, len(self._index)))
        return [(int(k), 1.0 - float(d)) for k, d in zip(matches.keys, matches.distances)]

    def _open(self) -> None:
        if not self.path.exists():
            return
        try:
            index = self._new()
            index.load(str(self.path))
            if index.ndim != self.dim:
                raise ValueError("dimension changed")
            self._index = index
            self.max_row = int(np.max(index.keys)) if len(index) else 0
        except Exception as exc:  # a derived file: any damage means rebuild, never a failed search
            log.warning("vector index %s unreadable (%s); rebuilding", self.path, exc)
            self._index, self.max_row = None, 0

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        self._index.save(str(tmp))
        os.replace(tmp, self.path)

    def drop(self) -> None:
        self._index, self.max_row = None, 0
        self.path.unlink(missing_ok=True)

