"""A tiny question set through the real pipeline (real embedder, store and answer step), numbers
checked by hand; then the CLI as a user runs it: runs, show, compare, gates, invalid lines."""
from __future__ import annotations

import json
import os
import time

import pytest

from zhiku import KnowledgeBase
from zhiku.answer.pipeline import Answerer, sampling_from
from zhiku.evaluate.dataset import load_dataset
from zhiku.evaluate.runner import EvalOptions, run_eval
from zhiku.evaluate.runs import RunStore

from .fake_generator import ScriptedGenerator
from .test_cli import FAKE, zhiku
from .test_kb import write

DOCS = {
    "评估.md": "# 评估\n\n李沐说，想要做大模型应用，最首要的是先把评估工作做好。人工评估很贵，模型评估有偏差。\n",
    "采样.md": "# 采样\n\n温度参数越大，概率分布越平滑，生成的文本越多样。\n",
    "handbook.txt": "Employees get 15 days of paid annual leave per year.\n",
}
CASES = [
    {"id": "d1", "question": "做大模型应用最首要的是什么？", "answerable": True, "answer_keywords": [["评估"]],
     "evidence": [{"source": "评估.md", "text": "先把评估工作做好"}]},
    {"id": "d2", "question": "温度参数变大，概率分布会怎样？", "answerable": True, "answer_keywords": [["平滑"]],
     "evidence": [{"source": "采样.md", "text": "概率分布越平滑"}]},
    {"id": "d3", "question": "How many days of paid annual leave do employees get?", "answerable": True,
     "answer_keywords": [["15"]], "evidence": [{"source": "handbook.txt", "text": "15 days of paid annual leave"}]},
    {"id": "u1", "question": "尼罗河有多长？", "answerable": False, "answer_keywords": [], "evidence": []},
    # evidence that is in no file: the set is wrong, and the run must say so
    {"id": "m1", "question": "谁发明了电话？", "answerable": True, "answer_keywords": [["贝尔"]],
     "evidence": [{"source": "评估.md", "text": "贝尔发明了电话"}]},
]
REPLIES = {"最首要": "要先把评估工作做好[1]。",  # right
           "温度": "温度参数越大，生成的文本越多样[1]。",  # grounded and cited, but not the asked-for 平滑
           "leave": "Employees get 15 days of paid annual leave per year [1]."}  # right


def reply(messages):
    user = messages[-1].content
    question = user.rsplit("\n", 2)[-1]
    for key, text in REPLIES.items():
        if key in question:
            return text
    return "资料中未提及。"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, real_embedder):
    root = tmp_path_factory.mktemp("tiny")
    for name, text in DOCS.items():
        write(root / "docs" / name, text)
    (root / "set.jsonl").write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CASES), encoding="utf-8")
    kb = KnowledgeBase.open("tiny", home=root / "home", embedder=real_embedder)
    kb.add([root / "docs"])
    yield kb, load_dataset(root / "set.jsonl")
    kb.close()


def test_retrieval_numbers_by_hand(tiny):
    kb, ds = tiny
    run = run_eval(kb, ds, EvalOptions(retrieval_only=True))
    by_id = {c["id"]: c for c in run.cases}
    # each document is one chunk holding a unique answer: d1–d3 find theirs at rank 1
    assert [by_id[i]["first_relevant_rank"] for i in ("d1", "d2", "d3")] == [1, 1, 1]
    assert by_id["m1"]["first_relevant_rank"] is None and by_id["m1"]["n_relevant"] == 0
    assert by_id["u1"]["metrics"]["hit@1"] is None  # nothing to find: not counted
    # four cases carry evidence; three found at rank 1, one never: every retrieval metric is 3/4
    m = run.metrics["metrics"]
    assert (m["hit@1"], m["hit@10"], m["mrr"], m["ndcg@10"]) == (0.75, 0.75, 0.75, 0.75)
    assert run.metrics["counts"]["evidence_not_in_kb"] == ["m1"]
    top = by_id["d1"]["hits"][0]
    start, end = top["evidence_spans"][0]
    assert top["text"][start:end] == "先把评估工作做好" and top["relevant"]
    assert "accuracy" not in m and by_id["d1"]["answer"] is None


def test_answer_numbers_by_hand(tiny):
    kb, ds = tiny
    gen = ScriptedGenerator(reply)
    answerer = Answerer(kb, gen, kb.settings.answer, sampling_from(kb.settings.generate))
    run = run_eval(kb, ds, EvalOptions(), answerer=answerer)
    by_id = {c["id"]: c for c in run.cases}
    assert by_id["u1"]["refused"] and by_id["m1"]["refused"]  # the evidence gate: no model call
    assert not by_id["d2"]["refused"] and by_id["d2"]["citations"][0]["holds_evidence"]
    m = run.metrics["metrics"]
    # answerable d1 d2 d3 m1: right, wrong, right, refused → accuracy 2/4, false refusal 1/4
    assert (m["accuracy"], m["false_refusal"]) == (0.5, 0.25)
    # answered with evidence: d1 d2 d3 all cite the chunk holding it → 3/3; correct AND cited: d1 d3 → 2/4
    assert (m["citation_support"], m["correct_and_cited"]) == (1.0, 0.5)
    assert m["refusal"] == 1.0  # u1
    assert len(gen.calls) == 3  # eval adds no model calls of its own
    assert run.metrics["cost"]["total_s"]["n"] == 5 and "generate_s" in run.metrics["cost"]


def test_a_case_that_raises_is_recorded_not_fatal(tiny):
    kb, ds = tiny
    gen = ScriptedGenerator(reply, context_window=300)  # too small for any passage: ContextTooSmall
    answerer = Answerer(kb, gen, kb.settings.answer, sampling_from(kb.settings.generate))
    run = run_eval(kb, ds, EvalOptions(), answerer=answerer)
    errors = [c for c in run.cases if c["error"]]
    assert errors and all("context window" in c["error"] for c in errors)
    assert run.metrics["counts"]["errors"] == len(errors)


def test_runs_are_stored_listed_and_a_killed_save_leaves_nothing(tiny, monkeypatch):
    kb, ds = tiny
    store = RunStore(kb)
    before = len(store.list())
    run = run_eval(kb, ds, EvalOptions(retrieval_only=True))
    run.snapshot = {"dataset": {"sha256": ds.sha256}}
    folder = store.save(run)
    assert (folder / "report.html").is_file() and len(store.list()) == before + 1
    assert store.load(run.run_id[:15]).metrics["metrics"] == run.metrics["metrics"]
    assert store.resolve("latest") == folder

    import zhiku.evaluate.runs as runs_mod

    def boom(folder, run):
        (folder / "metrics.json").write_text("{}")
        raise KeyboardInterrupt
    monkeypatch.setattr(runs_mod, "_write_files", boom)
    with pytest.raises(KeyboardInterrupt):
        store.save(run_eval(kb, ds, EvalOptions(retrieval_only=True)))
    assert len(store.list()) == before + 1 and store.resolve("latest") == folder
    (left,) = store.root.glob(".tmp-*")  # left for a later save to clean once it is old
    monkeypatch.undo()
    store.save(run)
    assert left.exists()  # young: it could be another process's save in progress
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    store.save(run)
    assert not list(store.root.glob(".tmp-*"))


# -- the CLI ------------------------------------------------------------------------------------------
@pytest.fixture
def cli_kb(tmp_path):
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    zhiku("add", str(tmp_path / "docs"), env_extra=FAKE, check=0)
    good = tmp_path / "set.jsonl"
    good.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CASES), encoding="utf-8")
    return tmp_path


def test_cli_eval_runs_show_compare_and_gates(cli_kb):
    s = str(cli_kb / "set.jsonl")
    first = json.loads(zhiku("eval", s, "--retrieval-only", "--json", env_extra=FAKE, check=0).stdout)
    assert first["counts"]["cases"] == 5 and set(first["metrics"]) >= {"hit@1", "mrr", "ndcg@10"}
    out = cli_kb / "out"
    second = zhiku("eval", s, "--no-llm", "--out", str(out), "--fail-under", "hit@10=0.5",
                   "--fail-under", "accuracy=0.99", env_extra=FAKE)
    assert second.returncode == 3, second.stderr
    assert "gate failed: accuracy >= 0.99" in second.stderr and "FAIL" in second.stdout
    assert {p.name for p in out.iterdir()} >= {"report.html", "summary.md", "cases.jsonl", "metrics.json"}
    runs = json.loads(zhiku("eval", "runs", "--json", env_extra=FAKE, check=0).stdout)
    assert [r["retrieval_only"] for r in runs] == [True, False]
    shown = json.loads(zhiku("eval", "show", "latest", "--json", env_extra=FAKE, check=0).stdout)
    assert shown["run_id"] == runs[1]["id"]
    cmp = json.loads(zhiku("eval", "compare", "previous", "latest", "--json", env_extra=FAKE, check=0).stdout)
    assert cmp["a"] == runs[0]["id"] and cmp["b"] == runs[1]["id"]
    assert any("retrieval-only" in w for w in cmp["warnings"])
    hit1 = next(r for r in cmp["metrics"] if r["name"] == "hit@1")
    assert hit1["delta"] == 0.0  # same retrieval both times
    text = zhiku("eval", "compare", runs[0]["id"], runs[1]["id"], "--report", str(cli_kb / "c.html"),
                 env_extra=FAKE, check=0)
    assert "95%" in text.stdout and (cli_kb / "c.html").read_text(encoding="utf-8").startswith("<!")


def test_cli_eval_reports_invalid_lines_and_bad_options(cli_kb):
    bad = cli_kb / "bad.jsonl"
    lines = [json.dumps(CASES[0], ensure_ascii=False), "{oops", json.dumps({"id": "x"})]
    bad.write_text("\n".join(lines), encoding="utf-8")
    proc = zhiku("eval", str(bad), "--retrieval-only", env_extra=FAKE, check=0)
    assert "2 invalid lines" in proc.stderr and "line 2: not valid JSON" in proc.stderr
    assert "line 3: missing field 'question'" in proc.stderr
    empty = cli_kb / "empty.jsonl"
    empty.write_text("{oops\n", encoding="utf-8")
    proc = zhiku("eval", str(empty), env_extra=FAKE, check=2)
    assert "no valid cases" in proc.stderr and "line 1" in proc.stderr
    proc = zhiku("eval", str(bad), "--fail-under", "speed=1", env_extra=FAKE, check=2)
    assert "unknown metric" in proc.stderr
    proc = zhiku("eval", "show", "nosuchrun", env_extra=FAKE, check=2)
    assert "zhiku eval runs" in proc.stderr
    proc = zhiku("eval", str(bad), "--kb", "nokb", env_extra=FAKE, check=1)
    assert "no knowledge base named 'nokb'" in proc.stderr


def test_judge_scores_are_added_to_the_run_and_compare_judges_both_orders(tiny):
    from zhiku.evaluate.compare import compare
    from zhiku.evaluate.judge import Judge
    from zhiku.evaluate.judging import RunJudge
    kb, ds = tiny
    answerer = Answerer(kb, ScriptedGenerator(reply), kb.settings.answer, sampling_from(kb.settings.generate))
    # FAKE judge: "correct" exactly when the judged answer holds the case's evidence; pairwise: always "1"
    def verdict(messages):
        text = messages[-1].content
        if "回答1" in text or "Answer 1" in text:
            return "1"
        answer = text.split("回答：", 1)[-1].split("\n\n", 1)[0] if "回答：" in text else \
            text.split("Answer:", 1)[-1].split("\n\n", 1)[0]
        ok = "先把评估工作做好" in answer or "15 days" in answer
        return f"正确：{'是' if ok else '否'}\n忠实：是"
    judge = RunJudge(Judge(ScriptedGenerator(verdict)), "fake-judge")
    run = run_eval(kb, ds, EvalOptions(), answerer=answerer, judge=judge)
    judge.summarise(run)
    judged = [c for c in run.cases if "judge" in c]
    assert len(judged) == 5 and all(c["judge"]["parsed"] for c in judged)
    m = run.metrics["metrics"]
    assert m["judge_correctness"] == pytest.approx(2 / 5)  # d1 and d3 of the five answers
    assert run.metrics["judge"]["agreement"] == 1.0 and run.metrics["judge"]["n"] == 4
    run.run_id = "A"
    other = run_eval(kb, ds, EvalOptions(extractive=True))
    other.run_id = "B"
    cmp = compare(run, other)
    judge.pairwise_flips(cmp, run, other)
    jp = cmp["judge_pairwise"]
    assert jp["changed_answers"] >= 1
    # a judge that always picks the answer shown first never wins consistently
    assert jp["inconsistent"] == jp["changed_answers"] and jp["a_wins"] == jp["b_wins"] == 0


def test_cli_generate_refuses_without_model_or_over_an_existing_file(cli_kb):
    out = cli_kb / "synth.jsonl"
    proc = zhiku("eval", "generate", "--n", "2", "--out", str(out), "--no-llm", env_extra=FAKE, check=2)
    assert "needs a model" in proc.stderr and not out.exists()
    out.write_text("keep me", encoding="utf-8")
    proc = zhiku("eval", "generate", "--n", "2", "--out", str(out), env_extra=FAKE, check=2)
    assert "--force" in proc.stderr and out.read_text(encoding="utf-8") == "keep me"
    proc = zhiku("eval", str(cli_kb / "set.jsonl"), "--judge", "--no-llm", env_extra=FAKE, check=2)
    assert "--judge needs a model" in proc.stderr


def test_cli_compare_judge_options_parse():
    from zhiku.cli import _with_default_action, build_parser
    args = build_parser().parse_args(_with_default_action(["eval", "compare", "a", "b", "--judge",
                                                           "--judge-model", "qwen2.5-0.5b"]))
    assert (args.action, args.judge, args.judge_model) == ("compare", True, "qwen2.5-0.5b")
    args = build_parser().parse_args(_with_default_action(["eval", "--kb", "x", "set.jsonl", "--judge"]))
    assert (args.action, args.kb, args.dataset, args.judge_model) == ("run", "x", "set.jsonl", None)
