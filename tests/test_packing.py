from zhiku.answer.packing import MIN_PASSAGE_TOKENS, pack, render
from zhiku.backends.generator import estimate_tokens
from zhiku.types import Hit, StoredChunk, Trace

SOURCE = ("李沐认为想要做应用最最最首要的是要先把评估工作做好。数据决定上限，模型只是逼近这个上限。"
          "训练的时候要注意数据的质量，而不是只看数量。评估集要覆盖真实的用户问题。")


def hit(rank, start, end, path="/kb/a.md", text=None, heading=("讲座",)):
    chunk = StoredChunk(rank, f"c{rank}", path.rsplit("/", 1)[-1], path, rank, text or SOURCE[start:end],
                        heading, start, end)
    return Hit(rank, 1.0 / rank, chunk, Trace())


def test_overlapping_chunks_of_one_source_merge_into_one_passage():
    hits = [hit(1, 20, 60), hit(2, 0, 30), hit(3, 10, 40, path="/kb/b.md")]
    passages = pack(hits, 2000, 5)
    assert [p.n for p in passages] == [1, 2]
    assert passages[0].text == SOURCE[0:60]  # overlap appears once
    assert passages[0].chunk_ids == ("c1", "c2")
    assert passages[1].source == "b.md"


def test_chunks_with_a_gap_stay_separate_passages():
    passages = pack([hit(1, 0, 20), hit(2, 40, 60)], 2000, 5)
    assert [p.text for p in passages] == [SOURCE[0:20], SOURCE[40:60]]


def test_budget_is_respected_and_best_hits_come_first():
    hits = [hit(i, 0, 80, path=f"/kb/{i}.md") for i in range(1, 8)]
    budget = 200
    passages = pack(hits, budget, 10)
    assert passages and [p.hits[0].rank for p in passages] == sorted(p.hits[0].rank for p in passages)
    assert sum(estimate_tokens(p.render()) for p in passages) <= budget
    assert len(passages) < 7


def test_max_passages_caps_distinct_passages():
    hits = [hit(i, 0, 30, path=f"/kb/{i}.md") for i in range(1, 8)]
    assert len(pack(hits, 10_000, 3)) == 3


def test_a_passage_too_long_for_the_rest_of_the_budget_is_cut_at_a_sentence():
    long = hit(1, 0, len(SOURCE))
    passages = pack([long], MIN_PASSAGE_TOKENS + 10, 5)
    assert len(passages) == 1
    assert passages[0].text.endswith("。…")
    assert estimate_tokens(passages[0].render()) <= MIN_PASSAGE_TOKENS + 10


def test_render_labels_passages_with_number_file_and_heading():
    text = render(pack([hit(1, 0, 20)], 500, 5))
    assert text.startswith("[1] a.md › 讲座\n")


def test_focus_keeps_only_sentences_with_question_terms_and_marks_gaps():
    passages = pack([hit(1, 0, len(SOURCE)), hit(2, 0, 20, path="/kb/b.md", text="这里没有相关的词。")],
                    2000, 5, focus_terms=["数据", "上限"])
    assert len(passages) == 1  # the second passage holds no term and is dropped
    p = passages[0]
    assert p.text == "…数据决定上限，模型只是逼近这个上限。训练的时候要注意数据的质量，而不是只看数量。…"
    assert p.as_citation()["text"] == SOURCE and p.as_citation()["excerpt"] == p.text


def test_focus_keeps_the_best_passage_whole_when_nothing_matches():
    passages = pack([hit(1, 0, 30)], 2000, 5, focus_terms=["量子"])
    assert passages[0].text == SOURCE[0:30]
