"""zhiku eval on the bundled sample folder and its question set, with the real embedder and the real
bundled 0.5B model: what a user gets from `zhiku eval` out of the box."""
from __future__ import annotations

import json
from importlib import resources

import pytest

from zhiku.backends.model_packs import PACKS

from .test_cli import zhiku

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    env = {"ZHIKU_HOME": str(home)}
    with resources.as_file(resources.files("zhiku.samples").joinpath("demo")) as folder:
        zhiku("add", str(folder), "--kb", "demo", env_extra=env, check=0)
    questions = resources.files("zhiku.samples").joinpath("demo-questions.jsonl")
    with resources.as_file(questions) as path:
        yield env, str(path)


def test_retrieval_gate_on_the_sample_set(demo):
    env, questions = demo
    out = json.loads(zhiku("eval", questions, "--kb", "demo", "--retrieval-only", "--json",
                           "--fail-under", "hit@5=1.0", env_extra=env, check=0).stdout)
    assert out["counts"] == {**out["counts"], "cases": 9, "unanswerable": 2, "evidence_not_in_kb": [], "errors": 0}
    assert out["gates"] == [{"gate": "hit@5 >= 1", "value": 1.0, "passed": True}]
    assert out["metrics"]["mrr"] > 0.8


def test_answers_with_the_real_model(demo):
    env, questions = demo
    env = {**env, "ZHIKU_GENERATE_MODEL": "qwen2.5-0.5b", "ZHIKU_GENERATE_MAX_TOKENS": "60"}
    out = json.loads(zhiku("eval", questions, "--kb", "demo", "--limit", "3", "--json", env_extra=env,
                           check=0, timeout=300).stdout)
    assert out["counts"]["cases"] == 3 and out["counts"]["errors"] == 0
    m = out["metrics"]
    assert m["accuracy"] is not None and m["refusal"] is None  # the first three are all answerable
    assert out["cost"]["tokens"]["completion"] > 0 and out["cost"]["first_token_s"]["n"] >= 1
    folder = out["folder"]
    snap = json.loads(open(f"{folder}/snapshot.json", encoding="utf-8").read())
    assert snap["generator"]["model_sha256"] == PACKS["qwen2.5-0.5b"].sha256
    assert snap["sampling"]["max_tokens"] == 60 and set(snap["prompt_templates"]) >= {"answer.zh", "answer.en"}
    cases = [json.loads(line) for line in open(f"{folder}/cases.jsonl", encoding="utf-8")]
    assert all(c["answer"] for c in cases) and all(c["hits"] for c in cases)
    # per-case values agree with the aggregate
    assert m["accuracy"] == round(sum(c["metrics"]["accuracy"] for c in cases) / 3, 4)
