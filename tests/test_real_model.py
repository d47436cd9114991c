"""The real embedder and segmenter end to end on the bundled sample folder (offline)."""
from __future__ import annotations

from importlib import resources

import pytest

from zhiku import KnowledgeBase


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory, real_embedder):
    home = tmp_path_factory.mktemp("home")
    kb = KnowledgeBase.open("demo", home=home, embedder=real_embedder)
    with resources.as_file(resources.files("zhiku.samples").joinpath("demo")) as folder:
        report = kb.add([folder])
    assert [o.status for o in report.outcomes] == ["added"] * 3
    yield kb
    kb.close()


def top_source(kb, query, mode="hybrid"):
    return kb.search(query, k=3, mode=mode).hits[0].chunk


def test_chinese_question_finds_chinese_passage(demo_kb):
    hit = top_source(demo_kb, "中文关键词检索为什么需要分词？")
    assert hit.source == "检索增强生成入门.md" and "分词" in hit.text
    assert hit.heading_path == ("检索增强生成入门", "关键词检索与中文分词")


def test_english_question_finds_chinese_passage_by_vector(demo_kb):
    hit = top_source(demo_kb, "Is my data uploaded to a third-party server?", mode="vector")
    assert hit.source == "产品常见问题.html" and "离线" in hit.text


def test_chinese_question_finds_english_passage(demo_kb):
    hit = top_source(demo_kb, "每年有多少天带薪年假？")
    assert hit.source == "employee-handbook.txt" and "15 days" in hit.text


def test_keyword_mode_finds_exact_numbers(demo_kb):
    hit = top_source(demo_kb, "300 EUR", mode="lexical")
    assert "300 EUR" in hit.text
