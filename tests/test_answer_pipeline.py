"""The answer step with the real store and retrieval, and a FAKE scripted generator (fast, deterministic)."""
from dataclasses import replace

import pytest

from zhiku.answer.pipeline import Answerer, Turn
from zhiku.backends.generator import Sampling
from zhiku.config import AnswerSettings
from zhiku.errors import ContextTooSmall
from zhiku.kb import KnowledgeBase

from .fake_generator import ScriptedGenerator
from .test_kb import write


@pytest.fixture
def kb(tmp_path, isolated, fake_embedder):
    d = tmp_path / "notes"
    write(d / "讲座.md", "# 李沐讲座\n\n想要做应用最最最首要的是要先把评估工作做好。\n\n数据决定上限，模型只是逼近这个上限。\n")
    write(d / "采样.md", "# 采样\n\n温度越大，概率分布越平滑，生成的内容越多样。\n")
    with KnowledgeBase.open("t", home=isolated, embedder=fake_embedder) as kb:
        kb.add([d])
        yield kb


def answerer(kb, gen, **cfg):
    return Answerer(kb, gen, replace(AnswerSettings(), **cfg), Sampling(temperature=0.3, max_tokens=50, seed=7))


def test_cited_answer_maps_numbers_to_passages(kb):
    gen = ScriptedGenerator("做应用首先要把评估工作做好[1]。")
    a = answerer(kb, gen).ask("做应用首先要做好什么？")
    assert a.answer == "做应用首先要把评估工作做好[1]。" and not a.refused
    assert [c["n"] for c in a.citations] == [1]
    assert a.citations[0]["source"] == "讲座.md" and "评估工作" in a.citations[0]["text"]
    assert not a.check["uncited"] and not a.check["unsupported"]
    assert a.timings["first_token_s"] <= a.timings["total_s"]
    messages, sampling = gen.calls[0]
    assert messages[0].role == "system" and "[1]" in messages[-1].content and "做应用首先要做好什么？" in messages[-1].content
    assert (sampling.temperature, sampling.max_tokens, sampling.seed) == (0.3, 50, 7)


def test_citation_to_a_passage_that_was_not_given_is_removed_and_flagged(kb):
    a = answerer(kb, ScriptedGenerator("要先把评估工作做好[1][9]。")).ask("做应用首先要做好什么？")
    assert "[9]" not in a.answer and "[1]" in a.answer
    assert a.check["invalid"] == [9]


def test_unsupported_sentence_is_flagged(kb):
    reply = "要先把评估工作做好[1]。GPT-5 于二〇二五年八月七日在旧金山发布并开源了全部权重[1]。"
    a = answerer(kb, ScriptedGenerator(reply), min_grounding=0.0).ask("做应用首先要做好什么？")
    assert not a.refused
    assert len(a.check["unsupported"]) == 1 and "GPT-5" in a.check["unsupported"][0]["text"]


def test_answer_adding_facts_the_passages_lack_is_withheld(kb):
    reply = "做应用首先要做好的是模型的推理速度优化和分布式部署[1]。"
    a = answerer(kb, ScriptedGenerator(reply)).ask("做应用首先要做好什么？")
    assert a.refused and a.refusal_reason == "ungrounded"
    assert a.answer == "资料中未提及。" and a.draft == reply and a.grounding < 0.4
    grounded = answerer(kb, ScriptedGenerator("做应用首先要把评估工作做好[1]。")).ask("做应用首先要做好什么？")
    assert not grounded.refused and grounded.grounding > 0.8


def test_answer_that_only_restates_the_question_is_withheld(kb):
    a = answerer(kb, ScriptedGenerator("做应用首先要做好什么？[1]")).ask("做应用首先要做好什么？")
    assert a.refused and a.refusal_reason == "ungrounded" and a.grounding == 0.0


def test_model_decline_is_a_refusal(kb):
    a = answerer(kb, ScriptedGenerator("资料中未提及。"), min_evidence=0.0).ask("GPT-5 是哪一天发布的？")
    assert a.refused and a.refusal_reason == "model" and a.hits


def test_weak_evidence_refuses_without_asking_the_model(kb):
    gen = ScriptedGenerator("不该被调用")
    a = answerer(kb, gen, min_evidence=0.5).ask("量子计算机的纠错码怎么设计？")
    assert a.refused and a.refusal_reason == "weak_evidence" and gen.calls == []
    assert a.answer == "资料中未提及。"


def test_english_question_gets_the_english_prompt_and_refusal(kb):
    gen = ScriptedGenerator("x")
    a = answerer(kb, gen, min_evidence=0.99).ask("How do quantum computers correct errors?")
    assert a.answer == "The knowledge base does not say." and a.refused
    answerer(kb, gen, min_evidence=0.0).ask("What does temperature do to sampling?")
    assert "Answer in English" in gen.calls[-1][0][0].content


def test_stream_cut_midway_gives_a_partial_answer_marked_as_such(kb):
    gen = ScriptedGenerator("要先把评估工作做好，这是李沐反复强调的[1]。", cut_after=3)
    a = answerer(kb, gen).ask("做应用首先要做好什么？")
    assert a.partial and "connection closed" in a.error
    assert a.answer == "要先把评估工作做好"  # three 3-character pieces arrived


def test_context_window_too_small_for_the_question_is_a_clear_error(kb):
    gen = ScriptedGenerator("x", context_window=300)
    with pytest.raises(ContextTooSmall) as err:
        answerer(kb, gen).ask("做应用首先要做好什么？" * 20)
    assert "context_window" in err.value.hint


def test_follow_up_is_rewritten_before_retrieval(kb):
    def reply(messages):
        if "改写" in messages[0].content:
            return "温度调大后概率分布会怎样？"
        return "会更平滑[1]。"
    gen = ScriptedGenerator(reply)
    a = answerer(kb, gen).ask("那调大以后呢？", history=[Turn("温度是什么？", "温度控制采样[1]。")])
    assert a.standalone == "温度调大后概率分布会怎样？"
    assert a.hits[0].chunk.source == "采样.md"
    assert "温度是什么？" in gen.calls[0][0][-1].content  # the rewrite saw the history
    assert "问题：温度调大后概率分布会怎样？" in gen.calls[1][0][-1].content  # the model answers the rewrite
    assert "rewrite_s" in a.timings


def test_extractive_answer_needs_no_generator(kb):
    a = answerer(kb, None).ask("做应用首先要做好什么？")
    assert a.mode == "extractive" and "[1]" in a.answer and "评估" in a.answer
    assert a.citations[0]["source"] == "讲座.md"
    assert a.timings["total_s"] < 1.0


def test_empty_question_is_a_usage_error(kb):
    from zhiku.errors import UsageError
    with pytest.raises(UsageError):
        answerer(kb, None).ask("   ")


def test_json_shape(kb):
    d = answerer(kb, ScriptedGenerator("评估[1]。")).ask("做应用首先要做好什么？").as_dict()
    for key in ("question", "answer", "refused", "citations", "hits", "timings"):
        assert key in d
    assert {"n", "source", "chunk_id", "text"} <= set(d["citations"][0])
    assert {"retrieve_s", "first_token_s", "total_s"} <= set(d["timings"])


def _number_of(messages, source_word):
    return next(line[1] for line in messages[-1].content.splitlines() if line.startswith("[") and source_word in line)


def test_citation_to_the_wrong_passage_is_moved_to_the_one_that_supports_it(kb):
    right = answerer(kb, ScriptedGenerator(lambda m: f"温度越大，概率分布越平滑[{_number_of(m, '采样')}]。"),
                     focus=False, min_evidence=0.0).ask("温度越大，概率分布会怎样？")
    assert [c["source"] for c in right.citations] == ["采样.md"] and right.check["corrected"] == []
    wrong = answerer(kb, ScriptedGenerator(lambda m: f"温度越大，概率分布越平滑[{_number_of(m, '讲座')}]。"),
                     focus=False, min_evidence=0.0).ask("温度越大，概率分布会怎样？")
    assert [c["source"] for c in wrong.citations] == ["采样.md"]
    assert len(wrong.check["corrected"]) == 1 and not wrong.check["unsupported"]
