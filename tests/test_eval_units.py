"""Evaluation arithmetic on hand-computed cases: percentiles, bootstrap, per-case and pooled metrics,
gates, dataset validation and run comparison."""
from __future__ import annotations

import json
import math

import pytest

from zhiku.errors import UsageError
from zhiku.evaluate.case_metrics import CaseScorer, aggregate, answer_metrics
from zhiku.evaluate.compare import compare, paired_bootstrap
from zhiku.evaluate.dataset import Case, Evidence, evidence_spans, load_dataset
from zhiku.evaluate.gates import check, parse_gate
from zhiku.evaluate.metrics import ndcg_at, percentile, spread
from zhiku.evaluate.runner import EvalRun
from zhiku.types import StoredChunk


def test_percentile_interpolates_like_numpy():
    assert percentile([1, 2, 3, 4], 50) == 2.5  # halfway between ranks 2 and 3
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)  # pos 2.85: 3 + 0.85 * 1
    assert percentile([7], 95) == 7 and percentile([], 50) == 0.0
    assert spread([1, 2, 3, 4]) == {"p50": 2.5, "p95": 3.85, "mean": 2.5, "n": 4}


def test_ndcg_with_two_relevant_chunks_in_the_kb():
    # relevant at ranks 2 and 4, two relevant chunks exist: DCG = 1/log2(3) + 1/log2(5), IDCG = 1 + 1/log2(3)
    assert ndcg_at([False, True, False, True], 10, 2) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    # one hit at rank 1 while two relevant chunks exist (overlap): 1 / (1 + 1/log2(3)) = 0.6131
    assert ndcg_at([True, False], 10, 2) == pytest.approx(0.6131, abs=1e-4)


def test_paired_bootstrap_hand_cases():
    # every case improves by exactly 0.5: no resample can give anything else
    assert paired_bootstrap([0, 0, 0], [0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    # d = [1, 0]: a resample's mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4, so the 2.5th
    # percentile is 0 and the 97.5th is 1 (each end has ~500 of 2000 draws)
    delta, low, high = paired_bootstrap([0, 0], [1, 0])
    assert (delta, low, high) == (0.5, 0.0, 1.0)
    # same seed, same interval; the interval brackets the observed delta
    a, b = [1, 0, 1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1, 0, 1]
    assert paired_bootstrap(a, b) == paired_bootstrap(a, b)
    d, lo, hi = paired_bootstrap(a, b)
    assert d == pytest.approx(3 / 8) and lo <= d <= hi and lo >= 0
    with pytest.raises(ValueError):
        paired_bootstrap([1], [1, 2])


def _case(answerable=True, keywords=(("评估",),), evidence=(Evidence("a.md", "先把评估做好"),)):
    return Case("c1", "做应用先做什么？", answerable, keywords, evidence if answerable else ())


def _record(answer, refused=False, cites_evidence=True, sentences=2, unsupported=0):
    return {"answer": answer, "refused": refused, "citations": [{"holds_evidence": cites_evidence}],
            "sentences": sentences, "unsupported": ["x"] * unsupported}


def test_answer_metrics_per_case():
    m = answer_metrics(_case(), _record("要先把评估做好[1]。"))
    assert m == {"accuracy": 1.0, "correct_and_cited": 1.0, "citation_support": 1.0, "refusal": None,
                 "false_refusal": 0.0, "unsupported_rate": 0.0}
    m = answer_metrics(_case(), _record("要先有数据[2]。", cites_evidence=False, unsupported=1))
    assert (m["accuracy"], m["correct_and_cited"], m["citation_support"], m["unsupported_rate"]) == (0, 0, 0, 0.5)
    m = answer_metrics(_case(), _record("资料中未提及。", refused=True))
    assert (m["accuracy"], m["false_refusal"], m["citation_support"], m["unsupported_rate"]) == (0, 1, None, None)
    m = answer_metrics(_case(answerable=False), _record("资料中未提及。", refused=True))
    assert m["refusal"] == 1.0 and m["accuracy"] is None and m["false_refusal"] is None


def test_aggregate_pools_unsupported_sentences_and_skips_errors():
    def rec(cid, metrics, sentences, unsupported, error=""):
        return {"id": cid, "answerable": True, "synthetic": False, "evidence": [1], "n_relevant": 1,
                "answer": "a", "refused": False, "sentences": sentences, "unsupported": ["s"] * unsupported,
                "metrics": metrics, "timings": {"total_s": 2.0}, "tokens": {"prompt": 10, "completion": 5},
                "error": error}
    records = [rec("a", {"hit@1": 1.0, "accuracy": 1.0}, 1, 1), rec("b", {"hit@1": 0.0, "accuracy": None}, 3, 0),
               rec("c", {}, 9, 9, error="boom")]
    out = aggregate(records, retrieval_only=False)
    assert out["metrics"]["hit@1"] == 0.5 and out["metrics"]["accuracy"] == 1.0  # None does not count
    assert out["metrics"]["unsupported_rate"] == 0.25  # 1 of 4 sentences, not mean(1.0, 0.0) = 0.5
    assert out["counts"]["errors"] == 1 and out["cost"]["total_s"]["n"] == 2
    assert out["cost"]["tokens"] == {"prompt": 20, "completion": 10, "prompt_per_case": 10.0,
                                     "completion_per_case": 5.0}
    assert out["metrics"]["refusal"] is None and out["higher_is_better"]["false_refusal"] is False


def _chunk(row, source, text):
    return StoredChunk(row, f"id{row}", source, "/" + source, row, text, (), 0, len(text))


def test_relevant_chunks_counted_across_overlap_and_sub_folders():
    scorer = CaseScorer([_chunk(1, "sub/a.md", "…先把 评估\n做好。"), _chunk(2, "sub/a.md", "先把评估做好，然后"),
                         _chunk(3, "b.md", "先把评估做好"), _chunk(4, "sub/a.md", "别的")])
    assert scorer.n_relevant(_case()) == 2  # b.md is not the evidence source


def test_evidence_spans_map_back_through_whitespace():
    text = "前言。先把 评估\n做好。后记"
    (start, end), = evidence_spans("a.md", text, (Evidence("a.md", "先把评估做好"),))
    assert text[start:end] == "先把 评估\n做好"
    assert evidence_spans("b.md", text, (Evidence("a.md", "先把评估做好"),)) == []


def test_gates_parse_and_fail_clearly():
    g = parse_gate("hit@5=0.85")
    assert check({"hit@5": 0.9}, [g])[0].passed and not check({"hit@5": 0.8}, [g])[0].passed
    assert not check({}, [g])[0].passed  # not measured never passes
    upper = parse_gate("false_refusal=0.2", upper=True)
    assert check({"false_refusal": 0.1}, [upper])[0].passed and not check({"false_refusal": 0.3}, [upper])[0].passed
    for bad, hint in [("hit@5", "METRIC=VALUE"), ("hits=0.5", "unknown metric"), ("mrr=x", "not a number"),
                      ("mrr=85", "outside"), ("false_refusal=0.1", "lower")]:
        with pytest.raises(UsageError, match=hint):
            parse_gate(bad)


def test_invalid_lines_are_reported_with_their_numbers(tmp_path):
    good = {"id": "a", "question": "q?", "answerable": True, "answer_keywords": [["x"]],
            "evidence": [{"source": "a.md", "text": "x"}]}
    lines = [good, "{not json", {**good, "id": "b", "answer_keywords": ["x", "y"]}, {**good, "id": "a"},
             {**good, "id": "c", "answerable": "yes"}, {**good, "id": "d", "evidence": [{"source": "a.md"}]},
             {"id": "e"}, {**good, "id": "f"}]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    ds = load_dataset(path)
    assert [c.id for c in ds.cases] == ["a", "f"]
    assert [p.split(":")[0] for p in ds.problems] == ["line 2", "line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "not valid JSON" in ds.problems[0] and "flat list" in ds.problems[1] and "duplicate id" in ds.problems[2]
    assert "missing field 'question'" in ds.problems[5]
    assert len(ds.sha256) == 64
    with pytest.raises(UsageError, match="not found"):
        load_dataset(tmp_path / "nope.jsonl")


def _run(run_id, values, dataset="h1", answers=None):
    cases = [{"id": cid, "question": f"q{cid}", "answer": (answers or {}).get(cid), "first_relevant_rank": None,
              "metrics": {"hit@5": v, "accuracy": v}, "error": ""} for cid, v in values.items()]
    return EvalRun(cases, {"metrics": {"hit@5": 0.0, "accuracy": 0.0}}, {"dataset": {"sha256": dataset}},
                   run_id=run_id)


def test_compare_pairs_cases_and_lists_flips():
    a = _run("A", {"1": 1.0, "2": 0.0, "3": 1.0, "4": 1.0}, answers={"2": "old"})
    b = _run("B", {"1": 1.0, "2": 1.0, "3": 0.0, "5": 1.0}, dataset="h2", answers={"2": "new"})
    out = compare(a, b)
    row = next(r for r in out["metrics"] if r["name"] == "hit@5")
    # paired over cases 1, 2, 3: A = (1+0+1)/3, B = (1+1+0)/3, delta 0
    assert (row["n"], row["a"], row["b"], row["delta"]) == (3, 0.6667, 0.6667, 0.0)
    assert not row["significant"]
    assert {(f["id"], f["metric"]) for f in out["fixed"]} == {("2", "hit@5"), ("2", "accuracy")}
    assert {(f["id"], f["metric"]) for f in out["broken"]} == {("3", "hit@5"), ("3", "accuracy")}
    assert out["fixed"][0]["answer_a"] == "old" and out["fixed"][0]["answer_b"] == "new"
    assert any("different question sets" in w for w in out["warnings"])
    assert any("only one run" in w for w in out["warnings"])
