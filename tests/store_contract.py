"""The contract every Store backend passes. Subclass StoreContract and implement ``make_store``."""
from __future__ import annotations

import numpy as np
import pytest

from zhiku.types import Chunk, SourceRecord

DIM = 8


def unit(*values: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def record(path: str, digest: str = "h1") -> SourceRecord:
    return SourceRecord(path=path, source=path.rsplit("/", 1)[-1], content_hash=digest, chunker="c",
                        format="txt", size=10, added_at=1.0)


def chunks_for(path: str, texts: list[str]) -> list[Chunk]:
    out, pos = [], 0
    for i, t in enumerate(texts):
        out.append(Chunk(f"{path}#{i}:{t[:6]}", i, t, ("标题",), pos, pos + len(t)))
        pos += len(t) + 1
    return out


class StoreContract:
    def make_store(self, tmp_path, dim: int = DIM, **kw):  # pragma: no cover - overridden
        raise NotImplementedError

    def put(self, store, path, texts, terms, vectors, digest="h1"):
        store.replace_source(record(path, digest), "\n".join(texts), chunks_for(path, texts), terms,
                             np.array(vectors, dtype=np.float32))

    def test_add_list_and_read_back(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["数据决定上限", "评估最重要"], ["数据 决定 上限", "评估 最 重要"],
                 [unit(1), unit(0, 1)])
        assert s.chunk_count() == 2
        rec = s.get_source("/d/a.txt")
        assert rec.chunk_count == 2 and rec.content_hash == "h1" and rec.source == "a.txt"
        assert [r.path for r in s.list_sources()] == ["/d/a.txt"]
        assert s.source_text("/d/a.txt") == "数据决定上限\n评估最重要"
        got = sorted(s.get_chunks([c.row for c in s.iter_chunks()]).values(), key=lambda c: c.ordinal)
        assert [c.text for c in got] == ["数据决定上限", "评估最重要"]
        assert got[0].heading_path == ("标题",) and got[1].start == 7

    def test_replace_is_whole(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["旧内容一", "旧内容二"], ["旧 内容", "旧 内容"], [unit(1), unit(1)])
        self.put(s, "/d/a.txt", ["新内容"], ["新 内容"], [unit(0, 1)], digest="h2")
        assert s.chunk_count() == 1
        assert s.get_source("/d/a.txt").content_hash == "h2"
        assert s.lexical_search(["旧"], 10) == []
        assert len(s.lexical_search(["新"], 10)) == 1

    def test_failed_replace_keeps_old_state(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["旧内容"], ["旧 内容"], [unit(1)])
        bad = chunks_for("/d/a.txt", ["甲", "乙"])
        bad[1] = Chunk(bad[0].chunk_id, 1, "乙", (), 2, 3)  # duplicate chunk id: the insert fails mid-way
        with pytest.raises(Exception):
            s.replace_source(record("/d/a.txt", "h2"), "甲\n乙", bad, ["甲", "乙"],
                             np.array([unit(1), unit(0, 1)]))
        assert s.get_source("/d/a.txt").content_hash == "h1"
        assert [c.text for c in s.iter_chunks()] == ["旧内容"]
        assert len(s.lexical_search(["旧"], 10)) == 1 and s.lexical_search(["甲"], 10) == []

    def test_mismatched_lengths_rejected(self, tmp_path):
        s = self.make_store(tmp_path)
        with pytest.raises(ValueError):
            s.replace_source(record("/d/a.txt"), "x", chunks_for("/d/a.txt", ["x"]), ["x", "y"],
                             np.array([unit(1)]))
        assert s.chunk_count() == 0

    def test_remove(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["甲乙", "丙丁"], ["甲 乙", "丙 丁"], [unit(1), unit(0, 1)])
        self.put(s, "/d/b.txt", ["戊己"], ["戊 己"], [unit(0, 0, 1)])
        assert s.remove_source("/d/a.txt") == 2
        assert s.remove_source("/d/a.txt") == 0
        assert s.chunk_count() == 1
        assert s.lexical_search(["甲"], 10) == []
        assert [s.get_chunks([r])[r].source for r, _ in s.vector_search(unit(1), 10)] == ["b.txt"]

    def test_lexical_ranks_by_bm25(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["a", "b", "c"],
                 ["检索 增强 生成 检索", "检索 向量", "融合 排名"], [unit(1), unit(1), unit(1)])
        hits = s.lexical_search(["检索", "增强"], 10)
        texts = [s.get_chunks([r])[r].text for r, _ in hits]
        assert texts == ["a", "b"]
        assert hits[0][1] > hits[1][1] > 0
        assert s.lexical_search(['"引号"', "OR"], 10) == []  # query syntax is escaped, never an error
        assert s.lexical_search([], 10) == []

    def test_vector_exact_order(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["x", "y", "z"], ["x", "y", "z"], [unit(1), unit(1, 1), unit(0, 1)])
        hits = s.vector_search(unit(1, 0.2), 3)
        assert [s.get_chunks([r])[r].text for r, _ in hits] == ["x", "y", "z"]
        assert hits[0][1] == pytest.approx(float(unit(1) @ unit(1, 0.2)), abs=1e-5)

    def test_vector_index_follows_writes(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["x"], ["x"], [unit(1)])
        assert len(s.vector_search(unit(1), 5)) == 1
        self.put(s, "/d/b.txt", ["y"], ["y"], [unit(0, 1)])
        top = s.vector_search(unit(0, 1), 1)[0][0]
        assert s.get_chunks([top])[top].text == "y"

    def test_meta(self, tmp_path):
        s = self.make_store(tmp_path)
        assert s.get_meta("k") is None
        s.set_meta("k", "v")
        s.set_meta("k", "w")
        assert s.get_meta("k") == "w"

    def test_set_embeddings(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["x", "y"], ["x", "y"], [unit(1), unit(0, 1)])
        rows = [c.row for c in s.iter_chunks()]
        s.set_embeddings(rows, np.array([unit(0, 1), unit(1)]))
        top = s.vector_search(unit(1), 1)[0][0]
        assert s.get_chunks([top])[top].text == "y"

    def test_document_frequencies(self, tmp_path):
        s = self.make_store(tmp_path)
        self.put(s, "/d/a.txt", ["a", "b"], ["检索 增强 检索", "检索 向量"], [unit(1), unit(1)])
        assert s.document_frequencies(["检索", "向量", "没有"]) in ({"检索": 2, "向量": 1},
                                                                {"检索": 2, "向量": 1, "没有": 0})
        assert s.document_frequencies([]) == {}
