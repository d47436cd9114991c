"""Bad input never crashes ingest, never half-writes, and says what happened."""
from __future__ import annotations

import os
import sqlite3
import struct
import zlib

import pytest

from zhiku import KnowledgeBase
from zhiku.backends.fake import FakeHashEmbedder
from zhiku.ingest import pipeline

from .test_kb import write

PNG = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\0" * 17 + zlib.compress(b"\0" * 64)


def add(paths, **kw):
    with KnowledgeBase.open("default", embedder=FakeHashEmbedder(), **kw) as kb:
        return kb.add(paths), kb.documents()


def reasons(report):
    return {o.source: o.reason for o in report.outcomes if o.status == "skipped"}


def test_each_bad_file_is_skipped_with_a_reason(tmp_path):
    d = tmp_path / "bad"
    write(d / "empty.txt", "")
    (d / "image.txt").write_bytes(PNG)
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (d / "fake.docx").write_bytes("这不是 Word 文件".encode())
    (d / "noise.md").write_bytes(os.urandom(4096))
    (d / "photo.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(100))
    write(d / "good.md", "正常的文件。\n")
    report, docs = add([d])
    why = reasons(report)
    assert why["empty.txt"] == "empty file"
    assert "binary" in why["image.txt"]
    assert "PDF" in why["broken.pdf"]
    assert "docx" in why["fake.docx"].lower() or "word" in why["fake.docx"].lower()
    assert why["noise.md"]
    assert "unsupported file type" in why["photo.jpg"]
    assert [x.source for x in docs] == ["good.md"]


def test_huge_file_skipped_without_reading(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:  # sparse 200 MB file: costs no disk
        fh.truncate(200 * 1024 * 1024)
    report, docs = add([big])
    assert "200 MB, over the 50 MB limit" in reasons(report)["big.txt"] and docs == []
    write(tmp_path / "small.txt", "一" * 3000)
    report, _ = add([tmp_path / "small.txt"], overrides={"ingest.max_file_mb": 0.001})
    assert "over the 0.001 MB limit" in reasons(report)["small.txt"]


def test_deep_folders_and_symlink_loops(tmp_path):
    root = tmp_path / "tree"
    deep = root.joinpath(*[f"d{i}" for i in range(60)])
    write(deep / "bottom.txt", "最深处的文件。\n")
    os.symlink(root, root / "d0" / "loop")  # a loop back to the top
    os.symlink(tmp_path / "nowhere", root / "dangling.txt")
    report, docs = add([root])
    assert [d.source for d in docs] == [str((deep / "bottom.txt").relative_to(root))]
    assert reasons(report) == {"dangling.txt": "broken symbolic link"}


def test_unreadable_file(tmp_path, monkeypatch):
    write(tmp_path / "d" / "secret.txt", "机密。\n")
    write(tmp_path / "d" / "ok.txt", "公开。\n")
    real_open = open

    def fake_open(path, *a, **kw):  # FAKE permission failure: root ignores chmod, so simulate it
        if str(path).endswith("secret.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    monkeypatch.setattr(pipeline, "open", fake_open, raising=False)
    report, docs = add([tmp_path / "d"])
    assert "permission denied" in reasons(report)["secret.txt"]
    assert [d.source for d in docs] == ["ok.txt"]


def test_non_utf8_file_name(tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/\xd6\xd0\xce\xc4-gbk-name.txt"  # "中文" in GBK bytes
    with open(raw, "wb") as fh:
        fh.write("文件名不是 UTF-8。\n".encode())
    with KnowledgeBase.open("default", embedder=FakeHashEmbedder()) as kb:
        report = kb.add([folder])
        assert [o.status for o in report.outcomes] == ["added"]
        assert report.outcomes[0].source == "\\xd6\\xd0\\xce\\xc4-gbk-name.txt"
        assert kb.search("文件名", mode="lexical").hits
        assert [o.status for o in kb.sync(folder).outcomes] == ["unchanged"]  # not mistaken for vanished


def test_missing_path(tmp_path):
    report, _ = add([tmp_path / "missing"])
    assert list(reasons(report).values()) == ["no such file or folder"]


def test_parser_crash_becomes_a_skip(tmp_path, monkeypatch):
    from zhiku.ingest.parsers import txt

    def boom(data, name):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(txt, "parse", boom)
    write(tmp_path / "x.txt", "内容。\n")
    report, docs = add([tmp_path / "x.txt"])
    assert "parser bug" in reasons(report)["x.txt"] and docs == []


def test_store_stays_consistent_when_embedding_fails(tmp_path):
    class FailingEmbedder(FakeHashEmbedder):  # FAKE: dies on the second file
        calls = 0

        def embed_batch(self, texts, is_query):
            FailingEmbedder.calls += 1
            if FailingEmbedder.calls == 2:
                raise RuntimeError("model crashed")
            return super().embed_batch(texts, is_query)

    write(tmp_path / "d" / "a.txt", "第一。\n")
    write(tmp_path / "d" / "b.txt", "第二。\n")
    with KnowledgeBase.open("default", embedder=FailingEmbedder()) as kb:
        with pytest.raises(RuntimeError):
            kb.add([tmp_path / "d"])
        assert [d.source for d in kb.documents()] == ["a.txt"]
        report = kb.add([tmp_path / "d"])
        assert {o.source: o.status for o in report.outcomes} == {"a.txt": "unchanged", "b.txt": "added"}
        db = sqlite3.connect(kb.store.path)
        assert db.execute("SELECT count(*) FROM chunks").fetchone() == db.execute(
            "SELECT count(*) FROM chunks_fts").fetchone()
