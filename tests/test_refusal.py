from zhiku.answer.refusal import evidence_strength, is_decline
from zhiku.types import Hit, StoredChunk, Trace


def hit(text, rank=1):
    return Hit(rank, 1.0, StoredChunk(rank, f"c{rank}", "a.md", "/a.md", 0, text, (), 0, len(text)), Trace())


DFS = {"辛顿": 2, "医疗": 5, "领域": 40, "ai": 60}


def test_strength_is_the_idf_weighted_share_of_terms_in_the_best_hit():
    strong = evidence_strength(["辛顿", "医疗", "领域"], [hit("辛顿说医疗领域最有前景")], DFS, 300)
    assert strong == 1.0
    weak = evidence_strength(["辛顿", "医疗", "领域"], [hit("这个领域发展很快")], DFS, 300)
    partial = evidence_strength(["辛顿", "医疗", "领域"], [hit("医疗领域")], DFS, 300)
    assert 0 < weak < partial < 1.0


def test_rare_terms_weigh_more_than_common_ones():
    rare_only = evidence_strength(["辛顿", "ai"], [hit("辛顿")], DFS, 300)
    common_only = evidence_strength(["辛顿", "ai"], [hit("AI")], DFS, 300)
    assert rare_only > 0.5 > common_only > 0


def test_no_terms_or_no_hits_is_zero():
    assert evidence_strength([], [hit("x")], DFS, 10) == 0.0
    assert evidence_strength(["辛顿"], [], DFS, 10) == 0.0


def test_decline_phrases_in_both_languages():
    assert is_decline("资料中未提及。")
    assert is_decline("抱歉，资料中没有提到GPT-5的发布日期。")
    assert is_decline("The knowledge base does not say.")
    assert is_decline("The passages do not mention the release date.")
    assert not is_decline("数据决定上限 [1]。")
    assert not is_decline("评估最重要[1]。" + "后面的句子很长。" * 20 + "资料中未提及别的。")
