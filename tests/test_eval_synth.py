"""Synthetic question sets from a real (FAKE-embedder) knowledge base and a FAKE scripted generator."""
from __future__ import annotations

import json

import pytest

from zhiku.errors import GeneratorError, GeneratorUnavailable, UsageError
from zhiku.evaluate.dataset import holds_evidence, load_dataset, matches_keywords
from zhiku.evaluate.synth import Draft, eligible, generate_cases, keywords, locate, parse_draft, write_cases
from zhiku.kb import KnowledgeBase

from .fake_generator import ScriptedGenerator
from .test_kb import write

DOCS = {
    "讲座.md": ("# 李沐讲座\n\n数据决定上限，模型只是逼近这个上限。想要做应用，最首要的是要先把评估工作做好，"
              "评估需要批量测试的程序，还需要一个覆盖真实问题的测试集。\n"),
    "采样.md": ("# 采样\n\n温度越大，概率分布越平滑，生成的内容越多样；温度越小，模型越倾向于选择概率最高的词，"
              "输出更稳定，也更容易重复出同样的答案。\n"),
    "微调.md": ("# 微调\n\n全参数微调一般要8张A100显卡，而LoRA只训练低秩矩阵，单张消费级显卡就能完成，"
              "成本低很多，适合个人开发者在自己的电脑上尝试。\n"),
    "方法.md": ("# 方法\n\n做评测时，**评估集的质量**比规模更重要：一百条精心标注的问题，胜过一万条随手生成的问题，"
              "因为错误的标注会误导所有的结论。\n"),
    "辛顿.md": ("# 辛顿\n\n辛顿认为人工智能最有前景的应用领域是医疗保健和新材料，这两个领域会因为 AI 而发生巨大的变化，"
              "他也提醒大家认真关注其中的风险。\n"),
    "杂项.md": ("# 杂项\n\n这一段用来测试模型输出乱码的情况，模型没有按照要求的三行格式输出问题、答案和证据，"
              "应当被丢弃，而不是让程序崩溃或者写出坏数据。\n"),
    "short.md": "# 短\n\n太短了。\n",
    "code.md": "```\nx = [1, 2, 3] + {4: 5} * (6 - 7) / 8; y = 9 ** 10 == 11 != 12 >= 13 <= 14 && 15 || 16;\n```\n",
}

# One scripted reply per document, chosen by a phrase of the passage in the prompt.
REPLIES = {
    "数据决定上限": "问题：李沐认为什么决定了模型效果的上限？\n答案：数据\n证据：数据决定上限，模型只是逼近这个上限。",
    "温度越大": "问题：温度变大时概率分布会怎样？\n答案：更平滑\n证据：温度升高会让分布变得更加平滑。",  # paraphrase
    "全参数微调": "问题：全参数微调要几张显卡？\n答案：8张A100\n证据：LoRA只训练低秩矩阵，单张消费级显卡就能完成",
    "评估集的质量": ("**问题**：做评测时什么比规模更重要？\n**答案**：评估集的质量\n"
                "**证据**：“做评测时，评估集的质量比规模更重要”"),
    "医疗保健": ("问题：辛顿认为医疗保健和新材料是什么？\n答案：医疗保健和新材料\n"
             "证据：辛顿认为人工智能最有前景的应用领域是医疗保健和新材料"),
    "乱码": "好的！这是一道题：模型应该怎么做？",
}


def reply(messages):
    passage = messages[-1].content
    return next(r for key, r in REPLIES.items() if key in passage)


@pytest.fixture
def kb(tmp_path, isolated, fake_embedder):
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    with KnowledgeBase.open("t", home=isolated, embedder=fake_embedder) as kb:
        kb.add([tmp_path / "docs"])
        yield kb


def test_keeps_valid_cases_and_counts_each_drop_reason(kb):
    gen = ScriptedGenerator(reply)
    result = generate_cases(kb, gen, n=10, seed=0)
    assert result.eligible == 6 and result.attempts == 6 == len(gen.calls)  # short.md and code.md skipped
    assert result.drops == {"answer_in_question": 1, "answer_not_in_evidence": 1, "evidence_not_in_chunk": 1,
                            "unparsed": 1}
    by_answer = {c["reference_answer"]: c for c in result.cases}
    assert set(by_answer) == {"数据", "评估集的质量"}
    data = by_answer["数据"]
    assert data["synthetic"] is True and data["answerable"] is True
    assert data["evidence"] == [{"source": "讲座.md", "text": "数据决定上限，模型只是逼近这个上限。"}]
    assert data["question"] == "李沐认为什么决定了模型效果的上限？" and data["answer_keywords"] == [["数据"]]
    # the model dropped the ** of the chunk: the evidence is snapped to the chunk's own text
    snapped = by_answer["评估集的质量"]["evidence"][0]["text"]
    assert snapped == "做评测时，**评估集的质量**比规模更重要" and result.snapped == 1
    assert [c["id"] for c in result.cases] == ["syn-001", "syn-002"]
    for c in result.cases:
        chunk = next(ch for ch in kb.store.iter_chunks() if ch.chunk_id == c["chunk_id"])
        assert holds_evidence(chunk.source, chunk.text, _evidence(c))
        assert matches_keywords(c["reference_answer"], tuple(tuple(a) for a in c["answer_keywords"]))


def _evidence(case):
    from zhiku.evaluate.dataset import Evidence
    return tuple(Evidence(e["source"], e["text"]) for e in case["evidence"])


def test_prompt_shows_the_chunk_and_asks_for_three_lines(kb):
    gen = ScriptedGenerator(reply)
    generate_cases(kb, gen, n=1, seed=0)
    messages, sampling = gen.calls[0]
    assert "问题：" in messages[0].content and "证据：" in messages[0].content
    assert any(key in messages[-1].content for key in REPLIES) and sampling.temperature == 0.0


def test_written_file_loads_as_a_question_set(kb, tmp_path):
    result = generate_cases(kb, ScriptedGenerator(reply), n=10, seed=0)
    out = write_cases(result.cases, tmp_path / "out" / "syn.jsonl")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and "数据决定上限" in lines[0] + lines[1]  # UTF-8, not \\u escapes
    ds = load_dataset(out)
    assert ds.problems == () and len(ds.cases) == 2
    assert all(c.synthetic and c.answerable and c.reference_answer and c.evidence for c in ds.cases)
    with pytest.raises(UsageError) as err:
        write_cases(result.cases, out)
    assert "--force" in err.value.hint
    write_cases(result.cases[:1], out, overwrite=True)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_deterministic_with_the_seed_and_spread_over_sources(kb):
    def order(seed):
        gen = ScriptedGenerator(reply)
        generate_cases(kb, gen, n=10, seed=seed)
        return [m[-1].content for m, _ in gen.calls]

    assert order(0) == order(0)
    assert len({tuple(order(s)) for s in range(6)}) > 1  # the seed changes which chunks come first
    one = generate_cases(kb, ScriptedGenerator(reply), n=2, seed=3)
    again = generate_cases(kb, ScriptedGenerator(reply), n=2, seed=3)
    assert json.dumps(one.cases, ensure_ascii=False) == json.dumps(again.cases, ensure_ascii=False)


def test_stops_at_n_and_at_the_attempt_budget(kb):
    gen = ScriptedGenerator(reply)
    result = generate_cases(kb, gen, n=1, seed=0)
    assert len(result.cases) == 1 and result.attempts == len(gen.calls) <= 6
    bad = ScriptedGenerator("问题：随便问问\n答案：没有\n证据：不存在的句子")
    result = generate_cases(kb, bad, n=1, seed=0)
    assert result.cases == [] and result.attempts == 3 and result.drops == {"evidence_not_in_chunk": 3}  # 3 × n
    seen = []
    generate_cases(kb, ScriptedGenerator(reply), n=10, seed=0, max_attempts=2, progress=lambda *a: seen.append(a))
    assert [a[:2] for a in seen] == [(1, 2), (2, 2)]


def test_generator_errors_are_skipped_once_but_raised_when_they_repeat(kb):
    calls = {"n": 0}

    def flaky(messages):
        calls["n"] += 1
        if calls["n"] == 1:
            raise GeneratorError("endpoint hiccup")
        return reply(messages)

    result = generate_cases(kb, ScriptedGenerator(flaky), n=10, seed=0)
    assert result.drops["generator_error"] == 1 and result.cases

    def down(messages):
        raise GeneratorError("endpoint refused the connection")

    with pytest.raises(GeneratorError):
        generate_cases(kb, ScriptedGenerator(down), n=5, seed=0)
    gone = ScriptedGenerator(lambda m: (_ for _ in ()).throw(GeneratorUnavailable("no model installed")))
    with pytest.raises(GeneratorUnavailable):
        generate_cases(kb, gone, n=5, seed=0)
    assert len(gone.calls) == 1


def test_n_must_be_positive(kb):
    with pytest.raises(UsageError):
        generate_cases(kb, ScriptedGenerator(reply), n=0)


# -- the pieces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "问题：什么决定上限？\n答案：数据\n证据：数据决定上限。",
    "问题: 什么决定上限？\n答案: 「数据」\n证据: \"数据决定上限。\"",
    "1. **问题**：什么决定上限？\n2. **答案**：数据。\n3. **证据**：数据决定上限。\n\n希望对你有帮助！",
    "问题：\n什么决定上限？\n答案：\n数据\n证据：\n数据决定上限。",
    '{"question": "什么决定上限？", "answer": "数据", "evidence": "数据决定上限。"}',
])
def test_parse_draft_lenient(raw):
    d = parse_draft(raw)
    assert d is not None and d.question == "什么决定上限？" and d.answer.rstrip("。") == "数据"
    assert d.evidence == "数据决定上限。"


def test_parse_draft_english_and_missing():
    d = parse_draft("Question: What sets the ceiling?\nAnswer: Data\nEvidence: Data sets the ceiling.")
    assert d == Draft("What sets the ceiling?", "Data", "Data sets the ceiling.")
    assert parse_draft("问题：什么决定上限？\n答案：数据") is None
    assert parse_draft("") is None and parse_draft("{not json") is None


def test_locate_exact_snapped_widened_or_none():
    chunk = "数据决定上限，模型只是\n逼近这个上限。想要做应用，最首要的是要先把**评估工作**做好。"
    assert locate("模型只是逼近这个上限。", chunk) == ("模型只是\n逼近这个上限。", False)  # whitespace ignored
    assert locate("要先把评估工作做好", chunk) == ("要先把**评估工作**做好", True)  # markdown ignored
    # one character changed out of a long sentence: Dice ≥ 0.85 → the chunk sentence
    near = locate("想要做应用，最首要的事是要先把评估工作做好。", chunk)
    assert near == ("想要做应用，最首要的是要先把**评估工作**做好。", True)
    assert locate("评估很重要。", chunk) == (None, False)  # a paraphrase
    # evidence too short to identify a passage: widened to its sentence
    assert locate("评估工作", chunk)[0] == "想要做应用，最首要的是要先把**评估工作**做好。"


def test_keywords_drop_question_terms_and_sub_words(kb):
    seg = kb.segmenter
    ev = "数据质量和多样性决定了上限。"
    assert keywords("数据质量和多样性", "什么决定了上限？", ev, seg) == ["数据", "质量", "多样性"]
    assert keywords("数据质量和多样性", "数据的什么决定了上限？", ev, seg) == ["质量", "多样性"]
    assert keywords("上限", "什么决定了上限？", ev, seg) == ["上限"]  # nothing left: the whole answer


def test_eligible_chunks():
    assert eligible("数据决定上限，模型只是逼近这个上限。" * 4)
    assert not eligible("太短了。")
    assert not eligible("| 1 | 2 | 3 |\n" * 10)


def test_check_narrows_duplicates_and_rejects_easy_or_long(kb):
    from zhiku.evaluate.synth import check
    chunk = next(c for c in kb.store.iter_chunks() if c.source == "讲座.md")
    seen: set[str] = set()
    case, reason, _ = check(Draft("做应用最首要的是什么？", "评估工作", chunk.text), chunk, kb.segmenter, seen)
    # the whole chunk was copied as evidence: narrowed to the sentence that holds the answer
    assert case["evidence"][0]["text"] == ("想要做应用，最首要的是要先把评估工作做好，评估需要批量测试的程序，"
                                           "还需要一个覆盖真实问题的测试集。")
    assert case["answer_keywords"] == [["评估", "工作"]] and reason == ""
    assert check(Draft("做应用最首要的是什么？", "评估工作", "评估工作"), chunk, kb.segmenter, seen)[1] == "duplicate"
    long_answer = "想要做应用，最首要的是要先把评估工作做好，评估需要批量测试的程序，还需要一个覆盖真实问题的测试集"
    assert check(Draft("李沐怎么说？", long_answer, long_answer), chunk, kb.segmenter, set())[1] == "answer_too_long"
    assert check(Draft("上限？", "数据", "数据决定上限"), chunk, kb.segmenter, set())[1] == "trivial_question"
    assert check(None, chunk, kb.segmenter, set())[1] == "unparsed"


# -- the real bundled 0.5B model (slow) ------------------------------------------------------------

@pytest.mark.slow
def test_real_small_model_cases_and_judgements_keep_their_invariants(kb, tmp_path):
    """Whatever the real 0.5B writes, kept cases are valid and the judge neither crashes nor invents a win.

    Measured on 2 cores: about 5 s per chunk and 1–3 s per judgement with the 0.5B.
    """
    from zhiku.backends.llama_generator import LlamaCppGenerator
    from zhiku.backends.model_packs import default_model_dir, resolve_model
    from zhiku.evaluate.dataset import Evidence
    from zhiku.evaluate.judge import Judge

    llm = LlamaCppGenerator(resolve_model("qwen2.5-0.5b", default_model_dir()), context_window=1024,
                            label="qwen2.5-0.5b")
    result = generate_cases(kb, llm, n=2, seed=0, max_attempts=3)
    assert result.attempts == 3 or len(result.cases) == 2
    assert len(result.cases) + sum(result.drops.values()) == result.attempts
    for c in result.cases:
        chunk = next(ch for ch in kb.store.iter_chunks() if ch.chunk_id == c["chunk_id"])
        assert holds_evidence(chunk.source, chunk.text, tuple(Evidence(**e) for e in c["evidence"]))
        assert c["reference_answer"].lower().replace(" ", "") in c["evidence"][0]["text"].lower().replace(" ", "")
    assert load_dataset(write_cases(result.cases, tmp_path / "real.jsonl")).problems == ()

    judge = Judge(llm)
    q = "李沐认为什么决定了模型效果的上限？"
    s = judge.score(q, "数据决定上限[1]。", "数据", ["数据决定上限，模型只是逼近这个上限。"])
    assert s.correctness in (None, 0.0, 0.25, 0.5, 0.75, 1.0) and s.parsed == (s.correctness is not None
                                                                                and s.faithfulness is not None)
    v = judge.pairwise(q, "数据。", "算力。", "数据")
    assert v.winner in ("a", "tie", "inconsistent")  # "b" would be a consistent win for the wrong answer
