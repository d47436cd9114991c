import pytest

from zhiku.retrieve.fusion import Ranked, positions, rrf
from zhiku.retrieve.highlight import term_spans


def test_rrf_hand_computed():
    lex = Ranked("lexical", [(1, 9.0), (2, 5.0)])
    vec = Ranked("vector", [(2, 0.9), (3, 0.8)])
    fused = dict(rrf([lex, vec], k=60))
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1] == pytest.approx(1 / 61)
    assert fused[3] == pytest.approx(1 / 62)
    assert [r for r, _ in rrf([lex, vec], k=60)] == [2, 1, 3]


def test_rrf_weights_and_ties():
    lex = Ranked("lexical", [(1, 1.0)], weight=2.0)
    vec = Ranked("vector", [(2, 1.0)], weight=1.0)
    assert [r for r, _ in rrf([lex, vec], k=0)] == [1, 2]
    even = rrf([Ranked("a", [(5, 1.0)]), Ranked("b", [(4, 1.0)])], k=10)
    assert [r for r, _ in even] == [4, 5]  # equal scores: lower row id first, deterministic


def test_rrf_rejects_negative_k():
    with pytest.raises(ValueError):
        rrf([], k=-1)


def test_positions():
    assert positions(Ranked("x", [(7, 0.5), (3, 0.2)])) == {7: (1, 0.5), 3: (2, 0.2)}


def test_term_spans_merge_and_case():
    text = "Transformers 库里最基础的对象是 pipeline，PIPELINE 很方便"
    spans = term_spans(text, ["pipeline", "基础", "最基础"])
    assert [text[s:e] for s, e in spans] == ["最基础", "pipeline", "PIPELINE"]


def test_select_terms_rarest_first_under_budget():
    from zhiku.retrieve.lexical import select_terms
    df = {"辛顿": 10, "ai": 900, "应用": 500, "前景": 50}
    kept, dropped = select_terms(["辛顿", "ai", "前景", "应用", "缺席"], df, budget=600)
    assert kept == ["辛顿", "前景", "应用"] and dropped == ["ai"]
    assert select_terms(["ai"], {"ai": 10**6}, budget=10) == (["ai"], [])  # never empties a matchable query
    assert select_terms(["缺席"], {}, budget=10) == ([], [])
