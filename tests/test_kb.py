"""KnowledgeBase behaviour with the FAKE embedder (fast); real-model tests live in test_real_model.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from zhiku import KnowledgeBase
from zhiku.backends.fake import FakeHashEmbedder
from zhiku.errors import EmbedderMismatch, KnowledgeBaseNotFound, UsageError


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    write(root / "a.md", "# 评估\n\n想要做应用最首要的是先把评估工作做好。\n\n## 数据\n\n数据决定上限。\n")
    write(root / "sub" / "b.txt", "温度越大，概率分布越平滑。\n\n全参数微调都要8张A100。\n")
    return root


def open_kb(name="default", **kw):
    return KnowledgeBase.open(name, embedder=FakeHashEmbedder(), **kw)


def test_add_then_unchanged_then_replaced(docs):
    with open_kb() as kb:
        r1 = kb.add([docs])
        assert sorted((o.source, o.status) for o in r1.outcomes) == [("a.md", "added"), ("sub/b.txt", "added")]
        assert {d.source: d.chunk_count for d in kb.documents()} == {"a.md": 2, "sub/b.txt": 1}
        r2 = kb.add([docs])
        assert [o.status for o in r2.outcomes] == ["unchanged", "unchanged"] and r2.chunks_written == 0
        write(docs / "a.md", "# 评估\n\n评估需要批量测试的程序。\n")
        r3 = kb.add([docs])
        assert {o.source: o.status for o in r3.outcomes} == {"a.md": "replaced", "sub/b.txt": "unchanged"}
        hits = kb.search("数据决定上限", mode="lexical").hits
        assert all("数据决定上限" not in h.chunk.text for h in hits)  # the old version is gone
        assert kb.search("批量测试", mode="lexical").hits[0].chunk.source == "a.md"


def test_search_json_shape_and_trace(docs):
    with open_kb() as kb:
        kb.add([docs])
        result = kb.search("数据决定什么上限？", k=3)
    d = result.as_dict()
    assert d["query"] == "数据决定什么上限？" and 1 <= len(d["hits"]) <= 3
    hit = d["hits"][0]
    assert set(hit) >= {"rank", "score", "source", "chunk_id", "text", "trace", "heading_path"}
    assert hit["source"] == "a.md" and hit["heading_path"] == ["评估", "数据"]
    assert hit["trace"]["lexical_rank"] == 1 and hit["trace"]["fused_score"] == pytest.approx(hit["score"])
    start, end = hit["highlights"][0]
    assert hit["text"][start:end] == "数据决定上限"  # adjacent term matches merge into one span
    assert [h["rank"] for h in d["hits"]] == list(range(1, len(d["hits"]) + 1))


def test_modes_and_bad_queries(docs):
    with open_kb() as kb:
        kb.add([docs])
        assert kb.search("A100", mode="lexical").hits[0].trace.vector_rank is None
        assert kb.search("A100", mode="vector").hits[0].trace.lexical_rank is None
        with pytest.raises(UsageError, match="empty"):
            kb.search("   ")
        with pytest.raises(UsageError, match="unknown search mode"):
            kb.search("x", mode="fuzzy")
        long = kb.search("数据" * 6000)
        assert long.warnings and "cut" in long.warnings[0]
        assert kb.search("没有任何匹配的词语组合zzqx", mode="lexical").hits == ()


def test_rm_and_ambiguous_names(docs, tmp_path):
    other = tmp_path / "other"
    write(other / "a.md", "另一份同名文件。\n")
    with open_kb() as kb:
        kb.add([docs, other])
        with pytest.raises(UsageError, match="names 2 sources"):
            kb.remove("a.md")
        assert kb.remove(str(other / "a.md")) == 1
        assert kb.remove("a.md") == 2
        with pytest.raises(UsageError, match="no source"):
            kb.remove("a.md")


def test_sync_removes_vanished_and_adds_new(docs):
    with open_kb() as kb:
        kb.add([docs])
        (docs / "sub" / "b.txt").unlink()
        write(docs / "c.md", "新文件。\n")
        report = kb.sync(docs)
        assert {o.source: o.status for o in report.outcomes} == {"a.md": "unchanged", "c.md": "added",
                                                                 "sub/b.txt": "removed"}
        assert sorted(d.source for d in kb.documents()) == ["a.md", "c.md"]
        with pytest.raises(UsageError, match="not a folder"):
            kb.sync(docs / "missing")


def test_embedder_mismatch_and_reindex(docs, real_embedder):
    with open_kb("kb1") as kb:
        kb.add([docs])
    with pytest.raises(EmbedderMismatch, match="zhiku reindex --kb kb1"):
        KnowledgeBase.open("kb1", embedder=real_embedder)
    with KnowledgeBase.open("kb1", embedder=real_embedder, _allow_embedder_change=True) as kb:
        assert kb.reindex() == 3
    with KnowledgeBase.open("kb1", embedder=real_embedder) as kb:  # now bound to the real one
        assert kb.search("What decides the upper limit?", mode="vector").hits


def test_names_and_listing(docs):
    with pytest.raises(UsageError):
        open_kb("../evil")
    with pytest.raises(KnowledgeBaseNotFound):
        KnowledgeBase.open("nope", create=False, embedder=FakeHashEmbedder())
    with open_kb("one") as kb:
        kb.add([docs])
    assert KnowledgeBase.list_names() == ["one"]
    KnowledgeBase.delete("one")
    assert KnowledgeBase.list_names() == []


def test_user_dictionary_changes_lexical_hits(tmp_path, isolated):
    write(tmp_path / "d" / "x.txt", "他在蓝鲸智算平台工作。\n\n蓝天下的鲸鱼。\n")
    isolated.mkdir(parents=True, exist_ok=True)
    (isolated / "userdict.txt").write_text("蓝鲸智算平台\n", encoding="utf-8")
    with open_kb() as kb:
        kb.add([tmp_path / "d"])
        result = kb.search("蓝鲸智算平台", mode="lexical")
        assert "蓝鲸智算平台" in result.terms
        assert "平台工作" in result.hits[0].chunk.text
