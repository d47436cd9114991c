from zhiku.answer.rerank import LlmJudge, rerank
from zhiku.types import Hit, StoredChunk, Trace

from .fake_generator import ScriptedGenerator


def hits(*texts):
    return [Hit(i, 1.0 / i, StoredChunk(i, f"c{i}", "a.md", "/a.md", i, t, (), 0, len(t)), Trace(lexical_rank=i))
            for i, t in enumerate(texts, 1)]


class FixedScores:
    def __init__(self, scores):
        self.scores = scores
        self.seen = None

    def rerank(self, query, documents):
        self.seen = documents
        return self.scores


def test_reranks_the_top_and_keeps_the_tail_in_order():
    scorer = FixedScores([0.1, 0.9, 0.5])
    out = rerank("q", hits("a", "b", "c", "d"), scorer, top=3)
    assert [h.chunk.text for h in out] == ["b", "c", "a", "d"]
    assert [h.rank for h in out] == [1, 2, 3, 4]
    assert out[0].trace.lexical_rank == 2  # the retrieval trace survives
    assert scorer.seen == ["a", "b", "c"]


def test_ties_keep_retrieval_order():
    out = rerank("q", hits("a", "b", "c"), FixedScores([1.0, 0.0, 1.0]), top=3)
    assert [h.chunk.text for h in out] == ["a", "c", "b"]


def test_llm_judge_reads_yes_and_no_in_both_languages():
    gen = ScriptedGenerator(lambda m: "是" if "评估" in m[-1].content else "否")
    assert LlmJudge(gen).rerank("做应用先做什么？", ["先把评估做好", "数据决定上限"]) == [1.0, 0.0]
    gen_en = ScriptedGenerator(lambda m: "Yes." if "eval" in m[-1].content else "No")
    assert LlmJudge(gen_en).rerank("What comes first?", ["eval first", "data"]) == [1.0, 0.0]
    assert gen_en.calls[0][1].max_tokens == 2 and gen_en.calls[0][1].temperature == 0.0
