"""zhiku tune: the sweep measures what it says, re-chunks into a copy, and writes settings only when asked."""
from __future__ import annotations

import json

import pytest

from zhiku import KnowledgeBase
from zhiku.config import load_settings
from zhiku.evaluate.dataset import load_dataset
from zhiku.evaluate.tune import CHUNKINGS, Row, TuneOptions, tune, write_choice

from .test_cli import FAKE, zhiku
from .test_kb import write

TOPICS = {
    "评估.md": "# 评估\n\n想要做应用最首要的是先把评估工作做好。" + "人工评估贵，模型评估有偏差。" * 16,
    "采样.md": "# 采样\n\n温度越大，概率分布越平滑。" + "top_p 按累计概率截断候选词。" * 16,
    "数据.md": "# 数据\n\n数据决定上限，模型逼近上限。" + "高质量数据要多样且结构化。" * 16,
}


@pytest.fixture
def kb_and_set(tmp_path, fake_embedder):
    for name, text in TOPICS.items():
        write(tmp_path / "docs" / name, text)
    cases = [{"id": f"c{i}", "question": q, "answerable": True, "answer_keywords": [[k]],
              "evidence": [{"source": s, "text": e}]}
             for i, (q, k, s, e) in enumerate([("做应用最首要的是什么？", "评估", "评估.md", "先把评估工作做好"),
                                               ("温度越大分布怎样？", "平滑", "采样.md", "概率分布越平滑"),
                                               ("什么决定上限？", "数据", "数据.md", "数据决定上限")])]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in cases), encoding="utf-8")
    kb = KnowledgeBase.open("t", home=tmp_path / "home", embedder=fake_embedder)
    kb.add([tmp_path / "docs"])
    yield kb, load_dataset(path), tmp_path
    kb.close()


def test_quick_sweep_covers_each_search_dimension_and_leaves_kb_alone(kb_and_set):
    kb, ds, _ = kb_and_set
    embedder, settings = kb.embedder, kb.settings
    board = tune(kb, ds, TuneOptions(quick=True), progress=lambda m: None)
    assert kb.embedder is embedder and kb.settings == settings
    keys = {k for r in board.rows for k in r.settings}
    assert keys >= {"retrieve.mode", "retrieve.rrf_k", "retrieve.lexical_weight", "retrieve.candidates"}
    assert not any(k.startswith("chunk.") for k in keys)
    ranked = board.ranked()
    assert ranked[0].metrics["hit@5"] == max(r.metrics["hit@5"] for r in board.rows)
    assert board.baseline.settings == {} and board.baseline in board.rows
    # the baseline row is an ordinary eval of the current settings
    from zhiku.evaluate.runner import EvalOptions, run_eval
    assert board.baseline.metrics == run_eval(kb, ds, EvalOptions(retrieval_only=True)).metrics["metrics"]


def test_chunking_candidates_are_built_as_copies(kb_and_set):
    kb, ds, tmp = kb_and_set
    chunks_before = kb.store.chunk_count()
    board = tune(kb, ds, TuneOptions(), progress=lambda m: None)
    chunk_rows = [r for r in board.rows if r.stage == "chunking"]
    assert len(chunk_rows) == len(CHUNKINGS) - 1  # every candidate but the current one
    assert {r.chunks for r in chunk_rows} != {chunks_before}  # other sizes, other chunk counts
    assert kb.store.chunk_count() == chunks_before
    copies = list((tmp / "home" / "tune" / "t").iterdir())
    assert len(copies) == len(CHUNKINGS) - 1


def test_write_choice_merges_into_config(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[generate]\nmodel = "qwen2.5-0.5b"\n', encoding="utf-8")
    row = Row({"retrieve.rrf_k": 30, "retrieve.mode": "hybrid", "chunk.max_chars": 400}, {}, {}, 0.0)
    write_choice(home, row)
    s = load_settings(home)
    assert (s.retrieve.rrf_k, s.chunk.max_chars, s.generate.model) == (30, 400, "qwen2.5-0.5b")
    (backup,) = home.glob("config.toml.bak-*")
    assert backup.read_text(encoding="utf-8").startswith("[generate]")


def test_cli_tune_prints_a_leaderboard_and_rejects_answer_metrics_without_answers(tmp_path):
    write(tmp_path / "docs" / "评估.md", TOPICS["评估.md"])
    zhiku("add", str(tmp_path / "docs"), env_extra=FAKE, check=0)
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "做应用最首要的是什么？", "answer_keywords": [["评估"]],
                                "evidence": [{"source": "评估.md", "text": "先把评估工作做好"}]},
                               ensure_ascii=False), encoding="utf-8")
    out = json.loads(zhiku("tune", str(path), "--quick", "--json", env_extra=FAKE, check=0).stdout)
    assert out["metric"] == "hit@5" and out["rows"] and out["baseline"]["settings"] == {}
    proc = zhiku("tune", str(path), "--metric", "accuracy", env_extra=FAKE, check=2)
    assert "--answers" in proc.stderr


def test_search_rows_on_a_chunk_copy_keep_its_chunk_settings(kb_and_set):
    kb, ds, _ = kb_and_set
    board = tune(kb, ds, TuneOptions(metric="mrr"), progress=lambda m: None)
    chunk_rows = [r for r in board.rows if r.stage == "chunking"]
    winner = max([board.baseline, *chunk_rows], key=lambda r: (r.metrics["mrr"], r.metrics["ndcg@10"]))
    chunking = {k: v for k, v in winner.settings.items() if k.startswith("chunk.")}
    for row in (r for r in board.rows if r.stage == "search"):
        assert {k: v for k, v in row.settings.items() if k.startswith("chunk.")} == chunking
        assert row.chunks == winner.chunks  # measured on that copy


def test_answer_metric_tuning_measures_the_current_settings_with_answers(kb_and_set):
    kb, ds, _ = kb_and_set
    from zhiku.evaluate.tune import seen_with
    view = seen_with(kb, load_settings(kb.settings.home, {"generate.backend": "none"}))  # extractive: no model
    board = tune(view, ds, TuneOptions(metric="accuracy", quick=True, answers=True), progress=lambda m: None)
    assert board.baseline.stage == "current" and board.baseline.metrics["accuracy"] is not None
    answer_rows = [r for r in board.rows if r.stage == "answers"]
    assert {r.settings.get("answer.max_passages") for r in answer_rows} >= {3, 8}
    if board.best is not None:
        assert board.best.metrics["accuracy"] > board.baseline.metrics["accuracy"]
