"""Chunker unit tests on real Chinese text from the llm-notes style of writing."""
import re

from zhiku.config import ChunkSettings
from zhiku.ingest.chunker import chunk_document, fingerprint, split_span, Span
from zhiku.types import Block, ParsedDoc

TEXT = ("想要做应用最最最首要的是要先把评估工作做好。数据决定上限，模型和算法只是逼近这个上限。"
        "温度越大，概率分布越平滑；温度越小，分布越尖锐！全参数微调都要8张A100吗？")


def doc(paragraphs, heading=("讲座",)):
    text = "\n\n".join(paragraphs)
    blocks, pos = [], 0
    for p in paragraphs:
        blocks.append(Block(pos, pos + len(p), heading))
        pos += len(p) + 2
    return ParsedDoc(text, tuple(blocks))


def test_small_paragraphs_pack_into_one_chunk():
    d = doc(["第一段。", "第二段。"])
    chunks = chunk_document(d, ChunkSettings(max_chars=100), "s")
    assert len(chunks) == 1
    assert chunks[0].text == "第一段。\n\n第二段。"
    assert chunks[0].heading_path == ("讲座",)


def test_long_paragraph_splits_at_sentence_ends_with_offsets():
    d = doc([TEXT])
    chunks = chunk_document(d, ChunkSettings(max_chars=50, overlap_chars=0, min_chars=0), "s")
    assert len(chunks) > 1
    for c in chunks:
        assert d.text[c.start:c.end] == c.text
        assert len(c.text) <= 50
        assert re.search(r"[。！？；]$", c.text), c.text  # every cut is at a sentence end
    assert "".join(c.text for c in chunks) == TEXT


def test_overlap_repeats_previous_sentences():
    d = doc([TEXT])
    chunks = chunk_document(d, ChunkSettings(max_chars=60, overlap_chars=30, min_chars=0), "s")
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.start < prev.end  # overlapping spans
        assert prev.end - nxt.start <= 30


def test_headings_are_hard_boundaries():
    text = "甲。\n\n乙。"
    d = ParsedDoc(text, (Block(0, 2, ("一",)), Block(4, 6, ("二",))))
    chunks = chunk_document(d, ChunkSettings(max_chars=100), "s")
    assert [(c.text, c.heading_path) for c in chunks] == [("甲。", ("一",)), ("乙。", ("二",))]


def test_never_cuts_inside_word_or_number():
    text = "x" * 10 + " " + "token1234567890 " * 12 + "3.1415926535"
    pieces = split_span(text, Span(0, len(text)), 40)
    for p in pieces:
        piece = text[p.start:p.end]
        assert len(piece) <= 40
        assert not re.match(r"^\w", text[p.end:]) or text[p.end - 1] == " " or not text[p.end - 1].isalnum()
    assert any("3.1415926535" in text[p.start:p.end] for p in pieces)


def test_chunk_ids_stable_and_distinct():
    d = doc([TEXT])
    cfg = ChunkSettings(max_chars=50, overlap_chars=0, min_chars=0)
    a = chunk_document(d, cfg, "s")
    b = chunk_document(d, cfg, "s")
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len({c.chunk_id for c in a}) == len(a)
    assert {c.chunk_id for c in chunk_document(d, cfg, "other")}.isdisjoint({c.chunk_id for c in a})


def test_small_tail_merged():
    d = doc(["很长的一句话，" * 8 + "结束。", "短。"])
    chunks = chunk_document(d, ChunkSettings(max_chars=70, overlap_chars=0, min_chars=10), "s")
    assert chunks[-1].text.endswith("短。") and len(chunks[-1].text) > 10


def test_fingerprint_changes_with_settings():
    assert fingerprint(ChunkSettings()) != fingerprint(ChunkSettings(max_chars=401))
