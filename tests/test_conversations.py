import pytest

from zhiku.errors import UsageError
from zhiku.kb import KnowledgeBase


def test_conversation_roundtrip(isolated, fake_embedder):
    with KnowledgeBase.open("t", home=isolated, embedder=fake_embedder) as kb:
        convs = kb.conversations
        cid = convs.create("温度是什么？")
        convs.add_turn(cid, "温度是什么？", "温度是什么？", "控制采样[1]。", False, [{"n": 1, "source": "a.md"}])
        convs.add_turn(cid, "那调大呢？", "温度调大会怎样？", "更平滑[1]。", False, [])
        other = convs.create("别的")
        assert [c.id for c in convs.list()][0] in (cid, other)
        turns = convs.turns(cid)
        assert [t.idx for t in turns] == [0, 1] and turns[1].standalone == "温度调大会怎样？"
        assert turns[0].citations == [{"n": 1, "source": "a.md"}]
    with KnowledgeBase.open("t", home=isolated, embedder=fake_embedder) as kb:  # persisted
        assert kb.conversations.get(cid).turns == 2
        kb.conversations.delete(cid)
        assert [c.id for c in kb.conversations.list()] == [other]
        with pytest.raises(UsageError, match="no conversation"):
            kb.conversations.turns(cid)
