"""The HSK benchmark's question-set builder (bench/hsk_data.py) on a handful of hand-made records."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import hsk_data  # noqa: E402

from zhiku.evaluate.dataset import load_dataset  # noqa: E402


def rec(id_: str, zh: str, en: str, words: str) -> dict:
    return {"id": id_, "chinese": zh, "translation": {"en": en},
            "tokens": [{"word": w, "pinyin": "", "gloss_en": ""} for w in words.split()]}


RECORDS = [
    rec("hsk1-0001", "他用鼠标搜索资料。", "He searches with a mouse.", "他 用 鼠标 搜索 资料"),
    rec("hsk1-0002", "我用鼠标搜索资料和图片。", "I search with a mouse.", "我 用 鼠标 搜索 资料 和 图片"),
    rec("hsk1-0003", "这条路不通。", "This road is blocked.", "这 条 路 不 通"),
    rec("hsk1-0004", "这条路不通。", "The road is closed.", "这 条 路 不 通"),  # duplicate sentence
    rec("hsk1-0005", "这是一场误会。", "This is a misunderstanding.", "这 是 一场 误会"),
    rec("hsk1-0006", "这是一场误解。", "This is a misunderstanding.", "这 是 一场 误解"),  # same English
    rec("hsk1-0007", "他远远超过了别人。", "PH", "他 远远 超过 了 别人"),  # placeholder translation
    rec("hsk1-0008", "你好！", "Hello!", "你好"),  # one word: no keyword query
]


def sources(case: dict) -> list[str]:
    return [e["source"] for e in case["evidence"]]


def test_keyword_queries_and_their_relevant_sets():
    cases, stats = hsk_data.zh_keyword_cases(RECORDS)
    by_id = {c["id"]: c for c in cases}
    # rarest multi-character words first: 鼠标/搜索/资料 occur in two sentences, so both are relevant
    assert by_id["zh-keyword-hsk1-0001"]["question"] == "鼠标 搜索 资料"
    assert sources(by_id["zh-keyword-hsk1-0001"]) == ["hsk1-0001.txt", "hsk1-0002.txt"]
    # the second sentence chose 图片 (rarer), so only it is relevant
    assert "图片" in by_id["zh-keyword-hsk1-0002"]["question"].split()
    assert sources(by_id["zh-keyword-hsk1-0002"]) == ["hsk1-0002.txt"]
    # a duplicated sentence: one case, both files relevant; function characters (这/不) never chosen
    road = [c for c in cases if "hsk1-0003.txt" in sources(c)]
    assert len(road) == 1 and sources(road[0]) == ["hsk1-0003.txt", "hsk1-0004.txt"]
    assert set(road[0]["question"].split()) == {"条", "路", "通"}
    assert "zh-keyword-hsk1-0008" not in by_id and stats["too_few_words"] == 1
    for c in cases:  # every relevant sentence really holds every word, and no other sentence does
        words = c["question"].split()
        holding = sorted(hsk_data.file_name(r) for r in RECORDS if all(w in r["chinese"] for w in words))
        assert sources(c) == holding


def test_keyword_queries_with_too_many_relevant_are_skipped():
    cases, stats = hsk_data.zh_keyword_cases(RECORDS, max_relevant=1)
    assert all(len(c["evidence"]) == 1 for c in cases)
    assert stats["too_many_relevant"] == 2  # 鼠标 搜索 资料 (2 files) and 条 路 通 (2 copies)


def test_en2zh_and_exact_sets():
    en, stats = hsk_data.en2zh_cases(RECORDS)
    by_q = {c["question"]: c for c in en}
    assert sources(by_q["This is a misunderstanding."]) == ["hsk1-0005.txt", "hsk1-0006.txt"]
    assert sources(by_q["This road is blocked."]) == ["hsk1-0003.txt", "hsk1-0004.txt"]
    assert "PH" not in by_q and stats == {"placeholder_translation": 1, "shared_translation": 1}
    exact = hsk_data.zh_exact_cases(RECORDS)
    assert len(exact) == 7  # 8 records, 7 distinct sentences
    road = next(c for c in exact if c["question"] == "这条路不通。")
    assert sources(road) == ["hsk1-0003.txt", "hsk1-0004.txt"]
    assert all(e["text"] == road["question"] for e in road["evidence"])


def test_written_sets_load_in_the_eval_format(tmp_path):
    sets, info = hsk_data.build_sets(RECORDS, 3, seed=0)
    assert [info[n]["cases"] for n in hsk_data.SETS] == [3, 3, 3]
    assert sets == hsk_data.build_sets(RECORDS, 3, seed=0)[0]  # deterministic
    hsk_data.write_jsonl(sets["zh-exact"], tmp_path / "q.jsonl")
    ds = load_dataset(tmp_path / "q.jsonl")
    assert not ds.problems and len(ds.cases) == 3 and all(c.answerable and c.evidence for c in ds.cases)
    assert hsk_data.write_corpus(RECORDS, tmp_path / "corpus") == 8
    assert hsk_data.write_corpus(RECORDS, tmp_path / "corpus") == 0  # unchanged files are left alone
    assert (tmp_path / "corpus" / "hsk1-0001.txt").read_text(encoding="utf-8") == "他用鼠标搜索资料。\n"
