import math

import pytest

from zhiku.evaluate.dataset import Evidence, holds_evidence, load_dataset
from zhiku.evaluate.metrics import hit_at, mean, ndcg_at, reciprocal_rank


def test_hand_computed_metrics():
    rel = [False, True, False, True]
    assert hit_at(rel, 1) == 0.0 and hit_at(rel, 2) == 1.0
    assert reciprocal_rank(rel) == 0.5
    assert reciprocal_rank([False, False]) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at(rel, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(rel, 10, n_relevant=3) == pytest.approx(dcg / (idcg + 1 / math.log2(4)))
    assert ndcg_at([False], 10) == 0.0
    assert mean([]) == 0.0 and mean([1, 0]) == 0.5


def test_evidence_match_ignores_whitespace_and_checks_source():
    ev = (Evidence("a.md", "数据 决定\n上限"),)
    assert holds_evidence("a.md", "他说：数据决定 上限。", ev)
    assert holds_evidence("sub/a.md", "数据决定上限", ev)
    assert not holds_evidence("b.md", "数据决定上限", ev)
    assert not holds_evidence("a.md", "数据决定下限", ev)


def test_bad_lines_reported_not_fatal(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"id": "1", "question": "q?", "answerable": true, "answer_keywords": [["x"]], '
                 '"evidence": [{"source": "a.md", "text": "x"}]}\nnot json\n{"id": "3"}\n\n', encoding="utf-8")
    ds = load_dataset(p)
    assert [c.id for c in ds.cases] == ["1"]
    assert [pr.split(":")[0] for pr in ds.problems] == ["line 2", "line 3"]
