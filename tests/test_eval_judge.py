"""Model-as-judge with a FAKE scripted generator: parsing, what the judge sees, both-order pairwise, agreement."""
from __future__ import annotations

import pytest

from zhiku.evaluate.dataset import Case, Evidence
from zhiku.evaluate.judge import (ANSWER_CHARS, Judge, agreement, length_correlation, parse_choice, parse_scores,
                                  reference_for, summarise)

from .fake_generator import ScriptedGenerator

Q = "李沐认为做大模型应用首先要把什么做好？"
REF = "评估（原文：想要做应用最首要的是先把评估工作做好）"
PASSAGE = "想要做应用最首要的是先把评估工作做好。数据决定上限。"


@pytest.mark.parametrize("raw, expected", [
    ("正确：是\n忠实：是", (1.0, 1.0)),
    ("正确：部分\n忠实：否", (0.5, 0.0)),
    ("正确：不正确\n忠实：部分正确", (0.0, 0.5)),  # negation / "partial" win over the 正确 they contain
    ("**正确**: 是\n**忠实度**：否", (1.0, 0.0)),
    ("正确：是 忠实：否", (1.0, 0.0)),  # both on one line
    ("正确：\n是\n忠实：\n部分", (1.0, 0.5)),  # verdict on the line after its label
    ("Correct: yes\nSupported: partial", (1.0, 0.5)),
    ("Correctness: 4/5\nFaithfulness: 2", (0.75, 0.25)),
    ("Correct: no, the answer names data.\nSupported: yes", (0.0, 1.0)),
    ("正确：（是）\n忠实：基本正确", (1.0, 1.0)),
    ("正确：全参数微调不需要8张A100。\n忠实：是", (None, 1.0)),  # a sentence holding 不 is not a verdict
    ("是", (1.0, None)),  # a bare verdict is correctness only
    ("部分", (0.5, None)),
    ("正确：（是/部分/否）\n忠实：（是/部分/否）", (None, None)),  # the rubric echoed back
    ("要先把评估工作做好。", (None, None)),  # the model answered the question instead
    ("", (None, None)),
    ("%%%\n\n@@", (None, None)),
])
def test_parse_scores(raw, expected):
    assert parse_scores(raw) == expected


def test_score_prompt_holds_reference_answer_and_passages_at_temperature_zero():
    gen = ScriptedGenerator("正确：是\n忠实：部分")
    judge = Judge(gen)
    s = judge.score(Q, "要先把评估工作做好[1]。", REF, [PASSAGE])
    assert (s.correctness, s.faithfulness, s.parsed, s.correct) == (1.0, 0.5, True, True)
    messages, sampling = gen.calls[0]
    user = messages[-1].content
    assert messages[0].role == "system" and "长短" in messages[0].content  # the rubric says length is no merit
    assert REF in user and "要先把评估工作做好。" in user and PASSAGE in user and Q in user
    assert "[1]" in user and "做好[1]" not in user  # passages are numbered; the answer's markers are gone
    assert sampling.temperature == 0.0


def test_caller_sampling_keeps_its_seed_but_not_its_temperature():
    gen = ScriptedGenerator("正确：是\n忠实：是")
    from zhiku.backends.generator import Sampling
    Judge(gen, Sampling(temperature=0.7, seed=9, max_tokens=500)).score(Q, "评估", REF, [PASSAGE])
    _, sampling = gen.calls[0]
    assert (sampling.temperature, sampling.seed) == (0.0, 9) and sampling.max_tokens < 100


def test_english_question_gets_the_english_prompt():
    gen = ScriptedGenerator("Correct: yes\nSupported: yes")
    Judge(gen).score("What sets the ceiling of a model?", "Data [1].", "data", ["数据决定上限。"])
    system, user = (m.content for m in gen.calls[0][0])
    assert "Reference answer: data" in user and "Answer: Data." in user and "not length" in system


def test_long_answer_is_capped_with_a_note_and_markers_stripped():
    gen = ScriptedGenerator("正确：是\n忠实：是")
    long_answer = "要先把评估工作做好[1]。" + "此外还有很多需要注意的地方[2][3]。" * 60
    Judge(gen).score(Q, long_answer, REF, [PASSAGE])
    user = gen.calls[0][0][-1].content
    shown = user.split("回答：", 1)[1].split("\n\n请输出", 1)[0]
    assert "[2]" not in shown and "[1]" not in shown
    assert shown.endswith("（以下省略，超出部分不计分）")
    assert ANSWER_CHARS <= len(shown) <= ANSWER_CHARS + 20


def test_garbage_output_is_not_a_crash_and_not_parsed():
    s = Judge(ScriptedGenerator("I think this is a good answer overall.")).score(Q, "评估", REF, [PASSAGE])
    assert (s.correctness, s.faithfulness, s.parsed, s.correct) == (None, None, False, None)
    assert s.raw == "I think this is a good answer overall."


def test_correctness_alone_is_not_parsed_when_passages_were_given_but_is_without_them():
    with_passages = Judge(ScriptedGenerator("是")).score(Q, "评估", REF, [PASSAGE])
    assert with_passages.correctness == 1.0 and with_passages.faithfulness is None and not with_passages.parsed
    gen = ScriptedGenerator("正确：是\n忠实：否")
    without = Judge(gen).score(Q, "评估", REF, [])
    assert without.faithfulness is None and without.parsed  # nothing to be faithful to
    assert "资料：\n（无）" in gen.calls[0][0][-1].content


# -- pairwise --------------------------------------------------------------------------------------

GOOD, BAD = "要先把评估工作做好。", "首先要把数据收集做好，数据决定了上限，这一点非常非常重要。"


def _answers(messages):
    user = messages[-1].content
    first = user.split("回答1：", 1)[1].split("\n", 1)[0]
    second = user.split("回答2：", 1)[1].split("\n", 1)[0]
    return first, second


def test_a_judge_that_always_prefers_the_first_position_is_inconsistent():
    gen = ScriptedGenerator("1")
    v = Judge(gen).pairwise(Q, GOOD, BAD, REF)
    assert v.winner == "inconsistent" and not v.consistent
    assert (v.first, v.second) == ("a", "b")  # each order's vote, mapped back to a/b
    assert _answers(gen.calls[0][0]) == (GOOD, BAD) and _answers(gen.calls[1][0]) == (BAD, GOOD)


def test_a_judge_that_prefers_the_better_answer_in_both_orders_names_it():
    gen = ScriptedGenerator(lambda m: "1" if _answers(m)[0] == GOOD else "回答2更好")
    assert Judge(gen).pairwise(Q, GOOD, BAD, REF).winner == "a"
    assert Judge(gen).pairwise(Q, BAD, GOOD, REF).winner == "b"


def test_pairwise_tie_and_unreadable():
    assert Judge(ScriptedGenerator("同")).pairwise(Q, GOOD, BAD, REF).winner == "tie"
    v = Judge(ScriptedGenerator("嗯……")).pairwise(Q, GOOD, BAD, REF)
    assert v.winner == "inconsistent" and v.first is None and v.raw_first == "嗯……"


@pytest.mark.parametrize("raw, expected", [("1", 1), ("2", 2), ("**2**", 2), ("回答1", 1), ("Answer B", 2),
                                           ("same", 0), ("两个一样", 0), ("1 and 2", None), ("", None),
                                           ("Answer 2 is a better answer", 2), ("10", None)])
def test_parse_choice(raw, expected):
    assert parse_choice(raw) == expected


# -- agreement -------------------------------------------------------------------------------------

def test_agreement_and_kappa_hand_computed():
    judge = [True, True, True, False, False, True, True, False, True, True]
    kw = [True, True, False, False, True, True, True, False, True, False]
    # agree on cases 1,2,4,6,7,8,9 → p_o = 7/10 = 0.7
    # judge yes 7/10, keyword yes 6/10 → p_e = 0.7·0.6 + 0.3·0.4 = 0.42 + 0.12 = 0.54
    # kappa = (0.7 − 0.54) / (1 − 0.54) = 0.16 / 0.46 = 0.347826…
    a = agreement(judge, kw)
    assert a["n"] == 10 and a["agreement"] == pytest.approx(0.7) and a["kappa"] == pytest.approx(0.16 / 0.46)


def test_agreement_degenerate_and_missing():
    # both raters say "correct" every time: p_o = 1, p_e = 1·1 + 0·0 = 1 → kappa 0/0 = None
    assert agreement([True] * 4, [True] * 4) == {"n": 4, "agreement": 1.0, "kappa": None}
    # constant but opposite: p_o = 0, p_e = 1·0 + 0·1 = 0 → kappa = 0
    assert agreement([True] * 3, [False] * 3) == {"n": 3, "agreement": 0.0, "kappa": 0.0}
    # perfect agreement with variety: p_o = 1, p_e = .5·.5 + .5·.5 = .5 → kappa 1
    assert agreement([True, False, None], [True, False, True])["kappa"] == pytest.approx(1.0)  # None pair left out
    assert agreement([], []) == {"n": 0, "agreement": None, "kappa": None}
    with pytest.raises(ValueError):
        agreement([True], [True, False])


def test_length_correlation():
    # score ranks 1, 2, 3.5, 3.5 (mean 2.5 → deviations −1.5, −0.5, 1, 1); length ranks 1..4 (−1.5, −0.5, .5, 1.5)
    # cov = 2.25 + 0.25 + 0.5 + 1.5 = 4.5; Σdx² = 4.5, Σdy² = 5 → r = 4.5 / √22.5 = 0.948683…
    assert length_correlation([0.0, 0.5, 1.0, 1.0], [10, 20, 30, 40]) == pytest.approx(4.5 / 22.5 ** 0.5)
    assert length_correlation([1.0, 0.0, 0.5], [5, 50, 20]) == pytest.approx(-1.0)
    assert length_correlation([1.0, 1.0, 1.0], [1, 2, 3]) is None  # constant scores
    assert length_correlation([1.0, None, 0.0], [1, 2, 3]) is None  # two pairs only


# -- references and run records --------------------------------------------------------------------

def test_reference_for_cases_and_lines():
    case = Case("d03", "辛顿认为 AI 最有前景的应用领域是哪些？", True, (("医疗",), ("新材料", "材料")),
                (Evidence("x.md", "医疗保健和新材料"),))
    assert reference_for(case) == "医疗 或 新材料、材料（原文：医疗保健和新材料）"
    line = {"question": "What sets the ceiling?", "answer_keywords": [["data"]], "evidence": [],
            "reference_answer": " Data sets the ceiling. "}
    assert reference_for(line) == "Data sets the ceiling."
    assert reference_for({"question": "GPT-4 有多少参数？", "answerable": False}) == "资料中未提及。"
    assert reference_for({"question": "Who?", "answer_keywords": [["Hinton"]]}) == "Hinton"


def test_judge_case_and_summarise():
    def grade(messages):
        return "正确：是\n忠实：是" if "评估" in messages[-1].content.split("回答：")[1] else "正确：否\n忠实：否"

    gen = ScriptedGenerator(grade)
    judge = Judge(gen)
    case = Case("d01", Q, True, (("评估",),), (Evidence("a.md", "先把评估工作做好"),))
    records = []
    for answer, acc in (("要先把评估工作做好[1]。", 1.0), ("数据[1]。", 0.0), ("先做评估[1]。", 0.0)):
        rec = {"question": Q, "answer": answer, "answerable": True, "metrics": {"accuracy": acc},
               "citations": [{"n": 1, "text": PASSAGE}], "hits": []}
        rec["judge"] = judge.judge_case(case, rec)
        records.append(rec)
    assert PASSAGE in gen.calls[0][0][-1].content and "评估" in gen.calls[0][0][-1].content
    out = summarise(records, model="fake")
    assert out["judge_correctness"] == pytest.approx(2 / 3) and out["judge_faithfulness"] == pytest.approx(2 / 3)
    # judge T,F,T vs keywords T,F,F: p_o = 2/3; p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9; kappa = (2/9)/(5/9) = 0.4
    assert out["judge"]["agreement"] == pytest.approx(2 / 3) and out["judge"]["kappa"] == pytest.approx(0.4)
    assert out["judge"]["n"] == 3 and out["judge"]["model"] == "fake" and out["judge"]["unparsed"] == 0
