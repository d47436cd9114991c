"""ask / chat / conversations / models as a user runs them (real process; FAKE embedder for speed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .test_cli import FAKE, zhiku
from .test_kb import write


@pytest.fixture
def kb_folder(tmp_path):
    d = tmp_path / "notes"
    write(d / "讲座.md", "# 李沐讲座\n\n想要做应用最最最首要的是要先把评估工作做好。\n\n数据决定上限。\n")
    write(d / "采样.md", "# 采样\n\n温度越大，概率分布越平滑。\n")
    zhiku("add", str(d), env_extra=FAKE, check=0)
    return d


def test_ask_no_llm_gives_an_extractive_cited_answer(kb_folder):
    out = json.loads(zhiku("ask", "做应用首先要把什么做好？", "--no-llm", "--json", env_extra=FAKE, check=0).stdout)
    assert out["mode"] == "extractive" and "评估" in out["answer"] and "[1]" in out["answer"]
    assert out["citations"][0]["source"] == "讲座.md" and out["generator"] == ""
    text = zhiku("ask", "做应用首先要把什么做好？", "--no-llm", env_extra=FAKE, check=0)
    assert "评估" in text.stdout and "sources" in text.stdout and "extractive" in text.stderr


def test_ask_refuses_when_nothing_matches(kb_folder):
    out = json.loads(zhiku("ask", "尼罗河有多长？", "--no-llm", "--json", env_extra=FAKE, check=0).stdout)
    assert out["refused"] and out["answer"] == "资料中未提及。"


@pytest.mark.parametrize("option, message", [
    (["--top-p", "2"], "generate.top_p"),
    (["--temperature", "-1"], "generate.temperature"),
    (["--max-tokens", "0"], "generate.max_tokens"),
    (["--context-window", "10"], "generate.context_window"),
])
def test_bad_sampling_values_are_usage_errors(kb_folder, option, message):
    proc = zhiku("ask", "数据决定什么？", *option, env_extra=FAKE)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_model_file_says_what_to_do(kb_folder, tmp_path):
    proc = zhiku("ask", "数据决定什么？", "--model", str(tmp_path / "nope.gguf"), env_extra=FAKE)
    assert proc.returncode == 1 and "does not exist" in proc.stderr and "hint:" in proc.stderr


def test_endpoint_down_is_a_clear_error(kb_folder):
    env = {**FAKE, "ZHIKU_GENERATE_BACKEND": "openai", "ZHIKU_GENERATE_BASE_URL": "http://127.0.0.1:9/v1",
           "ZHIKU_GENERATE_RETRIES": "0"}
    proc = zhiku("ask", "数据决定什么？", env_extra=env)
    assert proc.returncode == 1 and "127.0.0.1:9" in proc.stderr and "Traceback" not in proc.stderr


def test_chat_stores_conversations_that_can_be_listed_shown_resumed_and_deleted(kb_folder):
    env = {**os.environ, **FAKE}
    run = lambda *a, stdin="": subprocess.run([sys.executable, "-m", "zhiku.cli", *a], input=stdin,  # noqa: E731
                                              capture_output=True, text=True, env=env, timeout=60)
    first = run("chat", "--no-llm", stdin="温度越大会怎样？\n数据决定什么？\n")
    assert first.returncode == 0, first.stderr
    assert "平滑" in first.stdout and "上限" in first.stdout
    listed = json.loads(run("conversations", "--json").stdout)
    assert len(listed) == 1 and listed[0]["turns"] == 2
    cid = listed[0]["id"]
    again = run("chat", "--no-llm", "--resume", cid, stdin="那评估呢？\n")
    assert again.returncode == 0 and "resuming conversation" in again.stderr
    shown = json.loads(run("conversations", "show", cid, "--json").stdout)
    assert [t["question"] for t in shown["turns"]] == ["温度越大会怎样？", "数据决定什么？", "那评估呢？"]
    assert shown["turns"][2]["standalone"] != "那评估呢？"  # the follow-up was searched with context
    assert run("conversations", "delete", cid).returncode == 0
    assert json.loads(run("conversations", "--json").stdout) == []
    missing = run("conversations", "show", cid)
    assert missing.returncode == 2 and "no conversation" in missing.stderr


def test_models_lists_the_bundled_packs():
    proc = zhiku("models", check=0)
    assert "qwen2.5-1.5b" in proc.stdout and "qwen2.5-0.5b" in proc.stdout and "(default)" in proc.stdout
    bad = zhiku("models", "prepare", "gpt-17")
    assert bad.returncode == 2 and "choose one of" in bad.stderr
