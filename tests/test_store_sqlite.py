from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from zhiku.errors import SchemaTooNew, StoreError
from zhiku.store.sqlite import SqliteStore

from .store_contract import DIM, StoreContract, unit


class TestSqliteStore(StoreContract):
    def make_store(self, tmp_path, dim: int = DIM, **kw):
        return SqliteStore(tmp_path / "kb" / "kb.sqlite", dim, **kw)


class TestSqliteHnswPath(StoreContract):
    """The same contract with the HNSW index forced on (threshold 0)."""

    def make_store(self, tmp_path, dim: int = DIM, **kw):
        return SqliteStore(tmp_path / "kb" / "kb.sqlite", dim, hnsw_min_chunks=0)


def _random_store(tmp_path, n=300, dim=16, threshold=0):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    s = SqliteStore(tmp_path / "kb" / "kb.sqlite", dim, hnsw_min_chunks=threshold)
    from .store_contract import chunks_for, record
    for start in range(0, n, 50):
        texts = [f"t{i}" for i in range(start, start + 50)]
        s.replace_source(record(f"/d/{start}.txt"), " ".join(texts), chunks_for(f"/d/{start}.txt", texts),
                         texts, vecs[start:start + 50])
    return s, vecs


def test_hnsw_agrees_with_exact_and_persists(tmp_path):
    s, vecs = _random_store(tmp_path)
    exact = SqliteStore(tmp_path / "kb" / "kb.sqlite", 16, hnsw_min_chunks=10**9)
    agree = 0
    for q in vecs[:50]:
        agree += s.vector_search(q, 1)[0][0] == exact.vector_search(q, 1)[0][0]
    assert agree >= 49
    assert (tmp_path / "kb" / "vectors.usearch").exists()
    s.remove_source("/d/0.txt")  # rows in the HNSW file that are gone must never come back
    live = {c.row for c in s.iter_chunks()}
    assert all(r in live for r, _ in s.vector_search(vecs[0], 20))
    reopened = SqliteStore(tmp_path / "kb" / "kb.sqlite", 16, hnsw_min_chunks=0)
    assert reopened.vector_search(vecs[100], 1)[0][1] == pytest.approx(1.0, abs=1e-3)


def test_damaged_hnsw_file_is_rebuilt(tmp_path):
    s, vecs = _random_store(tmp_path, n=100)
    s.vector_search(vecs[0], 1)
    s.close()
    (tmp_path / "kb" / "vectors.usearch").write_bytes(b"garbage")
    again = SqliteStore(tmp_path / "kb" / "kb.sqlite", 16, hnsw_min_chunks=0)
    assert again.vector_search(vecs[3], 1)[0][1] == pytest.approx(1.0, abs=1e-3)


def test_second_connection_sees_commits(tmp_path):
    a = SqliteStore(tmp_path / "kb.sqlite", DIM)
    b = SqliteStore(tmp_path / "kb.sqlite", DIM)
    from .store_contract import chunks_for, record
    a.replace_source(record("/x.txt"), "甲", chunks_for("/x.txt", ["甲"]), ["甲"], np.array([unit(1)]))
    assert b.chunk_count() == 1 and len(b.vector_search(unit(1), 1)) == 1


def test_newer_schema_refused(tmp_path):
    SqliteStore(tmp_path / "kb.sqlite", DIM).close()
    db = sqlite3.connect(tmp_path / "kb.sqlite")
    db.execute("INSERT INTO migrations VALUES ('999_from_the_future', 0)")
    db.commit()
    db.close()
    with pytest.raises(SchemaTooNew, match="newer zhiku"):
        SqliteStore(tmp_path / "kb.sqlite", DIM)


def test_not_a_database(tmp_path):
    (tmp_path / "kb.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore(tmp_path / "kb.sqlite", DIM)


def test_hnsw_finds_every_stored_vector(tmp_path):
    """Regression: a multi-threaded HNSW build left some vectors unreachable, even from themselves."""
    for trial in range(8):
        s, vecs = _random_store(tmp_path / str(trial), n=1000)
        rows = [c.row for c in s.iter_chunks()]
        misses = sum(s.vector_search(v, 1)[0][0] != row for v, row in zip(vecs, rows))
        assert misses == 0
